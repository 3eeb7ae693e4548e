"""Shared files → text for the model, and a plain reason for every file that can't be read."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from base_client import (
    Attachment,
    BaseClient,
    Message,
    ReplyStream,
)
from database import StoredImage
from document_handler import DocumentError, DocumentParser, kind_of
from message_processor.handlers.vision import VisionMixin

if TYPE_CHECKING:
    from config import Config

log = logging.getLogger(__name__)


def document_block(name: str, text: str, pages: int | None) -> str:
    """How a document sits in the person's turn (and in the stored thread, for follow-ups)."""
    size = f" ({pages} pages)" if pages else ""
    return f"=== DOCUMENT: {name}{size} ===\n{text}\n=== END OF DOCUMENT: {name} ==="


class DocumentsMixin(VisionMixin):
    config: Config
    client: BaseClient
    documents: DocumentParser

    async def read_attachments(
        self, message: Message, reply: ReplyStream
    ) -> tuple[list[str], list[StoredImage], list[str]]:
        """(document blocks, images, one notice per file that could not be read)."""
        blocks: list[str] = []
        images: list[StoredImage] = []
        notices: list[str] = []
        limit = int(self.config.max_file_mb * 1024 * 1024)
        for attachment in message.attachments:
            try:
                if attachment.mimetype.startswith("image/"):
                    images.append(await self.read_image(attachment, limit, reply))
                else:
                    block, pages = await self._read(attachment, limit, reply)
                    blocks.append(block)
                    images.extend(pages)
            except DocumentError as exc:
                log.info("%s: %s not read: %s", message.conversation_key, attachment.name, exc.reason)
                notices.append(f"⚠️ I couldn't read {attachment.name}: {exc.reason}.")
        linked, refused = await self.read_image_urls(message.text, reply)
        return blocks, images + linked, notices + refused

    async def _read(
        self, attachment: Attachment, limit: int, reply: ReplyStream
    ) -> tuple[str, list[StoredImage]]:
        """The document's text block, and the page images of a scanned PDF."""
        if kind_of(attachment.name, attachment.mimetype) is None:
            raise DocumentError("I can't read this kind of file yet (PDF, Word and text files work)")
        data = await self.download(attachment, limit, reply, f"Reading {attachment.name}…")
        extracted = await self.documents.parse(attachment.name, attachment.mimetype, data)
        pages = [
            StoredImage(f"{attachment.name} page image {n}", mimetype, base64.b64decode(encoded))
            for n, (mimetype, encoded) in enumerate(extracted.images, start=1)
        ]
        return document_block(attachment.name, extracted.text, extracted.pages), pages
