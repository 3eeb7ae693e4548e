"""The Responses API dialect: request parameters, and the stream read back into our events.

Pure, like chat_completions.py: `request_params` builds `responses.create` arguments from a
`ModelRequest` (tools, and what earlier rounds of the turn said, thought and got), and
`EventReader` turns the stream's JSON events into `TextDelta`, `ToolActivity`,
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


def reasoning_input(item: dict[str, Any]) -> dict[str, Any]:
    """A finished reasoning output item as the input item that sends it back (the fields the
    input accepts; `encrypted_content` only if the server gave one)."""
    sent: dict[str, Any] = {"type": "reasoning", "id": item.get("id", ""),
                            "summary": [{"type": "summary_text", "text": s.get("text", "")}
                                        for s in item.get("summary") or ()]}
    if item.get("encrypted_content"):
        sent["encrypted_content"] = item["encrypted_content"]
    if item.get("content"):
        sent["content"] = [{"type": "reasoning_text", "text": c.get("text", "")} for c in item["content"]]
    return sent


def _query(item: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A web search's query and the URLs it looked at, from its `action`."""
    action = item.get("action") or {}
    query = action.get("query") or ""
    sources = tuple(s["url"] for s in action.get("sources") or () if isinstance(s, dict) and s.get("url"))
    return query, sources


def _tokens(response: dict[str, Any]) -> tuple[int, int]:
    usage = response.get("usage") or {}
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


class EventReader:
    """One response's stream events → our events (stateful: citations arrive with the message).

    The events are the API's JSON as it came (`client.py` asks the SDK for them unparsed:
    validating ~20 events per answer into pydantic models cost more of the loop's CPU than the
    rest of an answer's work); this reads only the fields it needs, each with a default.
    """

    def __init__(self) -> None:
        self._citations: dict[str, Citation] = {}
        self._files: dict[str, ContainerFile] = {}

    def read(self, event: dict[str, Any]) -> Iterator[StreamEvent]:
        kind = event.get("type", "")
        if kind == "response.output_text.delta":
            yield TextDelta(event.get("delta") or "")
        elif kind in _STARTED:
            yield ToolActivity(_STARTED[kind], step_id=event.get("item_id") or "")
        elif kind == "response.output_item.done":
            yield from self._item_done(event.get("item") or {})
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            details = response.get("incomplete_details") or {}
            tokens_in, tokens_out = _tokens(response)
            yield Completed(
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                incomplete_reason=details.get("reason") if kind.endswith("incomplete") else None,
                citations=tuple(self._citations.values()),
                files=tuple(self._files.values()),
            )
        elif kind == "response.failed":
            response = event.get("response") or {}
            error = response.get("error") or {}
            code = error.get("code") or ""
            message = error.get("message") or "the model reported a failure"
            spent = _tokens(response) if response.get("usage") else None
            raise ModelError(
                ErrorKind.RATE_LIMIT if "rate_limit" in code else ErrorKind.SERVER,
                f"{code}: {message}" if code else message, usage=spent,
            )
        elif kind == "error":
            raise ModelError(ErrorKind.SERVER, event.get("message") or "stream error")

    def _item_done(self, item: dict[str, Any]) -> Iterator[StreamEvent]:
        kind = item.get("type", "")
        if kind == "function_call":
            yield FunctionCall(item.get("call_id") or "", item.get("name") or "", item.get("arguments") or "")
        elif kind == "reasoning":
            yield Reasoning(reasoning_input(item))
        elif kind in HOSTED_ITEMS:
            failed = item.get("status") in ("failed", "incomplete")
            query, sources = _query(item) if kind == "web_search_call" else ("", ())
            yield ToolActivity(HOSTED_ITEMS[kind], step_id=item.get("id") or "",
                               status="error" if failed else "complete", detail=query, sources=sources)
        elif kind == "message":
            for part in item.get("content") or ():
                for note in part.get("annotations") or () if isinstance(part, dict) else ():
                    self._note(note)

    def _note(self, note: dict[str, Any]) -> None:
        kind = note.get("type", "")
        if kind == "url_citation" and note.get("url") and note["url"] not in self._citations:
            self._citations[note["url"]] = Citation(note["url"], note.get("title") or "")
        elif kind == "container_file_citation" and note.get("file_id") and note["file_id"] not in self._files:
            self._files[note["file_id"]] = ContainerFile(note.get("container_id") or "", note["file_id"],
                                                         note.get("filename") or note["file_id"])
