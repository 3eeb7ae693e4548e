"""Voice clips and audio files: which files are heard, the name the server is sent, the transcript
block, and the reason a failed transcription gives."""

from __future__ import annotations

import pytest

from base_client import Attachment
from message_processor.handlers.voice import (
    LISTENING_OFF_REASON,
    NO_TRANSCRIPTION_REASON,
    is_audio,
    transcript_block,
    transcription_failure,
    unsupported_audio_reason,
    upload_name,
)
from openai_client import ModelError
from openai_client.events import ErrorKind
from slack_client.event_handlers.message_events import to_message


def file(name: str, mimetype: str = "", subtype: str = "") -> Attachment:
    return Attachment("F1", name, mimetype, 10, "https://files.slack.com/f", subtype)


@pytest.mark.parametrize(
    ("name", "mimetype", "subtype"),
    [
        ("audio_message.m4a", "audio/mp4", "slack_audio"),
        ("audio_message.webm", "audio/webm", "slack_audio"),
        ("audio_message.mp4", "video/mp4", "slack_audio"),  # a clip Slack labelled as video
        ("Voice note", "", "slack_audio"),
        ("song.mp3", "", ""),
        ("memo.wav", "audio/x-wav", ""),
        ("memo.ogg", "application/ogg", ""),
        ("memo.oga", "", ""),
        ("memo.opus", "", ""),
        ("take.flac", "", ""),
        ("old.mpga", "", ""),
        ("call.mp4", "audio/mp4", ""),
        ("call.webm", "audio/webm; codecs=opus", ""),
        ("sound.bin", "audio/mpeg", ""),
        ("voice.aac", "audio/aac", ""),  # audio, though not a format the server takes
    ],
)
def test_what_is_heard(name: str, mimetype: str, subtype: str) -> None:
    assert is_audio(file(name, mimetype, subtype))


@pytest.mark.parametrize(
    ("name", "mimetype", "subtype"),
    [
        ("holiday.mp4", "video/mp4", ""),
        ("screen.webm", "video/webm", ""),
        ("screen_recording.mp4", "video/mp4", "slack_video"),
        ("film.mpeg", "video/mpeg", ""),
        ("report.pdf", "application/pdf", ""),
        ("notes.txt", "text/plain", ""),
        ("photo.png", "image/png", ""),
    ],
)
def test_what_is_not(name: str, mimetype: str, subtype: str) -> None:
    assert not is_audio(file(name, mimetype, subtype))


@pytest.mark.parametrize(
    ("name", "mimetype", "sent"),
    [
        ("voice.m4a", "audio/mp4", "voice.m4a"),
        ("audio_message.mp4", "video/mp4", "audio_message.mp4"),
        ("Voice note", "audio/webm", "Voice note.webm"),
        ("Voice note", "audio/mp4", "Voice note.m4a"),
        ("memo.oga", "audio/ogg", "memo.ogg"),
        ("memo.opus", "", "memo.ogg"),
        ("sound.bin", "audio/mpeg", "sound.mp3"),
        ("clip.WAV", "", "clip.WAV"),
        (".m4a", "", ".m4a"),
        ("voice.aac", "audio/aac", None),
        ("voice.amr", "audio/amr", None),
    ],
)
def test_the_name_the_server_is_sent_tells_the_format(name: str, mimetype: str, sent: str | None) -> None:
    assert upload_name(name, mimetype) == sent


def test_an_unknown_audio_format_is_named() -> None:
    assert unsupported_audio_reason("audio/aac; rate=44100") == (
        "it is a kind of audio (audio/aac) I can't transcribe; m4a, mp3, wav, webm, ogg and flac files work"
    )


def test_the_block_marks_a_voice_clip_and_an_audio_file() -> None:
    assert transcript_block("audio_message.m4a", "what is due today?", True, 1000) == (
        "=== VOICE CLIP: audio_message.m4a (transcript) ===\nwhat is due today?\n"
        "=== END OF VOICE CLIP: audio_message.m4a ==="
    )
    assert transcript_block("standup.mp3", "Dana: shipped", False, 1000).startswith(
        "=== AUDIO: standup.mp3 (transcript) ===\nDana: shipped\n=== END OF AUDIO"
    )


def test_a_long_transcript_is_cut_with_a_note() -> None:
    block = transcript_block("talk.mp3", "word " * 1000, False, 1200)
    body = block.split("\n", 1)[1]
    assert body.startswith("word " * 240) and "word " * 241 not in body
    assert "[… the rest is cut: the transcript is longer than 1,200 characters …]" in block
    assert block.endswith("=== END OF AUDIO: talk.mp3 ===")


def failure(kind: ErrorKind, status: int | None, detail: str = "x") -> tuple[str, str]:
    return transcription_failure(ModelError(kind, detail, status), "gpt-4o-mini-transcribe")


@pytest.mark.parametrize(
    ("kind", "status", "detail"),
    [
        (ErrorKind.BAD_REQUEST, 404, "404: Not Found"),
        (ErrorKind.FAILED, 405, "Method Not Allowed"),
        (ErrorKind.SERVER, 501, "Not Implemented"),
        (ErrorKind.BAD_REQUEST, 400, "Transcription is not supported by this server"),
    ],
)
def test_a_server_without_transcription_says_so(kind: ErrorKind, status: int, detail: str) -> None:
    assert failure(kind, status, detail) == ("unsupported", NO_TRANSCRIPTION_REASON)
    assert "type your question instead" in NO_TRANSCRIPTION_REASON and "type your question" in LISTENING_OFF_REASON


def test_a_missing_model_is_named() -> None:
    outcome, reason = failure(ErrorKind.BAD_REQUEST, 404, "The model `gpt-4o-mini-transcribe` does not exist.")
    assert outcome == "unsupported" and "no transcription model gpt-4o-mini-transcribe" in reason


def test_a_damaged_or_long_file_gets_its_own_reason() -> None:
    outcome, reason = failure(ErrorKind.BAD_REQUEST, 400, "Audio file might be corrupted or unsupported")
    assert outcome == "unreadable" and reason.startswith("the file is damaged or is not audio I can transcribe")
    assert "too long" in failure(ErrorKind.BAD_REQUEST, 400, "audio duration 1800 seconds is longer than 1500")[1]
    assert "too large" in failure(ErrorKind.FAILED, 413, "Maximum content size limit exceeded")[1]
    assert failure(ErrorKind.BAD_REQUEST, 400, "something else")[0] == "unreadable"


@pytest.mark.parametrize(
    ("kind", "words"),
    [(ErrorKind.RATE_LIMIT, "rate-limiting"), (ErrorKind.AUTH, "credentials"), (ErrorKind.TIMEOUT, "too long"),
     (ErrorKind.CONNECTION, "couldn't reach"), (ErrorKind.SERVER, "internal error"), (ErrorKind.FAILED, "failed")],
)
def test_passing_trouble_is_named_and_counted_as_failed(kind: ErrorKind, words: str) -> None:
    outcome, reason = failure(kind, 500 if kind is ErrorKind.SERVER else None)
    assert outcome == "failed" and words in reason


def test_slack_marks_a_voice_clip_by_its_subtype() -> None:
    event = {"user": "U1", "text": "", "ts": "2.0", "channel": "D1", "subtype": "file_share",
             "files": [{"id": "F1", "name": "audio_message.m4a", "mimetype": "audio/mp4", "size": 9,
                        "subtype": "slack_audio", "url_private_download": "https://files.slack.com/a.m4a"},
                       {"id": "F2", "name": "a.pdf", "mimetype": "application/pdf", "size": 9,
                        "url_private": "https://files.slack.com/a.pdf"}]}
    clip, pdf = to_message(event, None, "U0BOT").attachments
    assert clip.subtype == "slack_audio" and is_audio(clip)
    assert pdf.subtype == "" and not is_audio(pdf)
