"""Images people share: checked to be real images, sent to the model as image inputs."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from base_client import Attachment, BaseClient, DownloadError, FileTooLarge, ReplyStream
from database import StoredImage
from document_handler import DocumentError
from image_url_handler import (
    MAX_LINKS,
    ImageFetcher,
    ImageUrlError,
    image_urls,
    sniff_image,
)

if TYPE_CHECKING:
    from config import Config

def image_part(image: StoredImage) -> dict[str, Any]:
    encoded = base64.b64encode(image.data).decode()
    return {"type": "input_image", "image_url": f"data:{image.mimetype};base64,{encoded}"}


class VisionMixin:
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
