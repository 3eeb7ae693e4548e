"""Settings from Slack change what the bot does, as seen on the loopback Slack and OpenAI."""

from __future__ import annotations

import time
from typing import Any

from settings_modal import ModalContext, sign_context, signing_key
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import interaction, view_state, wait_replies, welcomes

MODELS = {"OPENAI_MODEL": "gpt-5.5", "AVAILABLE_MODELS": "gpt-5.5,gpt-5.5-mini,gpt-4.1"}


def blocks_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"]}


async def open_settings(slack: FakeSlack, user: str = "U0ALICE") -> tuple[str, dict[str, Any]]:
    before = len(slack.calls_to("views.open"))
    envelope = await slack.push_envelope("slash_commands", {
        "command": "/ai-settings", "text": "", "user_id": user, "channel_id": "D0ALICE",
        "team_id": slack.team_id, "trigger_id": f"trigger-{user}", "response_url": "http://x",
    }, accepts_response_payload=True)
    await slack.wait_for_ack(envelope)
    await slack.wait_for(lambda: len(slack.calls_to("views.open")) > before)
    call = slack.calls_to("views.open")[-1]
    view_id = next(i for i, v in slack.views.items() if v["private_metadata"] == call.params["view"]["private_metadata"])
    return view_id, slack.views[view_id]


async def submit(slack: FakeSlack, view_id: str, view: dict[str, Any], user: str = "U0ALICE", **changes: Any):
    payload = interaction(slack, "view_submission", user, view={
        **view, "id": view_id, "hash": "h1", "state": {"values": view_state(view, **changes)},
    })
    envelope = await slack.push_envelope("interactive", payload, accepts_response_payload=True)
    return await slack.wait_for_ack(envelope)


async def test_slash_command_opens_the_modal_with_current_values(slack: FakeSlack, start_bot):
    await start_bot(**MODELS, DEFAULT_REASONING_EFFORT="medium")
    _, view = await open_settings(slack)

    call = slack.calls_to("views.open")[-1]
    assert call.params["trigger_id"] == "trigger-U0ALICE"
    blocks = blocks_of(view)
    model = blocks["model"]["element"]
    assert [o["value"] for o in model["options"]] == ["gpt-5.5", "gpt-5.5-mini", "gpt-4.1"]
    assert model["initial_option"]["value"] == "gpt-5.5"
    assert blocks["reasoning_effort"]["element"]["initial_option"]["value"] == "medium"
    assert "temperature" not in blocks  # a reasoning model has no temperature
    assert "scope" not in blocks  # the slash command edits the person's defaults


async def test_choosing_another_model_updates_the_fields(slack: FakeSlack, start_bot):
    await start_bot(**MODELS)
    view_id, view = await open_settings(slack)
    values = view_state(view, model="gpt-4.1", custom_instructions="typed, not saved yet")
    await slack.push_envelope("interactive", interaction(
        slack, "block_actions", "U0ALICE",
        view={**view, "id": view_id, "hash": "h1", "state": {"values": values}},
        actions=[{"type": "static_select", "action_id": "model_select", "block_id": "model",
                  "selected_option": {"value": "gpt-4.1"}, "action_ts": "1"}],
    ))
    await slack.wait_for(lambda: slack.calls_to("views.update"))

    update = slack.calls_to("views.update")[0].params
    assert update["view_id"] == view_id and update["hash"] == "h1"
    blocks = blocks_of(update["view"])
    assert blocks["model"]["element"]["initial_option"]["value"] == "gpt-4.1"
    assert "temperature" in blocks and "reasoning_effort" not in blocks
    assert blocks["custom_instructions"]["element"]["initial_value"] == "typed, not saved yet"


async def test_saved_settings_shape_the_next_request_and_survive_a_restart(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(**MODELS)
    view_id, view = await open_settings(slack)
    ack = await submit(slack, view_id, view, reasoning_effort="high", verbosity="low",
                       custom_instructions="Always answer in French.", features=["web_search"])
    assert ack.payload is None  # accepted: no errors

    await slack.wait_for(lambda: slack.calls_to("chat.postMessage"))
    [confirmation] = slack.calls_to("chat.postMessage")
    assert confirmation.params["channel"] == "U0ALICE"
    assert "Reasoning effort: low → high" in confirmation.params["text"]
    assert "Streaming: off" in confirmation.params["text"]

    openai.script(Reply(text="Bonjour, comment puis-je aider ?", chunk_size=4, chunk_delay=0.1))
    ts = await slack.user_says("U0ALICE", "D0ALICE", "bonjour")
    await wait_replies(slack, "D0ALICE", ts)
    request = openai.responses_requests()[-1]
    assert request["model"] == "gpt-5.5"
    assert request["reasoning"] == {"effort": "high"} and request["text"] == {"verbosity": "low"}
    assert "temperature" not in request
    assert {"type": "web_search"} in request["tools"]
    assert "Always answer in French." in request["instructions"]
    # Streaming off: no partial text was ever shown, only the progress line, then the answer.
    updates = [c.params["text"] for c in slack.calls_to("chat.update")]
    assert not any(text.endswith("▍") for text in updates)
    assert any("Searching the web" in text for text in updates)
    assert await app.db.user_settings("U0ALICE") == {
        "reasoning_effort": "high", "verbosity": "low", "custom_instructions": "Always answer in French.",
        "streaming": False, "web_search": True,
    }

    await app.stop()
    await start_bot(**MODELS)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "encore")
    await wait_replies(slack, "D0ALICE", ts)
    assert openai.responses_requests()[-1]["reasoning"] == {"effort": "high"}


async def test_a_non_reasoning_model_gets_temperature(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(**MODELS)
    view_id, view = await open_settings(slack)
    await submit(slack, view_id, view, model="gpt-4.1")
    await slack.wait_for(lambda: slack.calls_to("chat.postMessage"))
    view_id, view = await open_settings(slack)
    assert "temperature" in blocks_of(view)
    await submit(slack, view_id, view, temperature="0.3")
    await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) == 2)

    ts = await slack.user_says("U0ALICE", "D0ALICE", "hi")
    await wait_replies(slack, "D0ALICE", ts)
    request = openai.responses_requests()[-1]
    assert request["model"] == "gpt-4.1" and request["temperature"] == 0.3
    assert "reasoning" not in request


async def test_invalid_values_come_back_inline_and_nothing_is_saved(slack: FakeSlack, start_bot):
    app = await start_bot(**MODELS)
    view_id, view = await open_settings(slack)
    ack = await submit(slack, view_id, view, model="gpt-1-ancient", custom_instructions="x" * 3001)

    assert ack.payload["response_action"] == "errors"
    assert set(ack.payload["errors"]) == {"model", "custom_instructions"}
    assert await app.db.user_settings("U0ALICE") == {}
    assert slack.calls_to("chat.postMessage") == []


async def test_tampered_or_foreign_metadata_is_refused(slack: FakeSlack, start_bot):
    app = await start_bot(**MODELS)
    view_id, view = await open_settings(slack)
    body, _, mac = view["private_metadata"].rpartition(".")
    tampered = {**view, "private_metadata": f"{body}.{'0' * len(mac)}"}
    ack = await submit(slack, view_id, tampered, reasoning_effort="high")
    assert ack.payload["response_action"] == "errors"

    # Bob submitting a window opened for Alice, and a window opened two days ago.
    ack = await submit(slack, view_id, view, user="U0BOB", reasoning_effort="high")
    assert ack.payload["response_action"] == "errors"
    old = ModalContext(user_id="U0ALICE", issued_at=time.time() - 2 * 86400)
    stale = {**view, "private_metadata": sign_context(old, signing_key(slack.bot_token))}
    ack = await submit(slack, view_id, stale, reasoning_effort="high")
    assert ack.payload["response_action"] == "errors"
    assert await app.db.user_settings("U0ALICE") == {}
    assert await app.db.user_settings("U0BOB") == {}


async def test_thread_settings_beat_personal_defaults_only_in_their_thread(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(**MODELS)
    view_id, view = await open_settings(slack)
    await submit(slack, view_id, view, model="gpt-5.5-mini")
    root = await slack.user_says("U0ALICE", "D0ALICE", "first thread")
    await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()

    before = len(slack.calls_to("views.open"))
    await slack.push_envelope("interactive", interaction(
        slack, "message_action", "U0ALICE", callback_id="thread_settings",
        channel={"id": "D0ALICE"}, message={"type": "message", "ts": root, "user": "U0ALICE"},
        message_ts=root, response_url="http://x",
    ))
    await slack.wait_for(lambda: len(slack.calls_to("views.open")) > before)
    view = slack.calls_to("views.open")[-1].params["view"]
    view_id = next(i for i, v in slack.views.items() if v["private_metadata"] == view["private_metadata"])
    blocks = blocks_of(view)
    assert blocks["scope"]["element"]["initial_option"]["value"] == "thread"
    # The thread for everyone in it: what everyone gets here, not Alice's own defaults.
    assert blocks["model"]["element"]["initial_option"]["value"] == "gpt-5.5"
    await submit(slack, view_id, view, model="gpt-4.1")
    await slack.wait_for(lambda: [m for m in slack.bot_messages("D0ALICE", root) if m["text"].startswith(":gear:")])
    [line] = [m["text"] for m in slack.bot_messages("D0ALICE", root) if m["text"].startswith(":gear:")]
    assert line == ":gear: <@U0ALICE> changed this thread's settings for everyone: Model: gpt-5.5 → gpt-4.1"

    await slack.user_says("U0ALICE", "D0ALICE", "in the thread", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=3)  # answer, the settings line, answer
    assert openai.responses_requests()[-1]["model"] == "gpt-4.1"
    other = await slack.user_says("U0ALICE", "D0ALICE", "elsewhere")
    await wait_replies(slack, "D0ALICE", other)
    assert openai.responses_requests()[-1]["model"] == "gpt-5.5-mini"


async def test_expired_trigger_gets_an_ephemeral_hint(slack: FakeSlack, start_bot):
    await start_bot(**MODELS)
    slack.fail("views.open", error="expired_trigger_id")
    await slack.push_envelope("slash_commands", {
        "command": "/ai-settings", "text": "", "user_id": "U0ALICE", "channel_id": "C0GENERAL",
        "team_id": slack.team_id, "trigger_id": "late", "response_url": "http://x",
    })
    await slack.wait_for(lambda: slack.ephemerals)
    assert slack.ephemerals[0]["user"] == "U0ALICE"
    assert "try again with /ai-settings" in slack.ephemerals[0]["text"]


async def test_welcome_comes_once_after_the_first_answer(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    app = await start_bot()
    first = await slack.user_says("U0ALICE", "D0ALICE", "hello")
    await wait_replies(slack, "D0ALICE", first)
    await app.processor.wait_idle()
    second = await slack.user_says("U0ALICE", "D0ALICE", "hello again")
    await wait_replies(slack, "D0ALICE", second)
    await app.processor.wait_idle()

    [welcome] = welcomes(slack, "D0ALICE")
    assert welcome["thread_ts"] == first
    assert welcome["blocks"][1]["elements"][0]["action_id"] == "open_settings"
    assert len(openai.responses_requests()) == 2  # nobody waited on the welcome

    await slack.push_envelope("interactive", interaction(
        slack, "block_actions", "U0ALICE", channel={"id": "D0ALICE"},
        actions=[{"type": "button", "action_id": "open_settings", "block_id": "b", "action_ts": "1"}],
    ))
    await slack.wait_for(lambda: slack.calls_to("views.open"))


async def test_admins_change_everyones_defaults_and_others_cannot(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(**MODELS, ADMIN_USER_IDS="U0ALICE")
    view_id, view = await open_settings(slack)
    choices = blocks_of(view)["scope"]["element"]["options"]
    assert [c["value"] for c in choices] == ["user", "workspace"]

    ack = await submit(slack, view_id, view, scope="workspace", model="gpt-5.5-mini")
    assert ack.payload is None
    await slack.wait_for(lambda: slack.calls_to("chat.postMessage"))
    assert "Saved for everyone's defaults" in slack.calls_to("chat.postMessage")[-1].params["text"]
    assert await app.db.workspace_settings() == {"model": "gpt-5.5-mini"}

    ts = await slack.user_says("U0BOB", "D0BOB", "which model?")
    await wait_replies(slack, "D0BOB", ts)
    assert openai.responses_requests()[-1]["model"] == "gpt-5.5-mini"  # Bob never chose one

    # Bob is no admin: no choice offered, and a forged one is refused.
    bob_view_id, bob_view = await open_settings(slack, user="U0BOB")
    assert "scope" not in blocks_of(bob_view)
    forged = {**bob_view, "blocks": view["blocks"]}
    refused = await submit(slack, bob_view_id, forged, user="U0BOB", scope="workspace", model="gpt-4.1")
    assert refused.payload["response_action"] == "errors" and "scope" in refused.payload["errors"]
    assert await app.db.workspace_settings() == {"model": "gpt-5.5-mini"}


async def test_without_available_models_the_window_offers_the_servers_chat_models(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_MODEL="gpt-5.5")
    await slack.wait_for(lambda: len(app.models.available()) > 1, message="the model list was not asked for")
    _, view = await open_settings(slack)
    model = blocks_of(view)["model"]["element"]
    # The fake lists gpt-5.5, gpt-5.5-mini, gpt-image-2 and test-model: the picture model is not for chat.
    assert [o["value"] for o in model["options"]] == ["gpt-5.5", "gpt-5.5-mini", "test-model"]
    assert any(r.path == "/v1/models" and r.headers["Authorization"] == "Bearer sk-test" for r in openai.requests)


async def test_when_the_server_cannot_list_models_the_default_is_offered_and_choices_stay(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    openai.models_status = 500
    app = await start_bot(OPENAI_MODEL="gpt-5.5", OPENAI_MAX_RETRIES="0")
    await app.db.save_user_settings("U0ALICE", {"model": "gpt-5.5-mini"})  # chosen while the list was known
    await openai.wait_for(lambda: any(r.path == "/v1/models" for r in openai.requests))  # refused or not yet: alike
    _, view = await open_settings(slack)
    model = blocks_of(view)["model"]["element"]
    assert [o["value"] for o in model["options"]] == ["gpt-5.5-mini", "gpt-5.5"]  # the choice, then the default
    assert model["initial_option"]["value"] == "gpt-5.5-mini"

    ts = await slack.user_says("U0ALICE", "D0ALICE", "hello")
    await wait_replies(slack, "D0ALICE", ts)
    assert openai.responses_requests()[-1]["model"] == "gpt-5.5-mini"  # not dropped for an unknown list
