"""A turn's earlier rounds in each API style's shape, and function calls read back (pure)."""

from __future__ import annotations

from types import SimpleNamespace as NS

from openai_client import chat_completions, responses
from openai_client.events import FunctionCall, ModelRequest
from tools.base import ToolCall, bounded
from tools.registry import ToolRegistry
from settings import Settings

THOUGHT = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"}
ITEMS = (
    {"kind": "reasoning", "item": THOUGHT},
    {"kind": "text", "text": "Let me look."},
    {"kind": "call", "call_id": "c1", "name": "orders__lookup", "arguments": '{"id": 7}'},
    {"kind": "call", "call_id": "c2", "name": "orders__status", "arguments": "{}"},
    {"kind": "output", "call_id": "c1", "output": "order 7: shipped"},
    {"kind": "output", "call_id": "c2", "output": "all systems go"},
)
REQUEST = ModelRequest("m", "be brief", [{"role": "user", "content": "Alice: where is 7?"}], 100,
                       tools=({"type": "function", "name": "orders__lookup"},), items=ITEMS)


def test_responses_carries_the_rounds_as_items():
    params = responses.request_params(REQUEST)
    assert params["input"] == [
        {"role": "user", "content": "Alice: where is 7?"},
        THOUGHT,
        {"role": "assistant", "content": "Let me look."},
        {"type": "function_call", "call_id": "c1", "name": "orders__lookup", "arguments": '{"id": 7}'},
        {"type": "function_call", "call_id": "c2", "name": "orders__status", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "order 7: shipped"},
        {"type": "function_call_output", "call_id": "c2", "output": "all systems go"},
    ]
    assert params["tools"] == [{"type": "function", "name": "orders__lookup"}] and "tool_choice" not in params
    assert "include" not in params  # not a reasoning model's request


def test_a_reasoning_models_request_asks_for_its_reasoning_encrypted():
    from dataclasses import replace

    params = responses.request_params(replace(REQUEST, extra={"reasoning": {"effort": "low"}}))
    assert params["include"] == ["reasoning.encrypted_content"] and params["store"] is False
    chat = chat_completions.request_params(replace(REQUEST, extra={"reasoning": {"effort": "low"}}))
    assert "include" not in chat and chat["reasoning_effort"] == "low"


def test_chat_carries_the_rounds_as_an_assistant_message_and_tool_messages():
    params = chat_completions.request_params(REQUEST)
    assert params["messages"][2:] == [
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "orders__lookup", "arguments": '{"id": 7}'}},
            {"id": "c2", "type": "function", "function": {"name": "orders__status", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "order 7: shipped"},
        {"role": "tool", "tool_call_id": "c2", "content": "all systems go"},
    ]


def test_the_last_round_turns_tools_off():
    from dataclasses import replace

    assert responses.request_params(replace(REQUEST, tool_choice="none"))["tool_choice"] == "none"
    assert chat_completions.request_params(replace(REQUEST, tool_choice="none"))["tool_choice"] == "none"


def chunk(*, content=None, calls=None, finish=None, usage=None):
    delta = NS(content=content, tool_calls=calls)
    return NS(choices=[NS(index=0, delta=delta, finish_reason=finish)] if usage is None else [], usage=usage)


def piece(index, *, id=None, name=None, arguments=None):
    return NS(index=index, id=id, function=NS(name=name, arguments=arguments))


def test_chat_function_calls_are_assembled_from_their_pieces():
    reader = chat_completions.ChunkReader()
    events = []
    for c in (
        chunk(calls=[piece(0, id="call_a", name="orders__lookup", arguments="")]),
        chunk(calls=[piece(0, arguments='{"id"'), piece(1, id="call_b", name="orders__status", arguments="{}")]),
        chunk(calls=[piece(0, arguments=": 7}")]),
        chunk(finish="tool_calls"),
        chunk(usage=NS(prompt_tokens=5, completion_tokens=3)),
    ):
        events.extend(reader.read(c))
    assert events[:2] == [FunctionCall("call_a", "orders__lookup", '{"id": 7}'),
                          FunctionCall("call_b", "orders__status", "{}")]
    assert events[2].input_tokens == 5


def test_tools_for_a_turn_follow_the_settings_and_the_style():
    on = Settings(model="m", web_search=True)
    assert [t.name for t in ToolRegistry("responses").for_turn(on)] == ["web_search"]
    assert ToolRegistry("chat_completions").for_turn(on) == []
    assert ToolRegistry("responses").for_turn(Settings(model="m")) == []
    assert ToolRegistry.hosted_title("web_search", "rain in Paris") == "Searching the web for “rain in Paris”"


def test_tool_arguments_and_outputs_are_bounded_and_checked():
    assert ToolCall("c", "t", "").parsed() == {}
    assert ToolCall("c", "t", '{"a": 1}').parsed() == {"a": 1}
    for bad in ("[1]", "{", "7"):
        try:
            ToolCall("c", "t", bad).parsed()
        except ValueError:
            continue
        raise AssertionError(bad)
    assert bounded("x" * 10, 5) == "xxxxx\n[… cut: 5 more characters not shown]"
