"""Voice clips and audio files: told apart from documents, transcribed by the provider, and put
into the person's turn as a transcript block (stored with the thread, so follow-ups read it
without transcribing again)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from base_client import Attachment, Message, ReplyStream
from document_handler import DocumentError
from message_processor.handlers.downloads import DownloadMixin
from message_processor.usage import UsageMixin
from openai_client import ModelError
from openai_client.events import ErrorKind
from observability import Stats

if TYPE_CHECKING:
    from config import Config
    from openai_client import OpenAIClient

log = logging.getLogger(__name__)

# How Slack marks a clip recorded in Slack (its mimetype may say audio/mp4, audio/webm, even
# video/mp4, or nothing).
SLACK_VOICE_CLIP = "slack_audio"
# The formats the transcription endpoint takes; it tells them by the file name's extension.
SERVER_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "ogg", "wav", "webm")
# Audio extensions the endpoint takes under another name (Ogg audio: .oga, Opus in Ogg: .opus).
RENAMED_FORMATS = {"oga": "ogg", "opus": "ogg"}
# These are video containers too: audio only when the mimetype (or Slack) says so.
VIDEO_TOO = ("mp4", "webm", "mpeg")
FORMAT_BY_MIMETYPE = {
    "audio/mp4": "m4a", "audio/m4a": "m4a", "audio/x-m4a": "m4a", "audio/aac-mp4": "m4a",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpga": "mp3",
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/webm": "webm", "audio/ogg": "ogg", "audio/opus": "ogg", "audio/flac": "flac", "audio/x-flac": "flac",
    "video/mp4": "mp4", "video/webm": "webm",  # a voice clip Slack labelled as video
}
WORKING_FORMATS = "m4a, mp3, wav, webm, ogg and flac"
LISTENING_OFF_REASON = (
    "listening to voice clips and audio files is turned off on this bot; please type your question instead"
)
NO_TRANSCRIPTION_REASON = "this model server has no transcription (speech to text); please type your question instead"


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _base(mimetype: str) -> str:
    return mimetype.lower().split(";", 1)[0].strip()


def is_audio(attachment: Attachment) -> bool:
    """Whether a shared file takes the listening path: a Slack voice clip, an `audio/*` file, or
    an audio extension (.mp4, .webm and .mpeg only with an audio mimetype: they are videos too)."""
    mimetype, extension = _base(attachment.mimetype), _extension(attachment.name)
    if attachment.subtype == SLACK_VOICE_CLIP or mimetype.startswith("audio/"):
        return True
    if extension in VIDEO_TOO:
        return False
    return extension in SERVER_FORMATS or extension in RENAMED_FORMATS


def upload_name(name: str, mimetype: str) -> str | None:
    """The name the transcription server is sent: its extension tells the format, so a clip named
    without one (or .oga, .opus) gets the one its mimetype says. None: a format it does not take."""
    extension = _extension(name)
    if extension in SERVER_FORMATS:
        return name
    found = RENAMED_FORMATS.get(extension) or FORMAT_BY_MIMETYPE.get(_base(mimetype))
    if found is None:
        return None
    stem = name[: -len(extension) - 1] if extension else name
    return f"{stem or 'audio'}.{found}"


def unsupported_audio_reason(mimetype: str) -> str:
    """Why an audio file of a format the endpoint does not take (AAC, AIFF, AMR, …) is not heard."""
    shown = f" ({_base(mimetype)})" if _base(mimetype) else ""
    return f"it is a kind of audio{shown} I can't transcribe; {WORKING_FORMATS} files work"


def transcript_block(name: str, text: str, voice_clip: bool, max_chars: int) -> str:
    """How a transcript sits in the person's turn (and the stored thread), like a document's
    block; over `max_chars` it is cut with a note the model sees."""
    label = "VOICE CLIP" if voice_clip else "AUDIO"
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n[… the rest is cut: the transcript is longer than {max_chars:,} characters …]"
    return f"=== {label}: {name} (transcript) ===\n{text}\n=== END OF {label}: {name} ==="


def transcription_failure(error: ModelError, model: str) -> tuple[str, str]:
    """(the metrics outcome, the reason the person reads) for a failed transcription.

    A server without the endpoint answers 404 or 405 (501 where it is known but not built in),
    or a 400 saying it is not supported: that is said plainly, with what to do instead."""
    detail = error.detail.lower()
    if error.status in (404, 405, 501):
        if error.status == 404 and "model" in detail:  # the route is there, the model is not
            return "unsupported", (
                f"this model server has no transcription model {model}; please type your question instead"
            )
        return "unsupported", NO_TRANSCRIPTION_REASON
    if error.status == 413:
        return "unreadable", "it is too large for the transcription server; please share a shorter clip"
    if error.kind is ErrorKind.BAD_REQUEST or error.status == 400:
        if any(word in detail for word in ("duration", "too long", "longer than")):
            return "unreadable", "it is too long for the transcription model; please share a shorter clip"
        if any(word in detail for word in ("corrupt", "format", "decode", "invalid file", "audio file")):
            return "unreadable", f"the file is damaged or is not audio I can transcribe ({WORKING_FORMATS} files work)"
        if any(words in detail for words in ("not supported", "does not support", "not implemented")):
            return "unsupported", NO_TRANSCRIPTION_REASON
        return "unreadable", "the transcription server refused it (it may be damaged, or a format it does not take)"
    reasons = {
        ErrorKind.RATE_LIMIT: "the transcription service is rate-limiting requests; please share it again in a minute",
        ErrorKind.AUTH: (
            "the transcription service refused my credentials or quota; please tell the person who runs this bot"
        ),
        ErrorKind.TIMEOUT: "the transcription took too long; please try again",
        ErrorKind.CONNECTION: "I couldn't reach the transcription service; please try again in a moment",
        ErrorKind.SERVER: "the transcription service had an internal error; please try again in a moment",
    }
    return "failed", reasons.get(error.kind, "the transcription failed; please try again")


class VoiceMixin(DownloadMixin, UsageMixin):
    config: Config
    ai: OpenAIClient
    stats: Stats

    async def listen(self, message: Message, attachment: Attachment, reply: ReplyStream) -> str:
        """The transcript block of a voice clip or audio file, its tokens recorded; a
        `DocumentError` whose reason completes "I couldn't listen to <name>: …"."""
        model = self.config.openai_transcribe_model
        if not self.config.listening_enabled:
            self.stats.document_parse("audio", "unsupported")
            raise DocumentError(LISTENING_OFF_REASON)
        name = upload_name(attachment.name, attachment.mimetype)
        if name is None:
            self.stats.document_parse("audio", "unsupported")
            raise DocumentError(unsupported_audio_reason(attachment.mimetype))
        limit = int(self.config.max_audio_mb * 1024 * 1024)
        data = await self.download(
            attachment, limit, reply, f"Listening to {attachment.name}…", limit_mb=self.config.max_audio_mb
        )
        if not data:
            self.stats.document_parse("audio", "unreadable")
            raise DocumentError("it is empty")
        mimetype = attachment.mimetype or f"audio/{_extension(name)}"
        try:
            text, usage = await self.ai.transcribe(name, data, mimetype, model)
        except ModelError as exc:
            outcome, reason = transcription_failure(exc, model)
            self.stats.document_parse("audio", outcome)
            log.warning("%s: transcribing %s (%d bytes, %s) failed: %s",
                        message.conversation_key, attachment.name, len(data), model, exc)
            raise DocumentError(reason) from exc
        if usage is not None:
            await self.record_usage(message, model, "transcription", *usage)
        text = text.strip()
        if not text:
            self.stats.document_parse("audio", "unreadable")
            raise DocumentError("I heard no speech in it")
        self.stats.document_parse("audio", "ok")
        log.info("%s: transcribed %s: %d bytes to %d characters",
                 message.conversation_key, attachment.name, len(data), len(text))
        voice_clip = attachment.subtype == SLACK_VOICE_CLIP
        return transcript_block(attachment.name, text, voice_clip, self.config.max_document_chars)
