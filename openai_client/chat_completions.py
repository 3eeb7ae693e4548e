"""The Chat Completions dialect: for servers that only speak `/v1/chat/completions`.

Ollama, vLLM, LM Studio and Azure OpenAI deployments answer Chat Completions but not the
Responses API. The processor keeps building `ModelRequest`s in the Responses shape; these pure
functions translate them into `chat.completions.create` parameters and translate the streamed
chunks back into the same `TextDelta` / `Completed` events, so nothing above `OpenAIClient`
knows which style runs. No I/O here, so every rule is unit-tested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator

from openai_client.events import Completed, FunctionCall, ModelRequest, StreamEvent, TextDelta

log = logging.getLogger(__name__)

# Built-in Responses tools a Chat Completions server has no equivalent for.
_RESPONSES_ONLY_TOOLS = {"web_search", "web_search_preview"}
# Chat finish reasons that mean "the text so far is valid but stopped early", named as the
# Responses API names them (`incomplete_details.reason`), so `incomplete_note` reads the same.
_STOPPED_EARLY = {"length": "max_output_tokens", "content_filter": "content_filter"}


def chat_part(part: Any) -> Any:
    """One content part: Responses `input_text`/`input_image` become chat `text`/`image_url`."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "input_image":
        image: dict[str, Any] = {"url": part.get("image_url", "")}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    return part


def chat_messages(instructions: str, turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system message from `instructions`, then the turns with their parts converted."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    for turn in turns:
        content = turn.get("content", "")
        if isinstance(content, list):
            content = [chat_part(part) for part in content]
        messages.append({"role": turn["role"], "content": content})
    return messages


def round_messages(items: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """What a turn's earlier rounds said and got, as chat messages: the assistant's text and
    calls as one message with `tool_calls`, each output as a `tool` message."""
    messages: list[dict[str, Any]] = []
    assistant: dict[str, Any] | None = None
    for item in items:
        kind = item["kind"]
        if kind in ("text", "call"):
            if assistant is None:
                assistant = {"role": "assistant", "content": None}
                messages.append(assistant)
            if kind == "text":
                assistant["content"] = (assistant["content"] or "") + item["text"]
            else:
                assistant.setdefault("tool_calls", []).append({
                    "id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                })
        elif kind == "output":
            assistant = None
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        # "reasoning" items exist only in the Responses API: nothing to send back here.
    return messages


def chat_options(extra: dict[str, Any]) -> dict[str, Any]:
    """Responses-only options mapped to their chat equivalents; web search is dropped.

    `reasoning.effort` becomes `reasoning_effort`, `text.verbosity` becomes `verbosity`;
    options both APIs share (e.g. `temperature`) pass through unchanged.
    """
    options: dict[str, Any] = {}
    for name, value in extra.items():
        if name == "reasoning":
            if isinstance(value, dict) and value.get("effort"):
                options["reasoning_effort"] = value["effort"]
        elif name == "text":
            if isinstance(value, dict) and value.get("verbosity"):
                options["verbosity"] = value["verbosity"]
        elif name == "tools":
            kept = [t for t in value or [] if not (isinstance(t, dict) and t.get("type") in _RESPONSES_ONLY_TOOLS)]
            if len(kept) < len(value or []):
                log.debug("web search is not available in the chat_completions style: not sent")
            if kept:
                options["tools"] = kept
        elif name != "store":
            options[name] = value
    return options


def request_params(request: ModelRequest) -> dict[str, Any]:
    """`chat.completions.create` parameters for a streamed answer, usage included."""
    params = {
        **chat_options(request.extra),
        "model": request.model,
        "messages": chat_messages(request.instructions, request.turns) + round_messages(request.items),
        "max_completion_tokens": request.max_output_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        params["tools"] = list(request.tools)
        if request.tool_choice:
            params["tool_choice"] = request.tool_choice
    return params


def stopped_early(finish_reason: str | None) -> str | None:
    """The `Completed.incomplete_reason` for a chat finish reason (None: a normal end)."""
    return _STOPPED_EARLY.get(finish_reason or "")


@dataclass
class ChunkReader:
    """Turns a chat completion stream into the processor's events.

    Stateful because the pieces arrive apart: with `include_usage`, the finish reason comes on
    one chunk and the token counts on a later one (with no choices). A server that ignores
    `stream_options` sends no usage chunk at all: `end()` then completes with zero tokens.
    """

    finish_reason: str | None = None
    finished: bool = False
    done: bool = False
    # Function calls being assembled, by their index: [id, name, arguments so far].
    calls: dict[int, list[str]] = field(default_factory=dict)

    def read(self, chunk: Any) -> Iterator[StreamEvent]:
        """Events for one chunk: text deltas, the function calls once the choice finishes, and
        `Completed` once usage follows the finish."""
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "index", 0) not in (0, None):
                continue  # n=1 is all we ask for; ignore any other choice
            delta = getattr(choice, "delta", None)
            content = getattr(delta, "content", None)
            if content:
                yield TextDelta(content)
            for piece in getattr(delta, "tool_calls", None) or ():
                call = self.calls.setdefault(getattr(piece, "index", 0) or 0, ["", "", ""])
                function = getattr(piece, "function", None)
                call[0] = getattr(piece, "id", None) or call[0]
                call[1] = getattr(function, "name", None) or call[1]
                call[2] += getattr(function, "arguments", None) or ""
            if getattr(choice, "finish_reason", None):
                self.finish_reason = choice.finish_reason
                self.finished = True
                for index in sorted(self.calls):
                    call_id, name, arguments = self.calls[index]
                    yield FunctionCall(call_id or f"call_{index}", name, arguments)
                self.calls.clear()
        usage = getattr(chunk, "usage", None)
        if usage is not None and self.finished and not self.done:
            self.done = True
            yield Completed(
                input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                output_tokens=getattr(usage, "completion_tokens", 0) or 0,
                incomplete_reason=stopped_early(self.finish_reason),
            )

    def end(self) -> Completed | None:
        """At the end of the stream: `Completed` if the answer finished, else None (broken)."""
        if self.done or not self.finished:
            return None
        self.done = True
        return Completed(incomplete_reason=stopped_early(self.finish_reason))
