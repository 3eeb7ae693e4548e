"""A turn is a bounded tool loop: over the loopback OpenAI in both API styles, the real bot."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.openai import CodeRun, FakeOpenAI, FunctionCall, Reasoning, Reply, WebSearch
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies
from tools.base import Tool, ToolCall, ToolContext, ToolResult
from tools.registry import ToolRegistry


class Orders(Tool):
    """A local function tool, as the team's own tools are (MCP tools have the same interface)."""

    name = "orders__lookup_order"
    description = "Look up an order by its number"

    def __init__(self, hang: asyncio.Event | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.hang = hang
        self.cancelled = 0

    def parameters(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"number": {"type": "integer"}}, "required": ["number"]}

    def title(self, arguments: dict[str, Any]) -> str:
        return f"orders: lookup_order {arguments.get('number', '')}".strip()

    async def run(self, call: ToolCall, context: ToolContext) -> ToolResult:
        arguments = call.parsed()
        self.calls.append(arguments)
        if self.hang is not None:
            try:
                await self.hang.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return ToolResult(f"order {arguments['number']}: shipped on Monday", detail="found")


def use_tools(app: Any, *tools: Tool) -> None:
    app.processor.tools = ToolRegistry(app.config.openai_api_style, local=lambda: list(tools))


async def test_the_model_calls_two_tools_at_once_and_answers_with_their_outputs(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(SLACK_NATIVE_STREAMING="true")
    orders = Orders()
    use_tools(app, orders)
    openai.script(
        Reply(calls=[FunctionCall("orders__lookup_order", {"number": 7}, call_id="c7"),
                     FunctionCall("orders__lookup_order", {"number": 8}, call_id="c8")]),
        Reply(text="Both shipped on Monday."),
    )
    ts = await slack.user_says("U0ALICE", "D0ALICE", "where are orders 7 and 8?")

    assert await wait_replies(slack, "D0ALICE", ts) == ["Both shipped on Monday."]
    await app.processor.wait_idle()
    first, second = openai.responses_requests()
    assert [t["name"] for t in first["tools"]] == ["orders__lookup_order"]
    assert first["tools"][0]["parameters"]["required"] == ["number"]
    assert sorted(a["number"] for a in orders.calls) == [7, 8]
    assert {(o["call_id"], o["output"]) for o in openai.function_outputs(second)} == {
        ("c7", "order 7: shipped on Monday"), ("c8", "order 8: shipped on Monday"),
    }
    calls = [i for i in second["input"] if i.get("type") == "function_call"]
    assert [(c["call_id"], c["name"]) for c in calls] == [("c7", "orders__lookup_order"), ("c8", "orders__lookup_order")]
    # Each call was a task card: in progress, then complete.
    cards = [chunk for call in slack.calls if call.method in ("chat.startStream", "chat.appendStream")
             for chunk in call.params.get("chunks") or [] if chunk.get("type") == "task_update"]
    assert [(c["id"], c["status"]) for c in cards if c["id"] == "c7"] == [("c7", "in_progress"), ("c7", "complete")]
    assert cards[0]["title"].startswith("orders: lookup_order")
    recorded = await app.db.tool_calls("D0ALICE", ts)
    assert [(r["tool"], r["outcome"]) for r in recorded] == [("orders__lookup_order", "ok")] * 2


async def test_chat_completions_servers_get_function_tools_and_tool_messages(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_API_STYLE="chat_completions")
    use_tools(app, Orders())
    openai.script(Reply(calls=[FunctionCall("orders__lookup_order", {"number": 3}, call_id="k3")]),
                  Reply(text="Order 3 shipped."))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "order 3?")

    assert await wait_replies(slack, "D0ALICE", ts) == ["Order 3 shipped."]
    first, second = openai.chat_requests()
    assert first["tools"][0]["function"]["name"] == "orders__lookup_order"
    assistant = [m for m in second["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    assert assistant[0]["tool_calls"][0]["id"] == "k3"
    assert openai.tool_messages(second) == [
        {"role": "tool", "tool_call_id": "k3", "content": "order 3: shipped on Monday"}
    ]


async def test_a_reasoning_model_gets_its_reasoning_back_before_the_calls_it_led_to(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_MODEL="gpt-5.5")  # a reasoning model (REASONING_MODEL_PREFIXES)
    use_tools(app, Orders())
    openai.script(
        Reply(calls=[Reasoning("Look the order up."), FunctionCall("orders__lookup_order", {"number": 5}, call_id="c5")]),
        Reply(text="Checking the date too.", calls=[Reasoning("Now the date."),
                                                   FunctionCall("orders__lookup_order", {"number": 6}, call_id="c6")]),
        Reply(text="Order 5 shipped on Monday.", calls=[Reasoning("Enough.")]),
    )
    ts = await slack.user_says("U0ALICE", "D0ALICE", "order 5?")

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.endswith("Order 5 shipped on Monday.")  # every round accepted by the fake's store-off rules
    first, second, third = openai.responses_requests()
    assert all(r["store"] is False and r["include"] == ["reasoning.encrypted_content"] for r in (first, second, third))
    turn = [i.get("type") or i.get("role") for i in third["input"]]
    assert turn == ["user", "reasoning", "function_call", "function_call_output",  # in the order streamed
                    "reasoning", "function_call", "assistant", "function_call_output"]
    thoughts = [i for i in third["input"] if i.get("type") == "reasoning"]
    assert [t["summary"][0]["text"] for t in thoughts] == ["Look the order up.", "Now the date."]
    assert all(t["encrypted_content"] in openai.reasoning_issued for t in thoughts)


async def test_a_model_that_is_not_a_reasoning_model_is_not_asked_for_reasoning(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")
    await wait_replies(slack, "D0ALICE", ts)
    assert "include" not in openai.responses_requests()[0]


async def test_after_max_tool_rounds_the_model_must_answer_with_what_it_has(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(MAX_TOOL_ROUNDS="2")
    use_tools(app, Orders())
    openai.script(
        Reply(calls=[FunctionCall("orders__lookup_order", {"number": 1})]),
        Reply(calls=[FunctionCall("orders__lookup_order", {"number": 2})]),
        Reply(text="Here is what I found so far."),
    )
    ts = await slack.user_says("U0ALICE", "D0ALICE", "check everything")

    assert await wait_replies(slack, "D0ALICE", ts) == ["Here is what I found so far."]
    requests = openai.responses_requests()
    assert len(requests) == 3
    assert "tool_choice" not in requests[1] and requests[2]["tool_choice"] == "none"
    assert "Answer now with what you have" in requests[2]["instructions"]


async def test_a_broken_call_is_told_to_the_model_and_the_answer_goes_on(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    use_tools(app, Orders())
    openai.script(
        Reply(calls=[FunctionCall("orders__cancel_everything", {}, call_id="x1"),
                     FunctionCall("orders__lookup_order", "{not json", call_id="x2")]),
        Reply(text="I could not do that."),
    )
    ts = await slack.user_says("U0ALICE", "D0ALICE", "cancel it all")

    assert await wait_replies(slack, "D0ALICE", ts) == ["I could not do that."]
    outputs = {o["call_id"]: o["output"] for o in openai.function_outputs()}
    assert "no tool named 'orders__cancel_everything'" in outputs["x1"]
    assert "not valid JSON" in outputs["x2"]


async def test_web_search_sources_end_the_answer_as_links(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot(ENABLE_WEB_SEARCH="true", SLACK_NATIVE_STREAMING="true")
    openai.script(Reply(
        text="It rains in Paris today.",
        calls=[WebSearch("weather in Paris", sources=[("https://meteo.example/paris", "Météo Paris"),
                                                       ("https://meteo.example/paris", "Météo Paris")])],
    ))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "weather in Paris?")

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text == "It rains in Paris today.\n\nSources:\n- [Météo Paris](https://meteo.example/paris)"
    assert openai.declared_tools(openai.responses_requests()[0]) == ["web_search", "make_picture"]
    cards = [chunk for call in slack.calls if call.method in ("chat.startStream", "chat.appendStream")
             for chunk in call.params.get("chunks") or [] if chunk.get("type") == "task_update"]
    assert cards[0]["status"] == "in_progress" and cards[0]["title"] == "Searching the web"
    assert cards[-1]["status"] == "complete" and cards[-1]["title"] == "Searching the web for “weather in Paris”"
    assert cards[-1]["sources"][0]["url"] == "https://meteo.example/paris"
    await app.processor.wait_idle()


async def test_the_turn_deadline_cancels_a_tool_that_hangs_and_frees_the_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_TIMEOUT_SECONDS="1", TURN_TIMEOUT_SECONDS="2")
    orders = Orders(hang=asyncio.Event())
    use_tools(app, orders)
    openai.script(Reply(calls=[FunctionCall("orders__lookup_order", {"number": 9})]))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "order 9?")

    [notice] = await wait_replies(slack, "D0ALICE", ts, timeout=15)
    assert "took longer than 2 seconds in all" in notice
    await app.processor.wait_idle()
    assert orders.cancelled == 1
    assert [r["outcome"] for r in await app.db.tool_calls("D0ALICE", ts)] == ["cancelled"]
    assert await app.db.message_status("D0ALICE", ts) == "timed_out"
    orders.hang = None
    openai.script(Reply(text="Next one."))
    again = await slack.user_says("U0ALICE", "D0ALICE", "and now?", thread_ts=ts)
    assert (await wait_replies(slack, "D0ALICE", ts, count=2))[-1] == "Next one."
    assert again


async def test_an_edited_reply_shows_the_running_step_on_a_line_above_the_text(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    gate = asyncio.Event()
    use_tools(app, Orders(hang=gate))
    openai.script(Reply(text="Let me check.", calls=[FunctionCall("orders__lookup_order", {"number": 9})]),
                  Reply(text="It shipped."))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "order 9?")

    def progress_text() -> str:
        messages = slack.bot_messages("D0ALICE", ts)
        return messages[-1]["text"] if messages else ""

    await slack.wait_for(lambda: progress_text().startswith(":gear: orders: lookup_order 9\nLet me check."),
                         message=f"no step line: {progress_text()!r}")
    gate.set()
    assert await wait_replies(slack, "D0ALICE", ts) == ["Let me check.\n\nIt shipped."]


async def test_files_the_code_interpreter_writes_are_uploaded_into_the_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(ENABLE_CODE_INTERPRETER="true", OPENAI_IMAGE_MODEL="off", SLACK_NATIVE_STREAMING="true",
                          MAX_FILE_MB="0.01")
    chart = b"\x89PNG\r\n\x1a\n" + b"chart" * 10
    big = b"x" * 20_000  # over the 10 kB limit of this test
    openai.script(Reply(
        text="Here is the chart: chart.png, and the table: table.csv",
        calls=[CodeRun("plot(sales)", logs="ok", files=[("chart.png", chart), ("table.csv", big)])],
    ))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "plot the sales by month")

    [text] = await wait_replies(slack, "D0ALICE", ts)
    await app.processor.wait_idle()
    request = openai.responses_requests()[0]
    assert {"type": "code_interpreter", "container": {"type": "auto"}} in request["tools"]
    [upload] = [f for m in slack.bot_messages("D0ALICE", ts) for f in m.get("files", [])]
    assert upload["name"] == "chart.png" and slack.file_bytes[upload["id"]] == chart
    assert "I couldn't attach table.csv: it is 19 kB, over the 10 kB limit." in text
    cards = [chunk for call in slack.calls if call.method in ("chat.startStream", "chat.appendStream")
             for chunk in call.params.get("chunks") or [] if chunk.get("type") == "task_update"]
    assert [(c["title"], c["status"]) for c in cards] == [("Running code", "in_progress"), ("Running code", "complete")]
    assert [(r["tool"], r["outcome"]) for r in await app.db.tool_calls("D0ALICE", ts)] == [("code_interpreter", "ok")]


async def test_a_round_runs_at_most_eight_calls_and_tells_the_model_about_the_rest(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    orders = Orders()
    use_tools(app, orders)
    openai.script(
        Reply(calls=[FunctionCall("orders__lookup_order", {"number": n}, call_id=f"n{n}") for n in range(12)]),
        Reply(text="Looked up what I could."),
    )
    ts = await slack.user_says("U0ALICE", "D0ALICE", "look up twelve orders")

    assert await wait_replies(slack, "D0ALICE", ts) == ["Looked up what I could."]
    assert sorted(a["number"] for a in orders.calls) == list(range(8))
    outputs = {o["call_id"]: o["output"] for o in openai.function_outputs()}
    assert len(outputs) == 12 and all(outputs[f"n{n}"].startswith("Not run: at most 8") for n in range(8, 12))
