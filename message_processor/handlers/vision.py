"""Images people share: checked to be real images, sent to the model as image inputs."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from base_client import Attachment, BaseClient, ReplyStream
from database import StoredImage
from document_handler import DocumentError
from image_url_handler import (
    MAX_LINKS,
    ImageFetcher,
    ImageUrlError,
    image_urls,
    sniff_image,
)
from message_processor.handlers.downloads import DownloadMixin

if TYPE_CHECKING:
    from config import Config

def image_part(image: StoredImage) -> dict[str, Any]:
    encoded = base64.b64encode(image.data).decode()
    return {"type": "input_image", "image_url": f"data:{image.mimetype};base64,{encoded}"}


class VisionMixin(DownloadMixin):
    config: Config
    client: BaseClient
    image_fetcher: ImageFetcher

    async def read_image_urls(self, text: str, reply: ReplyStream) -> tuple[list[StoredImage], list[str]]:
        """Images behind the image links in a message, and a notice for each one not used."""
        images: list[StoredImage] = []
        notices: list[str] = []
        urls = image_urls(text)
        if len(urls) > MAX_LINKS:
            skipped = ", ".join(urls[MAX_LINKS:])
            notices.append(f"⚠️ I look at {MAX_LINKS} image links per message at most, so I skipped: {skipped}.")
        for url in urls[:MAX_LINKS]:
            await reply.progress("Fetching a linked image…")
            try:
                fetched = await self.image_fetcher.fetch(url)
            except ImageUrlError as exc:
                notices.append(f"⚠️ I couldn't use the image at {url}: {exc.reason}.")
                continue
            images.append(StoredImage(fetched.name, fetched.mimetype, fetched.data))
        return images, notices

    async def read_image(self, attachment: Attachment, limit: int, reply: ReplyStream) -> StoredImage:
        data = await self.download(attachment, limit, reply, f"Looking at {attachment.name}…")
        mimetype = sniff_image(data)
        if mimetype is None:
            raise DocumentError("it is not a PNG, JPEG, GIF or WebP image")
        return StoredImage(attachment.name, mimetype, data)
