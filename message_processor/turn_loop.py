"""One turn as a bounded tool loop: the model answers, or asks for tools, until it is done.

```
round 1..MAX_TOOL_ROUNDS: stream the model's answer (text shown as it comes, hosted tools'
                          steps shown); no function calls → done
                          run the calls (in parallel, each a visible step), send their
                          outputs back with what the round said, next round
one more round:           tools off ("tool_choice": none): answer with what you have
```

Each model round stays under `OPENAI_TIMEOUT_SECONDS`; the whole turn is under the turn deadline
(`TURN_TIMEOUT_SECONDS`, in `MessageProcessor._answer`), and a stop cancels it like any task.
The loop knows tools only as `tools.base.Tool`.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from base_client import BaseClient, Message, ReplyStream
from message_processor.model_slots import turn_deadline
from message_processor.progress import ProgressIndicator
from openai_client import (
    Citation,
    Completed,
    ContainerFile,
    FunctionCall,
    ModelError,
    ModelRequest,
    Reasoning,
    TextDelta,
    ToolActivity,
)
from openai_client.events import ErrorKind
from database import GENERATED_IMAGE_PREFIX, Database, StoredImage
from observability import Stats
from tools.base import OutputFile, Tool, ToolCall, ToolContext, ToolResult, bounded
from tools.registry import ToolRegistry

if TYPE_CHECKING:
    from config import Config
    from openai_client import OpenAIClient

log = logging.getLogger(__name__)

# A round may ask for at most this many calls; the rest are answered "too many" (a prompt-injected
# document must not turn one message into fifty pictures or fifty calls to the team's systems).
MAX_CALLS_PER_ROUND = 8
# A round refused for the provider's rate limits is asked again at most this often, waiting
# what the refusal asks (Retry-After) or a doubling backoff, and only while the turn's deadline
# leaves this much time for the round itself.
MAX_RATE_LIMIT_RETRIES = 12
MAX_BACKOFF_SECONDS = 20.0
MAX_RETRY_AFTER_SECONDS = 60.0
ROUND_TIME_NEEDED_SECONDS = 5.0
RATE_LIMITED_STATUS = "The model is busy right now; asking again…"


def retry_wait(exc: ModelError, attempt: int, time_left: float | None) -> float | None:
    """Seconds to wait before asking again after `exc`, or None: not a rate limit, or no time."""
    if exc.kind is not ErrorKind.RATE_LIMIT:
        return None
    wait = exc.retry_after if exc.retry_after is not None else min(2.0 ** attempt, MAX_BACKOFF_SECONDS)
    if wait > MAX_RETRY_AFTER_SECONDS:
        return None  # the provider says "much later" (a spent quota window): tell the person now
    if time_left is not None and wait + ROUND_TIME_NEEDED_SECONDS > time_left:
        return None
    return max(wait, 0.05)


def time_left() -> float | None:
    """Seconds until this turn's deadline (None outside a turn, or while it is paused)."""
    deadline = turn_deadline.get()
    when = deadline.when() if deadline is not None else None
    return None if when is None else when - asyncio.get_running_loop().time()


LAST_ROUND_NOTE = (
    "\n\nYou have used tools as many times as one answer allows. Answer now with what you have, "
    "and say what you could not find out."
)


@dataclass(frozen=True)
class TurnResult:
    text: str
    completed: Completed  # the last round's (its incomplete reason applies to the answer)
    citations: tuple[Citation, ...] = ()
    rounds: int = 1
    # Lines for the end of the answer: files the code interpreter wrote that could not be shared.
    notes: tuple[str, ...] = ()


@dataclass
class _Round:
    text: str
    calls: list[FunctionCall]
    completed: Completed
    # What the round said, thought and asked for, in its order, as the next round's input items.
    said: list[dict[str, Any]]


class TurnLoopMixin:
    config: Config
    ai: OpenAIClient
    db: Database
    client: BaseClient
    tools: ToolRegistry
    stats: Stats

    if TYPE_CHECKING:  # from UsageMixin
        async def record_usage(
            self, message: Message, model: str, kind: str, input_tokens: int, output_tokens: int
        ) -> None: ...

    async def run_turn(
        self, message: Message, request: ModelRequest, tools: Sequence[Tool], reply: ReplyStream,
        progress: ProgressIndicator, live: bool, context: ToolContext,
    ) -> TurnResult:
        """Rounds until the model answers without calling a tool (see the module docstring)."""
        by_name = {tool.name: tool for tool in tools}
        declared = self.tools.declarations(tools)
        items: list[dict[str, Any]] = []
        said: list[str] = []
        citations: dict[str, Citation] = {}
        shared: set[str] = set()  # container files already in the thread
        notes: list[str] = []
        limit = self.config.max_tool_rounds
        for number in range(1, limit + 2):
            last = number > limit
            this = replace(
                request, tools=declared, items=tuple(items),
                tool_choice="none" if last and declared else None,
                instructions=request.instructions + (LAST_ROUND_NOTE if last else ""),
            )
            lead = "\n\n" if "".join(said).strip() else ""  # a new round's text: a new paragraph
            result = await self._round_until_admitted(message, this, reply, progress, live, lead)
            usage = result.completed
            await self.record_usage(message, request.model, "answer", usage.input_tokens, usage.output_tokens)
            said.append(result.text)
            citations.update({c.url: c for c in usage.citations})
            notes += await self._share_container_files(message, usage.files, shared)
            if not result.calls or last:
                return TurnResult("".join(said), usage, tuple(citations.values()), number, tuple(notes))
            items += result.said
            allowed, refused = result.calls[:MAX_CALLS_PER_ROUND], result.calls[MAX_CALLS_PER_ROUND:]
            outputs = list(await asyncio.gather(*(self._run_tool(message, c, by_name, reply, context) for c in allowed)))
            outputs += [ToolResult(f"Not run: at most {MAX_CALLS_PER_ROUND} tool calls at once. Call it again "
                                   "in the next round if it is still needed.", ok=False) for _ in refused]
            items += [{"kind": "output", "call_id": c.call_id, "output": r.output}
                      for c, r in zip(result.calls, outputs)]
        raise AssertionError("unreachable: the last round always returns")

    async def _round_until_admitted(
        self, message: Message, request: ModelRequest, reply: ReplyStream, progress: ProgressIndicator,
        live: bool, lead: str,
    ) -> _Round:
        """A round, asked again while the provider refuses it for its rate limits before any of
        it was shown: a 429 storm slows the answer down instead of failing it, for as long as
        the turn's deadline leaves time (the concurrency limit is cut meanwhile, model_slots.py)."""
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            shown: list[bool] = []
            try:
                return await asyncio.wait_for(
                    self._model_round(message, request, reply, progress, live, lead, shown),
                    self.config.openai_timeout_seconds,
                )
            except ModelError as exc:
                if exc.usage is not None:  # a failed call costs what the API says it did
                    await self.record_usage(message, request.model, "answer", *exc.usage)
                wait = None if shown or attempt == MAX_RATE_LIMIT_RETRIES else retry_wait(exc, attempt, time_left())
                if wait is None:
                    raise
                log.info("%s: rate-limited by the provider; asking again in %.1f s", message.conversation_key, wait)
                await progress.progress_text(RATE_LIMITED_STATUS)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt raises or returns")

    async def _model_round(
        self, message: Message, request: ModelRequest, reply: ReplyStream, progress: ProgressIndicator,
        live: bool, lead: str = "", shown: list[bool] | None = None,
    ) -> _Round:
        """One model call: text to the reply as it comes (after `lead`), hosted steps shown,
        calls collected. `shown` gets an entry once anything of the round was shown or asked for
        (it can no longer be asked again as if nothing happened)."""
        parts: list[str] = []
        calls: list[FunctionCall] = []
        said: list[dict[str, Any]] = []
        hosted: dict[str, float] = {}  # hosted steps running: id → when they began
        shown = [] if shown is None else shown
        async for event in self.ai.stream(request):
            if not shown:
                shown.append(True)
            if isinstance(event, TextDelta):
                if not parts:
                    if live:
                        await progress.stop()  # the text itself shows progress from now on
                    if not lead:  # the turn's first text (a later round's starts with a new paragraph)
                        self.stats.first_text(time.monotonic() - message.received_at)
                    if lead:
                        parts.append(lead)
                        await reply.append(lead)
                parts.append(event.text)
                await reply.append(event.text)
                if said and said[-1]["kind"] == "text":
                    said[-1]["text"] += event.text
                else:
                    said.append({"kind": "text", "text": event.text})
            elif isinstance(event, Reasoning):
                said.append({"kind": "reasoning", "item": event.item})
            elif isinstance(event, ToolActivity):
                step_id = event.step_id or event.tool
                title = self.tools.hosted_title(event.tool, event.detail)
                if event.status == "in_progress":
                    hosted.setdefault(step_id, time.monotonic())
                    await progress.progress_text(title)
                elif step_id in hosted:  # recorded beside the turn's usage, as local calls are
                    await self._record_call(message, event.tool, "ok" if event.status == "complete" else "error",
                                            hosted.pop(step_id))
                await reply.step(step_id, title, event.status, event.detail, event.sources)
            elif isinstance(event, FunctionCall):
                calls.append(event)
                said.append({"kind": "call", "call_id": event.call_id, "name": event.name, "arguments": event.arguments})
            elif isinstance(event, Completed):
                return _Round("".join(parts), calls, event, said)
        raise ModelError(ErrorKind.CONNECTION, "the answer stream ended early")

    async def _run_tool(
        self, message: Message, call: FunctionCall, tools: dict[str, Tool], reply: ReplyStream,
        context: ToolContext,
    ) -> ToolResult:
        """One local call as a visible step; whatever goes wrong is told to the model, not raised
        (the answer goes on without that tool). A stop or the deadline cancels it."""
        tool = tools.get(call.name)
        if tool is None:
            return ToolResult(f"There is no tool named {call.name!r}; use only the tools offered.", ok=False)
        request = ToolCall(call.call_id, call.name, call.arguments)
        try:
            arguments = request.parsed()
        except ValueError as exc:
            return ToolResult(f"The arguments were not valid JSON ({exc}); call the tool again.", ok=False)
        title = tool.title(arguments)
        await reply.step(call.call_id, title, "in_progress")
        started = time.monotonic()
        try:
            result = await tool.run(request, context)
        except asyncio.CancelledError:
            await self._record_call(message, tool.name, "cancelled", started)
            raise
        except Exception as exc:
            log.exception("%s: tool %s failed", message.conversation_key, tool.name)
            result = ToolResult(f"The tool failed: {type(exc).__name__}. Answer without it.", ok=False,
                                detail="failed")
        await self._record_call(message, tool.name, "ok" if result.ok else "error", started)
        if result.usage is not None:
            model, tokens_in, tokens_out = result.usage
            await self.record_usage(message, model, "picture", tokens_in, tokens_out)
        for file in result.files:
            try:
                await self.share_file(message, file)
            except Exception:  # the call worked; only showing its file failed: say so, go on
                log.exception("%s: could not share %s from %s", message.conversation_key, file.name, tool.name)
                result = replace(result, ok=False,
                                 output=f"{file.name} was made but could not be shown to the person.")
        await reply.step(call.call_id, title, "complete" if result.ok else "error", result.detail)
        return replace(result, output=bounded(result.output))

    async def _share_container_files(
        self, message: Message, files: Sequence[ContainerFile], shared: set[str]
    ) -> list[str]:
        """Files the code interpreter wrote, into the thread; a line for each that could not be."""
        notes = []
        limit = int(self.config.max_file_mb * 1024 * 1024)
        for file in files:
            if file.file_id in shared:
                continue
            shared.add(file.file_id)
            name = file.filename.rsplit("/", 1)[-1] or file.file_id
            try:
                data = await self.ai.container_file(file.container_id, file.file_id, limit)
            except ModelError as exc:
                log.warning("%s: could not fetch %s from the code interpreter: %s",
                            message.conversation_key, name, exc)
                notes.append(f"⚠️ I couldn't attach {name}: {exc.detail}.")
                continue
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            await self.share_file(message, OutputFile(name, data, mimetype))
        return notes

    async def share_file(self, message: Message, file: OutputFile) -> None:
        """A file a tool made, uploaded into the thread; a picture is kept for later edits."""
        await self.client.upload_file(message.channel_id, message.thread_id, file.name, file.data,
                                      title=file.name)
        if file.mimetype.startswith("image/"):
            thread_id = await self.db.ensure_thread(message.channel_id, message.thread_id)
            await self.db.add_images(thread_id, GENERATED_IMAGE_PREFIX + message.message_id,
                                     [StoredImage(file.name, file.mimetype, file.data)])

    async def _record_call(self, message: Message, tool: str, outcome: str, started: float) -> None:
        self.stats.tool_call(tool, outcome)
        duration_ms = int((time.monotonic() - started) * 1000)
        await asyncio.shield(self.db.record_tool_call(
            message.user_id, message.channel_id, message.thread_id, tool, outcome, duration_ms
        ))
