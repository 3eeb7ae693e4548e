"""`python -m bench` (`make bench`): this bot against a minimal async bot and the old sync bot.

Each bot runs as its own process against fresh loopback fakes (tests/fakes) served from this
process, one bot at a time, on the same scenario. Prints Markdown tables and, unless
--no-write, writes docs/performance.md. Exits 1 when a bot crashed, could not connect or left
conversations unanswered (targets that are not met are reported, not treated as failures).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import report
from bench.harness import ROOT, BotSpec, RunResult, Scenario, log_tail, run_bot

#: Bolt's default listener pool in `slack_bolt.App` (see bench/sync_bot.py): answers at once.
SYNC_PARALLELISM = 5
DOC = ROOT / "docs" / "performance.md"

MINIMAL = BotSpec("minimal bot", "bench/minimal_bot.py")
SYNC = BotSpec("sync bot", "bench/sync_bot.py", parallelism=SYNC_PARALLELISM)
#: main.py with every setting at its default (the model-call limit adapts, up to 1000).
THIS_BOT = BotSpec("this bot (defaults)", "main.py")


@dataclass(frozen=True)
class Job:
    """One bot on one scenario; `group` is the table it belongs to, `role` its part in the targets."""

    group: str
    role: str
    spec: BotSpec
    scenario: Scenario


def plan(args: argparse.Namespace) -> list[Job]:
    """Quick runs first, the minutes-long sync bot last, so a broken bot shows up early."""
    main = Scenario(args.conversations, args.spread, args.latency, args.stream_seconds)
    jobs = [Job("main", "ours", THIS_BOT, main), Job("main", "minimal", MINIMAL, main)]
    if args.rss_conversations:
        large = Scenario(args.rss_conversations, args.spread, args.rss_latency, args.stream_seconds)
        jobs += [Job("large", "ours", THIS_BOT, large), Job("large", "minimal", MINIMAL, large)]
    if not args.skip_sync:
        jobs.append(Job("main", "sync", SYNC, main))
    return jobs


async def run_jobs(jobs: list[Job], workdir: Path) -> list[tuple[Job, RunResult]]:
    """Run the jobs one after another, saying on stderr what is going on."""
    done = []
    for n, job in enumerate(jobs, 1):
        s = job.scenario
        print(f"[{n}/{len(jobs)}] {job.spec.name}: {s.conversations} conversations "
              f"(timeout {job.spec.timeout(s):.0f} s)", file=sys.stderr, flush=True)
        result = await run_bot(job.spec, s, workdir / f"{n}-{job.group}-{job.role}")
        status = f"{result.completion:.2f} s" if result.completion else f"FAILED: {result.error}"
        print(f"      {result.answered}/{s.conversations} answered, {status}", file=sys.stderr, flush=True)
        done.append((job, result))
    return done


def pick(done: list[tuple[Job, RunResult]], group: str, role: str) -> RunResult | None:
    return next((r for j, r in done if j.group == group and j.role == role), None)


def render(done: list[tuple[Job, RunResult]], args: argparse.Namespace) -> report.Report:
    """Arrange the results the way the report shows them."""
    order = ("ours", "minimal", "sync")
    main = sorted((x for x in done if x[0].group == "main"), key=lambda x: order.index(x[0].role))
    return report.Report(
        main=[r for _, r in main],
        large=[r for j, r in done if j.group == "large"],
        ours=pick(done, "main", "ours"),
        minimal=pick(done, "main", "minimal"), sync=pick(done, "main", "sync"),
        ours_large=pick(done, "large", "ours"), minimal_large=pick(done, "large", "minimal"),
        sync_parallelism=SYNC_PARALLELISM, skipped_sync=args.skip_sync,
    )


def show_failures(results: list[RunResult]) -> None:
    """The log tail of every run that failed, on stderr."""
    for r in results:
        if r.error:
            print(f"\n--- {r.bot}: {r.error}; last lines of {r.log_path}:\n{log_tail(r.log_path)}",
                  file=sys.stderr)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=positive_int, default=300,
                        help="conversations in the comparison scenario (default 300)")
    parser.add_argument("--spread", type=non_negative, default=1.0,
                        help="seconds over which the conversations start, evenly (default 1.0)")
    parser.add_argument("--latency", type=non_negative, default=2.0,
                        help="seconds the model waits before its first token (default 2.0)")
    parser.add_argument("--stream-seconds", type=non_negative, default=1.0,
                        help="seconds over which the model streams its answer (default 1.0)")
    parser.add_argument("--rss-conversations", type=non_negative_int, default=1000,
                        help="conversations in the memory scenario, this bot and the minimal bot only; "
                             "0 skips it (default 1000)")
    parser.add_argument("--rss-latency", type=float, default=10.0,
                        help="seconds the model waits in the memory scenario: long enough that every "
                             "conversation is in flight at once, which is what the RSS target is about "
                             "(default 10)")
    parser.add_argument("--skip-sync", action="store_true",
                        help="leave out the sync bot, which takes minutes by design (quick runs)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/performance.md as it is")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every job, print the tables, write the doc; 1 if a bot failed, 130 if interrupted."""
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        done = asyncio.run(run_jobs(plan(args), workdir))
    except KeyboardInterrupt:
        print(f"\ninterrupted; bot logs kept in {workdir}", file=sys.stderr)
        return 130
    results = [r for _, r in done]
    summary = render(done, args)
    print(summary.tables(), flush=True)
    show_failures(results)
    if not args.no_write:
        DOC.write_text(summary.document())
        print(f"\nwrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    if any(r.error for r in results):
        print(f"bot logs kept in {workdir}", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0
