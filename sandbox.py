"""One job on untrusted bytes in a confined, short-lived worker process.

What a stranger shares (a document, an image) is read by C libraries (pdfium, Pillow's codecs)
that have had memory-safety bugs. So it is read in a worker process started for that one job:
the bytes on stdin, the result as JSON on stdout, an environment without the bot's tokens or
keys, and limits on memory, CPU time, processes and file size that the worker sets on itself
before it reads a byte (`confine`). The parent kills it at the time limit (`run`).
document_handler.py and image_fit.py are the two workers.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

WORKER_MEMORY_BYTES = 1024 * 1024 * 1024
# The parent kills the worker at the timeout; the CPU limit ends it even if the parent is gone.
WORKER_CPU_MARGIN_SECONDS = 5
# It writes no files (its result goes to a pipe, which this does not limit) and starts no
# process or thread. RLIMIT_NPROC counts every process of the account and root is exempt.
WORKER_MAX_FILE_BYTES = 0
WORKER_MAX_PROCESSES = 0
# All of the worker's environment, from the bot's: what Python needs to start and decode names.
WORKER_ENV_KEYS = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "PYTHONHOME")
# The exit status of a worker that ran out of memory (it catches its own MemoryError).
MEMORY_EXIT = 3


class WorkerTimeout(Exception):
    """The worker was still busy at the time limit, and was killed."""


@dataclass(frozen=True)
class Finished:
    returncode: int | None
    out: bytes
    err: bytes


def worker_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The worker's whole environment: what Python needs, never the bot's tokens or keys.

    An allow list, so a secret added to the bot's environment later stays out as well.
    """
    env = {key: parent[key] for key in WORKER_ENV_KEYS if key in parent}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no .pyc files: it may write no files at all
    return env


def worker_cpu_seconds(timeout: float) -> int:
    return math.ceil(timeout) + WORKER_CPU_MARGIN_SECONDS


def worker_limits(cpu_seconds: int) -> dict[str, int]:
    """The worker's resource limits by `resource` name, each set as soft = hard."""
    return {
        "RLIMIT_AS": WORKER_MEMORY_BYTES,
        "RLIMIT_CPU": cpu_seconds,
        "RLIMIT_FSIZE": WORKER_MAX_FILE_BYTES,
        "RLIMIT_NPROC": WORKER_MAX_PROCESSES,
        "RLIMIT_CORE": 0,  # a crash leaves no core file with the bytes in it
    }


def confine(cpu_seconds: int) -> None:
    """Set this worker's limits, in the worker itself: a `preexec_fn` is unsafe in the bot,
    whose other threads (aiosqlite's, `to_thread`'s) may hold locks at the fork.

    A limit never goes above the hard limit the bot itself runs under.
    """
    import resource

    for name, value in worker_limits(cpu_seconds).items():
        limit = getattr(resource, name)
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))


def serve(job: Callable[[list[str], bytes], Mapping[str, object]]) -> None:
    """A worker's whole run: confined (its CPU limit is its last argument) before it reads a
    byte, then `job(the other arguments, stdin)` written to stdout as JSON; out of memory, it
    exits with `MEMORY_EXIT`."""
    *args, cpu_seconds = sys.argv[1:]
    confine(int(cpu_seconds))
    data = sys.stdin.buffer.read()
    try:
        result = job(args, data)
    except MemoryError:
        sys.exit(MEMORY_EXIT)
    sys.stdout.write(json.dumps(result))


async def start(script: Path, args: Sequence[str], timeout: float) -> asyncio.subprocess.Process:
    """`script` as a worker waiting for its bytes on stdin; its last argument is its CPU limit."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, str(worker_cpu_seconds(timeout)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=worker_environment(os.environ),
    )


async def run(script: Path, args: Sequence[str], data: bytes, timeout: float) -> Finished:
    """One job: `data` in, what the worker wrote out; killed (`WorkerTimeout`) at `timeout`,
    and when the caller is cancelled."""
    process = await start(script, args, timeout)
    try:
        out, err = await asyncio.wait_for(process.communicate(data), timeout)
    except TimeoutError:
        await _kill(process)
        raise WorkerTimeout from None
    except asyncio.CancelledError:
        await _kill(process)
        raise
    return Finished(process.returncode, out, err)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()
