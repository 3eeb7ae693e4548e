"""Allow-lists turn people and channels away politely, once, without calling the model."""

from __future__ import annotations

from access import CHANNEL_REFUSED, PERSON_REFUSED
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import bot_replies, wait_handled, wait_replies


def notices(slack: FakeSlack, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in bot_replies(slack, channel, ts)]


async def test_only_listed_people_are_answered_and_others_told_once(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(ALLOWED_USER_IDS="U0ALICE")
    refused = await slack.user_says("U0BOB", "D0BOB", "hello?")
    admitted = await slack.user_says("U0ALICE", "D0ALICE", "hello!")

    assert await wait_replies(slack, "D0ALICE", admitted) == ["You said: Alice: hello!"]
    await slack.wait_for(lambda: notices(slack, "D0BOB", refused) == [PERSON_REFUSED])
    [envelope] = [e for e, env in slack.envelopes.items() if env["payload"]["event"].get("ts") == refused]
    await slack.redeliver(envelope)
    await wait_handled(slack, app, 3)  # both messages and the redelivery

    assert notices(slack, "D0BOB", refused) == [PERSON_REFUSED]  # not twice
    assert len(openai.responses_requests()) == 1  # only Alice's


async def test_channel_list_admits_dms_and_listed_channels_only(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    slack.add_channel("C0TEAM", "team")
    await start_bot(ALLOWED_CHANNEL_IDS="C0TEAM")
    mention = f"<@{slack.bot_user_id}> hi"
    elsewhere = await slack.user_says("U0ALICE", "C0GENERAL", mention)
    listed = await slack.user_says("U0ALICE", "C0TEAM", mention)
    direct = await slack.user_says("U0ALICE", "D0ALICE", "hi")

    assert await wait_replies(slack, "C0TEAM", listed) == ["You said: Alice: hi"]
    assert await wait_replies(slack, "D0ALICE", direct) == ["You said: Alice: hi"]
    await slack.wait_for(lambda: notices(slack, "C0GENERAL", elsewhere) == [CHANNEL_REFUSED])
    assert len(openai.responses_requests()) == 2


async def test_admins_are_admitted_and_refused_people_cannot_open_settings(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(ALLOWED_USER_IDS="U0ALICE", ADMIN_USER_IDS="U0ALICE,U0ADMIN")
    slack.add_user("U0ADMIN", "admin", display_name="Ada")
    slack.add_channel("D0ADMIN", "admin", is_im=True, user="U0ADMIN")
    ts = await slack.user_says("U0ADMIN", "D0ADMIN", "status?")
    assert await wait_replies(slack, "D0ADMIN", ts) == ["You said: Ada: status?"]

    envelope = await slack.push_envelope("slash_commands", {
        "command": "/ai-settings", "text": "", "user_id": "U0BOB", "channel_id": "D0BOB",
        "team_id": slack.team_id, "trigger_id": "trigger-bob", "response_url": "http://x",
    }, accepts_response_payload=True)
    await slack.wait_for_ack(envelope)
    await slack.wait_for(lambda: bool(slack.ephemerals))

    assert slack.ephemerals[-1]["user"] == "U0BOB" and slack.ephemerals[-1]["text"] == PERSON_REFUSED
    assert slack.calls_to("views.open") == []
