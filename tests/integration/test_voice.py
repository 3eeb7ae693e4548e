"""Voice clips and audio files are transcribed by the provider; the transcript is the person's words,
kept with the thread; every file that can't be heard gets a specific reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from openai_client import ModelError, OpenAIClient
from openai_client.events import ErrorKind
from tests.fakes.openai import FakeOpenAI, spoken_audio
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

CLIP = "audio_message.m4a"


def voice_clip(slack: FakeSlack, words: str, name: str = CLIP, mimetype: str = "audio/mp4") -> dict[str, Any]:
    """A clip recorded in Slack, as its file object comes (subtype slack_audio)."""
    return slack.add_file(name, spoken_audio(words, name.rsplit(".", 1)[-1]), mimetype, subtype="slack_audio")


def parses(app: Any, outcome: str) -> float:
    value = app.processor.stats.registry.get_sample_value(
        "assistant_document_parses_total", {"type": "audio", "outcome": outcome})
    return value or 0


async def usage_rows(app: Any) -> list[tuple[Any, ...]]:
    rows = await app.db.query("SELECT model, kind, input_tokens, output_tokens FROM usage ORDER BY id")
    return [tuple(row) for row in rows]


async def test_a_voice_clip_alone_is_answered_as_its_words_and_kept_for_follow_ups(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    clip = voice_clip(slack, "What is the capital of Portugal?")
    root = await slack.user_says("U0ALICE", "D0ALICE", "", files=[clip])

    [text] = await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()

    block = f"=== VOICE CLIP: {CLIP} (transcript) ===\nWhat is the capital of Portugal?\n=== END OF VOICE CLIP: {CLIP} ==="
    assert text == f"You said: Alice: {block}"  # answered like a typed question
    [sent] = openai.transcription_requests()
    assert sent["model"] == "gpt-4o-mini-transcribe" and sent["response_format"] == "json"
    assert sent["file"] == (CLIP, slack.file_bytes[clip["id"]]) and sent["file_type"] == "audio/mp4"
    [turn] = openai.responses_requests()[0]["input"]
    assert turn["content"] == f"Alice: {block}"
    transcribed = ("gpt-4o-mini-transcribe", "transcription", len(slack.file_bytes[clip["id"]]) // 100 + 1,
                   len("What is the capital of Portugal?") // 4 + 1)
    assert (await usage_rows(app))[0] == transcribed
    assert parses(app, "ok") == 1

    downloads = len(slack.downloads)
    await slack.user_says("U0ALICE", "D0ALICE", "and how many people live there?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    follow_up = openai.responses_requests()[1]["input"]
    assert follow_up[0]["content"] == f"Alice: {block}"  # from the stored thread
    assert follow_up[-1]["content"] == "Alice: and how many people live there?"
    assert len(openai.transcription_requests()) == 1 and len(slack.downloads) == downloads


async def test_an_audio_file_with_a_question_shows_listening_then_answers(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    standup = slack.add_file("standup.mp3", spoken_audio("Dana shipped the export; Lee is on call.", "mp3"),
                             "audio/mpeg")
    openai.transcription_gate = asyncio.Event()
    ts = await slack.user_says("U0ALICE", "D0ALICE", "who is on call?", files=[standup])
    # Held at the transcription: the person sees what the bot is doing.
    await slack.wait_for(lambda: len(openai.transcription_requests()) == 1 and any(
        "Listening to standup.mp3…" in (m.get("text") or "") for m in slack.bot_messages("D0ALICE")), 10)
    assert openai.responses_requests() == []  # the question waits for its transcript
    openai.transcription_gate.set()

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text.startswith("You said: Alice: who is on call?")
    [turn] = openai.responses_requests()[0]["input"]
    assert turn["content"] == (
        "Alice: who is on call?\n\n=== AUDIO: standup.mp3 (transcript) ===\nDana shipped the export; Lee is on call."
        "\n=== END OF AUDIO: standup.mp3 ==="
    )
    [sent] = openai.transcription_requests()
    assert sent["file"] == ("standup.mp3", slack.file_bytes[standup["id"]]) and sent["file_type"] == "audio/mpeg"


async def test_a_clip_without_a_usable_name_is_sent_with_the_extension_of_its_type(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    clip = slack.add_file("Voice note", spoken_audio("remind me at noon", "webm"), "audio/webm", subtype="slack_audio")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "", files=[clip])

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert "=== VOICE CLIP: Voice note (transcript) ===\nremind me at noon" in text
    assert openai.transcription_requests()[0]["file"][0] == "Voice note.webm"


async def test_audio_over_max_audio_mb_is_refused_before_download_whatever_max_file_mb_says(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(MAX_AUDIO_MB="1", MAX_FILE_MB="25")
    long = slack.add_file("meeting.wav", spoken_audio("hours of talk", "wav", padding=1_500_000), "audio/wav")
    short = voice_clip(slack, "and keep it short")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "summarise", files=[long, short])

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text.startswith("You said: Alice: summarise")
    assert "⚠️ I couldn't listen to meeting.wav: it is 1.4 MB, over the 1 MB limit." in text
    assert all(file_id != long["id"] for file_id, _ in slack.downloads)  # refused before downloading
    assert [r["file"][0] for r in openai.transcription_requests()] == [CLIP]
    assert "and keep it short" in openai.responses_requests()[0]["input"][0]["content"]


async def test_audio_may_be_larger_than_max_file_mb(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(MAX_AUDIO_MB="2", MAX_FILE_MB="1")
    talk = slack.add_file("talk.ogg", spoken_audio("a long talk", "ogg", padding=1_500_000), "audio/ogg")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what is it about?", files=[talk])

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert "=== AUDIO: talk.ogg (transcript) ===\na long talk" in text
    assert len(openai.transcription_requests()[0]["file"][1]) > 1_500_000


@pytest.mark.parametrize("style", ["responses", "chat_completions"])
@pytest.mark.parametrize("status", [404, 405])
async def test_a_server_without_transcription_gets_a_clear_reply_and_the_rest_is_answered(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, style: str, status: int
):
    await start_bot(OPENAI_API_STYLE=style)
    openai.transcription_status = status  # the route is not there at all
    files = [voice_clip(slack, "unheard", "audio_message.webm", "audio/webm"),
             slack.add_file("notes.txt", b"the agenda: budget, hiring", "text/plain")]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "here are my notes", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text.startswith("You said: Alice: here are my notes")
    assert ("⚠️ I couldn't listen to audio_message.webm: this model server has no transcription (speech to text); "
            "please type your question instead.") in text
    [request] = openai.chat_requests() if style == "chat_completions" else openai.responses_requests()
    sent = str(request)
    assert "the agenda: budget, hiring" in sent and "unheard" not in sent and "VOICE CLIP" not in sent
    assert len(openai.transcription_requests()) == 1  # asked once, not retried


async def test_a_voice_clip_alone_on_a_server_without_transcription_gets_only_the_reason(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    openai.transcription_status = 404
    ts = await slack.user_says("U0ALICE", "D0ALICE", "", files=[voice_clip(slack, "unheard")])

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert "I couldn't listen to audio_message.m4a: this model server has no transcription" in text
    assert openai.responses_requests() == []  # nothing to answer: no model call
    assert parses(app, "unsupported") == 1


async def test_listening_off_says_so_without_downloading(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot(OPENAI_TRANSCRIBE_MODEL="off")
    ts = await slack.user_says("U0ALICE", "D0ALICE", "", files=[voice_clip(slack, "unheard")])

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert ("I couldn't listen to audio_message.m4a: listening to voice clips and audio files is turned off on this "
            "bot; please type your question instead.") in text
    assert slack.downloads == [] and openai.transcription_requests() == [] and openai.responses_requests() == []


async def test_unusable_audio_gets_specific_replies_while_the_question_is_answered(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    files = [
        slack.add_file("broken.mp3", b"this is not sound at all", "audio/mpeg"),
        slack.add_file("quiet.m4a", spoken_audio(""), "audio/mp4"),
        slack.add_file("voice.aac", b"\xff\xf1 adts frames", "audio/aac"),
        slack.add_file("empty.wav", b"", "audio/wav"),
        slack.add_file("fine.flac", spoken_audio("the one that works", "flac"), "audio/flac"),
    ]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what did I say?", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts)

    assert text.startswith("You said: Alice: what did I say?")
    assert ("I couldn't listen to broken.mp3: the file is damaged or is not audio I can transcribe "
            "(m4a, mp3, wav, webm, ogg and flac files work).") in text
    assert "I couldn't listen to quiet.m4a: I heard no speech in it." in text
    assert "I couldn't listen to voice.aac: it is a kind of audio (audio/aac) I can't transcribe" in text
    assert "I couldn't listen to empty.wav: it is empty." in text
    assert "the one that works" in openai.responses_requests()[0]["input"][0]["content"]
    assert [r["file"][0] for r in openai.transcription_requests()] == ["broken.mp3", "quiet.m4a", "fine.flac"]
    assert (parses(app, "ok"), parses(app, "unreadable"), parses(app, "unsupported")) == (1, 3, 1)


async def test_transcribe_returns_the_words_and_the_reported_tokens(openai: FakeOpenAI):
    client = OpenAIClient(openai.api_key, openai.base_url, timeout=10, max_retries=0)
    clip = spoken_audio("hello there", "m4a")
    try:
        text, usage = await client.transcribe("v.m4a", clip, "audio/mp4", "gpt-4o-transcribe")
        assert text == "hello there" and usage == (len(clip) // 100 + 1, len("hello there") // 4 + 1)
        assert await client.transcribe("v.wav", spoken_audio("hi", "wav"), "audio/wav", "whisper-1") == ("hi", None)
        with pytest.raises(ModelError) as damaged:
            await client.transcribe("v.mp3", b"noise", "audio/mpeg", "whisper-1")
        assert damaged.value.kind is ErrorKind.BAD_REQUEST and damaged.value.status == 400
        openai.transcription_status = 404
        with pytest.raises(ModelError) as missing:
            await client.transcribe("v.m4a", clip, "audio/mp4", "whisper-1")
        assert missing.value.status == 404
        openai.transcription_status = 429
        with pytest.raises(ModelError) as limited:
            await client.transcribe("v.m4a", clip, "audio/mp4", "whisper-1")
        assert limited.value.kind is ErrorKind.RATE_LIMIT
    finally:
        await client.close()
