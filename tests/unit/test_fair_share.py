"""Per-person lines, budget reservations and paced notices (no I/O)."""

from __future__ import annotations

import asyncio

from message_processor.fair_share import BudgetLedger, NoticePacer, PersonLines, PersonTicket


async def test_a_person_past_their_share_waits_in_order_and_others_do_not():
    lines = PersonLines(per_person=2)
    started: list[str] = []
    release = asyncio.Event()
    waits: list[int] = []

    async def on_wait(ahead: int) -> None:
        waits.append(ahead)

    async def turn(ticket: PersonTicket, name: str) -> None:
        try:
            await ticket.wait(on_wait)
            started.append(name)
            await release.wait()
        finally:
            ticket.release()

    # Places are taken in arrival order, before any task runs.
    tasks = [asyncio.create_task(turn(lines.reserve("alice"), f"a{i}")) for i in range(5)]
    tasks.append(asyncio.create_task(turn(lines.reserve("bob"), "b0")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["a0", "a1", "b0"]
    assert lines.waiting("alice") == 3 and waits == [0, 1, 2] and lines.waiting("bob") == 0
    assert lines.total_waiting == 3
    release.set()
    await asyncio.gather(*tasks)
    assert started == ["a0", "a1", "b0", "a2", "a3", "a4"]
    assert lines.total_waiting == 0


async def test_a_released_place_leaves_the_line_and_a_cancelled_turn_is_passed_on():
    lines = PersonLines(per_person=1)
    first, second, third = (lines.reserve("alice") for _ in range(3))
    second.release()  # turned away before its turn: gives its place up
    assert lines.waiting("alice") == 1
    waiting = asyncio.create_task(third.wait())
    await asyncio.sleep(0)
    first.release()
    assert await waiting is True
    fourth = lines.reserve("alice")
    cancelled = asyncio.create_task(fourth.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    third.release()  # hands the turn to `fourth`, whose wait was cancelled...
    fourth.release()  # ...and whose release passes it on
    fourth.release()  # once only
    assert lines.total_waiting == 0 and await lines.reserve("alice").wait() is False


def test_reservations_keep_a_burst_within_one_answers_output():
    ledger = BudgetLedger(budget=1000, max_output_tokens=200)
    admitted = [r for r in (ledger.reserve("alice", 0, 50) for _ in range(20)) if r is not None]
    assert len(admitted) == 4  # 4 × 250 held; a fifth's input would not fit
    assert ledger.reserve("bob", 0, 50) is not None  # per person
    assert 0 + len(admitted) * 250 <= 1000 + 200
    ledger.adjust(admitted[0], 400)
    assert ledger.reserved("alice") == 3 * 250 + 600
    for reservation in admitted:
        ledger.release(reservation)
    assert ledger.reserved("alice") == 0
    before = ledger.generation("alice")
    ledger.spent("alice")
    assert ledger.generation("alice") == before + 1


def test_notices_are_said_once_per_thread_and_kind_within_the_window():
    now = [0.0]
    pacer = NoticePacer(60.0, lambda: now[0])
    assert pacer.should_say("busy", "U1", "C1", "t1")
    assert not pacer.should_say("busy", "U1", "C1", "t1")
    assert pacer.should_say("busy", "U1", "C1", "t2")
    assert pacer.should_say("refused", "U1", "C1", "t1")
    now[0] = 61.0
    assert pacer.should_say("busy", "U1", "C1", "t1")


def test_written_usage_settles_the_reservation_so_nothing_counts_twice():
    ledger = BudgetLedger(budget=1000, max_output_tokens=200)
    reservation = ledger.reserve("alice", 0, 50)
    assert reservation is not None and ledger.reserved("alice") == 250
    ledger.spent("alice", reservation, 120)
    assert ledger.reserved("alice") == 130 and reservation.tokens == 130
    ledger.spent("alice", reservation, 500)  # a long answer: never below zero
    assert ledger.reserved("alice") == 0 and reservation.tokens == 0
    ledger.release(reservation)
    assert ledger.reserved("alice") == 0
