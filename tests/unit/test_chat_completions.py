"""The Chat Completions translation: ModelRequest in, chat parameters out; chunks in, events out."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk

from openai_client import Completed, ModelRequest, TextDelta
from openai_client.chat_completions import (
    ChunkReader,
    chat_messages,
    chat_options,
    chat_part,
    request_params,
    stopped_early,
)

IMAGE = "data:image/png;base64,iVBORw0KGgo="


def chunk(content: str | None = None, finish: str | None = None, usage: tuple[int, int] | None = None,
          choices: bool = True) -> ChatCompletionChunk:
    """A chunk as the SDK parses it from the wire."""
    data: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
    if choices:
        delta = {} if content is None else {"content": content}
        data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage:
        data["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return ChatCompletionChunk.model_validate(data)


def events(*chunks: ChatCompletionChunk) -> tuple[list[Any], Completed | None]:
    reader = ChunkReader()
    seen = [event for c in chunks for event in reader.read(c)]
    return seen, reader.end()


# --- request ---------------------------------------------------------------------------------


def test_parts_become_chat_parts() -> None:
    assert chat_part({"type": "input_text", "text": "hi"}) == {"type": "text", "text": "hi"}
    assert chat_part({"type": "input_image", "image_url": IMAGE}) == {"type": "image_url", "image_url": {"url": IMAGE}}
    assert chat_part({"type": "input_image", "image_url": IMAGE, "detail": "low"}) == {
        "type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}


def test_messages_start_with_the_system_message_and_keep_the_turns_in_order() -> None:
    turns = [
        {"role": "user", "content": "Alice: hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "input_text", "text": "Alice: this?"},
                                     {"type": "input_image", "image_url": IMAGE}]},
    ]
    assert chat_messages("Be brief.", turns) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Alice: hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Alice: this?"},
                                     {"type": "image_url", "image_url": {"url": IMAGE}}]},
    ]
    assert turns[2]["content"][0]["type"] == "input_text"  # the request itself is not changed
    assert chat_messages("", [{"role": "user", "content": "x"}]) == [{"role": "user", "content": "x"}]


def test_responses_options_map_to_chat_equivalents_and_web_search_is_dropped() -> None:
    extra = {"reasoning": {"effort": "low"}, "text": {"verbosity": "high"},
             "tools": [{"type": "web_search"}], "store": False}
    assert chat_options(extra) == {"reasoning_effort": "low", "verbosity": "high"}
    assert chat_options({"temperature": 0.3, "tools": [{"type": "web_search_preview"}]}) == {"temperature": 0.3}
    function = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert chat_options({"tools": [{"type": "web_search"}, function]}) == {"tools": [function]}


def test_request_params_stream_with_usage_and_no_tools() -> None:
    request = ModelRequest(
        model="llama3", instructions="System.", turns=[{"role": "user", "content": "Bob: hi"}],
        max_output_tokens=512, extra={"temperature": 0.7, "tools": [{"type": "web_search"}]},
    )
    assert request_params(request) == {
        "model": "llama3",
        "messages": [{"role": "system", "content": "System."}, {"role": "user", "content": "Bob: hi"}],
        "max_completion_tokens": 512,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


# --- stream ----------------------------------------------------------------------------------


def test_deltas_then_usage_complete_the_answer() -> None:
    seen, end = events(chunk(""), chunk("Hel"), chunk("lo"), chunk(finish="stop"),
                       chunk(usage=(12, 3), choices=False))
    assert seen == [TextDelta("Hel"), TextDelta("lo"), Completed(12, 3, None)]
    assert end is None  # completed once only


def test_length_is_the_responses_cut_off_reason() -> None:
    seen, _ = events(chunk("par"), chunk(finish="length"), chunk(usage=(5, 1), choices=False))
    assert seen[-1] == Completed(5, 1, "max_output_tokens")
    assert stopped_early("stop") is None and stopped_early(None) is None
    assert stopped_early("content_filter") == "content_filter"


def test_usage_on_the_finish_chunk_itself_completes_at_once() -> None:
    seen, _ = events(chunk("a"), chunk("b", finish="stop", usage=(4, 2)))
    assert seen == [TextDelta("a"), TextDelta("b"), Completed(4, 2, None)]


def test_a_server_without_usage_completes_at_the_end() -> None:
    seen, end = events(chunk("a"), chunk(finish="stop"))
    assert seen == [TextDelta("a")]
    assert end == Completed(0, 0, None)


def test_a_stream_without_a_finish_does_not_complete() -> None:
    seen, end = events(chunk("a"), chunk("b"))
    assert seen == [TextDelta("a"), TextDelta("b")] and end is None
    # Usage before any finish (a server reporting it on every chunk) is not an end either.
    seen, end = events(chunk("a", usage=(1, 1)))
    assert seen == [TextDelta("a")] and end is None
