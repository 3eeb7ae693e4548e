"""Fair shares: one person's burst never takes everyone's capacity.

`PersonLines` lets each person have at most `MAX_CONCURRENT_PER_PERSON` turns at once; the rest
wait in that person's own line, first come first served, while other people go straight to the
shared model slots. `BudgetLedger` holds the tokens that answers in flight are expected to
spend, so that a burst cannot pass the daily budget before its usage is written.

No I/O here: the processor reads the database and hands the ledger what it found.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class _Line:
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class PersonTicket:
    """One message's place in its person's line, taken when it arrives (no await in between,
    so the line keeps the order messages came in). `release()` exactly once, whatever happens:
    it gives the turn back, or the place in line up."""

    def __init__(self, lines: PersonLines, person: str, line: _Line, turn: asyncio.Future[None]) -> None:
        self._lines, self._person, self._line, self._turn = lines, person, line, turn
        self._released = False

    @property
    def ahead(self) -> int:
        """How many of this person's messages are before this one in line."""
        return self._line.waiters.index(self._turn) if self._turn in self._line.waiters else 0

    async def wait(self, on_wait: Callable[[int], Awaitable[None]] | None = None) -> bool:
        """Until it is this message's turn; `on_wait(ahead)` first if it has to wait. True if it waited."""
        if self._turn.done():
            return False
        if on_wait is not None:
            await on_wait(self.ahead)
        await asyncio.shield(self._turn)  # a cancelled wait leaves the turn to `release()`
        return True

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._turn.done():
            self._lines._pass_on(self._person, self._line)
        else:
            self._turn.cancel()
            self._line.waiters.remove(self._turn)
            self._lines._forget_if_idle(self._person, self._line)


class PersonLines:
    """At most `per_person` turns of one person at a time; the others wait in order."""

    def __init__(self, per_person: int) -> None:
        self._per_person = per_person
        self._lines: dict[str, _Line] = {}

    def waiting(self, person: str) -> int:
        line = self._lines.get(person)
        return len(line.waiters) if line else 0

    @property
    def total_waiting(self) -> int:
        return sum(len(line.waiters) for line in self._lines.values())

    def reserve(self, person: str) -> PersonTicket:
        """A place in `person`'s line: the turn at once if they have one free and nobody waits."""
        line = self._lines.setdefault(person, _Line())
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if line.active < self._per_person and not line.waiters:
            line.active += 1
            turn.set_result(None)
        else:
            line.waiters.append(turn)
        return PersonTicket(self, person, line, turn)

    def _pass_on(self, person: str, line: _Line) -> None:
        if line.waiters:
            line.waiters.popleft().set_result(None)  # the turn passes straight on: `active` stays
            return
        line.active -= 1
        self._forget_if_idle(person, line)

    def _forget_if_idle(self, person: str, line: _Line) -> None:
        if not line.active and not line.waiters and self._lines.get(person) is line:
            del self._lines[person]


@dataclass
class Reservation:
    """Tokens held for one answer in flight, until its usage is written."""

    person: str
    tokens: int


class BudgetLedger:
    """Reservations in flight per person, beside the spent tokens the database has.

    `generation(person)` changes whenever that person's usage is written; a check that read the
    database while it changed reads again, so no answer is counted neither as reserved nor as
    spent.
    """

    def __init__(self, budget: int, max_output_tokens: int) -> None:
        self.budget = budget
        self.max_output_tokens = max_output_tokens
        self._reserved: dict[str, int] = {}
        self._generation: dict[str, int] = {}

    def generation(self, person: str) -> int:
        return self._generation.get(person, 0)

    def reserved(self, person: str) -> int:
        return self._reserved.get(person, 0)

    def reserve(self, person: str, spent: int, input_estimate: int) -> Reservation | None:
        """Hold `input_estimate` + one answer's output, if the input still fits in the budget.

        Every answer admitted had its input inside the budget, so a burst ends at most one
        answer's `max_output_tokens` past it."""
        if spent + self.reserved(person) + input_estimate > self.budget:
            return None
        reservation = Reservation(person, input_estimate + self.max_output_tokens)
        self._reserved[person] = self.reserved(person) + reservation.tokens
        return reservation

    def adjust(self, reservation: Reservation, input_estimate: int) -> None:
        """The request is built: hold what it will really cost (it may be a long thread)."""
        tokens = input_estimate + self.max_output_tokens
        self._reserved[reservation.person] = self.reserved(reservation.person) + tokens - reservation.tokens
        reservation.tokens = tokens

    def spent(self, person: str, reservation: Reservation | None = None, tokens: int = 0) -> None:
        """Usage of `person` was just written to the database: what `reservation` held for it
        is let go (up to `tokens`), so those tokens are not counted twice."""
        self._generation[person] = self.generation(person) + 1
        if reservation is not None and tokens > 0:
            self._let_go(reservation, min(tokens, reservation.tokens))

    def release(self, reservation: Reservation) -> None:
        self._let_go(reservation, reservation.tokens)

    def _let_go(self, reservation: Reservation, tokens: int) -> None:
        reservation.tokens -= tokens
        left = self.reserved(reservation.person) - tokens
        if left > 0:
            self._reserved[reservation.person] = left
        else:
            self._reserved.pop(reservation.person, None)


class NoticePacer:
    """A burst gets one notice per thread, not one per message: "busy", "refused" and "over
    budget" are said once per person, thread and kind within `window` seconds."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._said: dict[tuple[str, ...], float] = {}

    def should_say(self, *key: str) -> bool:
        now = self._clock()
        if len(self._said) > 10_000:  # forget what is past its window
            self._said = {k: t for k, t in self._said.items() if now - t < self._window}
        said = self._said.get(key)
        if said is not None and now - said < self._window:
            return False
        self._said[key] = now
        return True
