"""Images people share: checked to be real images, sent to the model as image inputs."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from base_client import Attachment, BaseClient, DownloadError, FileTooLarge, ReplyStream
from database import StoredImage
from document_handler import DocumentError

if TYPE_CHECKING:
    from config import Config

# What the model accepts, recognised by content (a file's name or declared type can lie).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The image type of `data` by its first bytes, or None if it is not one we can send."""
    for signature, mimetype in _SIGNATURES:
        if data.startswith(signature):
            return mimetype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_part(image: StoredImage) -> dict[str, Any]:
    encoded = base64.b64encode(image.data).decode()
    return {"type": "input_image", "image_url": f"data:{image.mimetype};base64,{encoded}"}


class VisionMixin:
    config: Config
    client: BaseClient

    async def read_image(self, attachment: Attachment, limit: int, reply: ReplyStream) -> StoredImage:
        if attachment.size > limit:
            raise DocumentError(
                f"it is {attachment.size / 1048576:.1f} MB, over the {self.config.max_file_mb:g} MB limit"
            )
        await reply.progress(f"Looking at {attachment.name}…")
        try:
            data = await self.client.download_file(attachment, limit)
        except FileTooLarge as exc:
            raise DocumentError(f"it is over the {self.config.max_file_mb:g} MB limit") from exc
        except DownloadError as exc:
            raise DocumentError("I couldn't download it from Slack; please share it again") from exc
        mimetype = sniff_image(data)
        if mimetype is None:
            raise DocumentError("it is not a PNG, JPEG, GIF or WebP image")
        return StoredImage(attachment.name, mimetype, data)
