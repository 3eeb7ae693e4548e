"""Shared files → text for the model, and a plain reason for every file that can't be read."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from base_client import (
    Attachment,
    BaseClient,
    Message,
    ReplyStream,
)
from database import StoredImage
from document_handler import UNSUPPORTED_REASON, DocumentError, DocumentParser, kind_of
from message_processor.handlers.code_files import DataFile
from message_processor.handlers.vision import VisionMixin
from message_processor.handlers.voice import VoiceMixin, is_audio
from observability import Stats
from tools.code_interpreter import is_data_file

if TYPE_CHECKING:
    from config import Config

log = logging.getLogger(__name__)


def document_block(name: str, text: str, pages: int | None) -> str:
    """How a document sits in the person's turn (and in the stored thread, for follow-ups)."""
    size = f" ({pages} pages)" if pages else ""
    return f"=== DOCUMENT: {name}{size} ===\n{text}\n=== END OF DOCUMENT: {name} ==="


def page_images(name: str, encoded: Sequence[tuple[str, str]]) -> list[StoredImage]:
    """A scanned PDF's page images from the worker's base64 (megabytes: run it in a thread)."""
    return [
        StoredImage(f"{name} page image {n}", mimetype, base64.b64decode(data))
        for n, (mimetype, data) in enumerate(encoded, start=1)
    ]


def skipped_files_notice(limit: int, names: Sequence[str]) -> str:
    """Files past the per-message limit, named (the same notice path as every unread file)."""
    return f"⚠️ I read at most {limit} files per message, so I skipped: {', '.join(names)}."


@dataclass
class Attachments:
    """What a message's files gave: document blocks for the model's text, images, the data
    files as they came (for the code interpreter), one notice per file that could not be read."""

    blocks: list[str] = field(default_factory=list)
    images: list[StoredImage] = field(default_factory=list)
    data_files: list[DataFile] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


class DocumentsMixin(VisionMixin, VoiceMixin):
    config: Config
    client: BaseClient
    documents: DocumentParser
    stats: Stats

    async def read_attachments(self, message: Message, reply: ReplyStream) -> Attachments:
        """The message's files, read. At most `MAX_FILES_PER_MESSAGE` files are downloaded;
        images are shrunk to the request's byte budget before they are stored or sent."""
        read = Attachments()
        images: list[StoredImage] = []
        limit = int(self.config.max_file_mb * 1024 * 1024)
        most = self.config.max_files_per_message
        attachments, skipped = message.attachments[:most], message.attachments[most:]
        if skipped:
            log.info("%s: %d files over the limit of %d skipped", message.conversation_key, len(skipped), most)
        for attachment in attachments:
            try:
                if attachment.mimetype.startswith("image/"):
                    images.append(await self.read_image(attachment, limit, reply))
                elif is_audio(attachment):  # transcribed: its block is the person's words
                    read.blocks.append(await self.listen(message, attachment, reply))
                else:
                    block, pages = await self._read(attachment, limit, reply, read.data_files)
                    read.blocks.append(block)
                    images.extend(pages)
            except DocumentError as exc:
                log.info("%s: %s not read: %s", message.conversation_key, attachment.name, exc.reason)
                verb = "listen to" if is_audio(attachment) else "read"
                read.notices.append(f"⚠️ I couldn't {verb} {attachment.name}: {exc.reason}.")
        if skipped:
            read.notices.append(skipped_files_notice(most, [a.name for a in skipped]))
        linked, refused = await self.read_image_urls(message.text, reply)
        read.images, left_out = await self.fit_images(images + linked)
        read.notices += refused + left_out
        return read

    async def _read(
        self, attachment: Attachment, limit: int, reply: ReplyStream, data_files: list[DataFile]
    ) -> tuple[str, list[StoredImage]]:
        """The document's text block, and the page images of a scanned PDF; a data file's
        bytes also go to `data_files`, for the code interpreter."""
        kind = kind_of(attachment.name, attachment.mimetype)
        if kind is None:
            self.stats.document_parse("other", "unsupported")
            raise DocumentError(UNSUPPORTED_REASON)
        data = await self.download(attachment, limit, reply, f"Reading {attachment.name}…")
        if is_data_file(attachment.name):
            data_files.append(DataFile(attachment.name, attachment.mimetype or "application/octet-stream", data))
        try:
            extracted = await self.documents.parse(attachment.name, attachment.mimetype, data)
        except DocumentError:
            self.stats.document_parse(kind, "unreadable")
            raise
        self.stats.document_parse(kind, "ok")
        pages: list[StoredImage] = []
        if extracted.images:  # megabytes of base64: decoded off the loop
            pages = await asyncio.to_thread(page_images, attachment.name, extracted.images)
        return document_block(attachment.name, extracted.text, extracted.pages), pages
