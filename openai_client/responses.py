"""The Responses API dialect: request parameters, and the stream read back into our events.

Pure, like chat_completions.py: `request_params` builds `responses.create` arguments from a
`ModelRequest` (tools, and what earlier rounds of the turn said, thought and got), and
`EventReader` turns the SDK's typed stream events into `TextDelta`, `ToolActivity`,
`FunctionCall`, `Reasoning` and `Completed`, keeping what spans events (the answer's citations) in one place.
"""

from __future__ import annotations

from typing import Any, Iterator

from openai_client.events import (
    Citation,
    Completed,
    ContainerFile,
    ErrorKind,
    FunctionCall,
    ModelError,
    ModelRequest,
    Reasoning,
    StreamEvent,
    TextDelta,
    ToolActivity,
)

# Hosted tools' output items, by the tool they belong to.
HOSTED_ITEMS = {
    "web_search_call": "web_search",
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "image_generation_call": "image_generation",
}
_STARTED = {f"response.{item}.in_progress": tool for item, tool in HOSTED_ITEMS.items()}


def input_items(request: ModelRequest) -> list[dict[str, Any]]:
    """The conversation, then what this turn's earlier rounds said and got back."""
    items: list[dict[str, Any]] = list(request.turns)
    for item in request.items:
        kind = item["kind"]
        if kind == "text":
            items.append({"role": "assistant", "content": item["text"]})
        elif kind == "call":
            items.append({"type": "function_call", "call_id": item["call_id"], "name": item["name"],
                          "arguments": item["arguments"]})
        elif kind == "output":
            items.append({"type": "function_call_output", "call_id": item["call_id"], "output": item["output"]})
        elif kind == "reasoning":
            items.append(item["item"])
    return items


def request_params(request: ModelRequest) -> dict[str, Any]:
    """`responses.create` parameters for a streamed answer."""
    params: dict[str, Any] = {
        "model": request.model,
        "instructions": request.instructions,
        "input": input_items(request),
        "max_output_tokens": request.max_output_tokens,
        "store": False,
        "stream": True,
        **request.extra,
    }
    if "reasoning" in request.extra:
        # Nothing is stored at OpenAI (`store` off): a reasoning model's thinking comes back
        # encrypted, to be sent with the next round of a tool-calling turn.
        params["include"] = ["reasoning.encrypted_content"]
    if request.tools:
        params["tools"] = list(request.tools)
        if request.tool_choice:
            params["tool_choice"] = request.tool_choice
    return params


def reasoning_input(item: Any) -> dict[str, Any]:
    """A finished reasoning output item as the input item that sends it back (the fields the
    input accepts; `encrypted_content` only if the server gave one)."""
    sent: dict[str, Any] = {"type": "reasoning", "id": item.id,
                            "summary": [{"type": "summary_text", "text": s.text} for s in item.summary or ()]}
    if getattr(item, "encrypted_content", None):
        sent["encrypted_content"] = item.encrypted_content
    if getattr(item, "content", None):
        sent["content"] = [{"type": "reasoning_text", "text": c.text} for c in item.content]
    return sent


def _query(item: Any) -> tuple[str, tuple[str, ...]]:
    """A web search's query and the URLs it looked at, from its `action`."""
    action = getattr(item, "action", None)
    query = getattr(action, "query", None) or ""
    sources = tuple(getattr(s, "url", "") for s in getattr(action, "sources", None) or () if getattr(s, "url", ""))
    return query, sources


class EventReader:
    """One response's stream events → our events (stateful: citations arrive with the message)."""

    def __init__(self) -> None:
        self._citations: dict[str, Citation] = {}
        self._files: dict[str, ContainerFile] = {}

    def read(self, event: Any) -> Iterator[StreamEvent]:
        kind = event.type
        if kind == "response.output_text.delta":
            yield TextDelta(event.delta)
        elif kind in _STARTED:
            yield ToolActivity(_STARTED[kind], step_id=getattr(event, "item_id", "") or "")
        elif kind == "response.output_item.done":
            yield from self._item_done(event.item)
        elif kind in ("response.completed", "response.incomplete"):
            usage = getattr(event.response, "usage", None)
            details = getattr(event.response, "incomplete_details", None)
            yield Completed(
                input_tokens=getattr(usage, "input_tokens", 0) or 0,
                output_tokens=getattr(usage, "output_tokens", 0) or 0,
                incomplete_reason=getattr(details, "reason", None) if kind.endswith("incomplete") else None,
                citations=tuple(self._citations.values()),
                files=tuple(self._files.values()),
            )
        elif kind == "response.failed":
            error = getattr(event.response, "error", None)
            code = getattr(error, "code", "") or ""
            message = getattr(error, "message", None) or "the model reported a failure"
            usage = getattr(event.response, "usage", None)
            spent = None if usage is None else (
                getattr(usage, "input_tokens", 0) or 0, getattr(usage, "output_tokens", 0) or 0
            )
            raise ModelError(
                ErrorKind.RATE_LIMIT if "rate_limit" in code else ErrorKind.SERVER,
                f"{code}: {message}" if code else message, usage=spent,
            )
        elif kind == "error":
            raise ModelError(ErrorKind.SERVER, getattr(event, "message", None) or "stream error")

    def _item_done(self, item: Any) -> Iterator[StreamEvent]:
        kind = getattr(item, "type", "")
        if kind == "function_call":
            yield FunctionCall(item.call_id, item.name, item.arguments or "")
        elif kind == "reasoning":
            yield Reasoning(reasoning_input(item))
        elif kind in HOSTED_ITEMS:
            failed = getattr(item, "status", "") in ("failed", "incomplete")
            query, sources = _query(item) if kind == "web_search_call" else ("", ())
            yield ToolActivity(HOSTED_ITEMS[kind], step_id=getattr(item, "id", "") or "",
                               status="error" if failed else "complete", detail=query, sources=sources)
        elif kind == "message":
            for part in getattr(item, "content", None) or ():
                for note in getattr(part, "annotations", None) or ():
                    kind = getattr(note, "type", "")
                    if kind == "url_citation" and note.url not in self._citations:
                        self._citations[note.url] = Citation(note.url, getattr(note, "title", "") or "")
                    elif kind == "container_file_citation" and note.file_id not in self._files:
                        self._files[note.file_id] = ContainerFile(note.container_id, note.file_id,
                                                                  getattr(note, "filename", "") or note.file_id)
