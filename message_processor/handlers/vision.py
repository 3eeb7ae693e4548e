"""Images people share: checked to be real images, shrunk to fit, sent to the model as inputs."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from base_client import Attachment, BaseClient, ReplyStream
from database import StoredImage
from document_handler import DocumentError
from image_fit import MAX_IMAGE_BYTES, ImageFitter, ImageUnusable
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

log = logging.getLogger(__name__)

# Above this many bytes an image is base64-encoded in a thread: a few MB take milliseconds of
# CPU, which the loop owes to every other conversation; below it the hand-off costs more.
ENCODE_OFF_LOOP_BYTES = 256 * 1024


def image_part(image: StoredImage) -> dict[str, Any]:
    encoded = base64.b64encode(image.data).decode()
    return {"type": "input_image", "image_url": f"data:{image.mimetype};base64,{encoded}"}


async def image_parts(images: Sequence[StoredImage]) -> list[dict[str, Any]]:
    """The model's input parts for `images`; big ones are encoded off the event loop."""
    parts = []
    for image in images:
        if len(image.data) > ENCODE_OFF_LOOP_BYTES:
            parts.append(await asyncio.to_thread(image_part, image))
        else:
            parts.append(image_part(image))
    return parts


def image_budget(config: Config) -> tuple[int, int]:
    """(bytes of images one request may carry, bytes one image may take)."""
    total = int(config.max_image_context_mb * 1024 * 1024)
    return total, min(MAX_IMAGE_BYTES, total)


def newest_within(
    images: Sequence[tuple[str, StoredImage]], budget: int
) -> tuple[list[tuple[str, StoredImage]], list[StoredImage]]:
    """(the images that fit `budget` bytes, newest first, back in their order; those left out).

    `images` are (message ts, image), oldest first, as the thread holds them.
    """
    kept: list[tuple[str, StoredImage]] = []
    left_out: list[StoredImage] = []
    used = 0
    for ts, image in reversed(images):
        if used + len(image.data) > budget:
            left_out.append(image)
            continue
        used += len(image.data)
        kept.append((ts, image))
    kept.reverse()
    return kept, left_out


class VisionMixin(DownloadMixin):
    config: Config
    client: BaseClient
    image_fetcher: ImageFetcher
    image_fitter: ImageFitter

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

    async def fit_images(self, images: list[StoredImage]) -> tuple[list[StoredImage], list[str]]:
        """A message's images within the request's byte budget (shrunk where needed, in a
        sandboxed worker), and a notice naming each one left out. Fitted once, when shared: the stored
        copy is what follow-ups send again."""
        total, per_image = image_budget(self.config)
        kept: list[StoredImage] = []
        notices: list[str] = []
        over_budget: list[str] = []
        used = 0
        for image in images:
            try:
                fitted = await self.image_fitter.fit(image.data, image.mimetype, per_image)
            except ImageUnusable as exc:
                log.info("image %s left out: %s", image.name, exc.reason)
                notices.append(f"⚠️ I left out the image {image.name}: {exc.reason}.")
                continue
            if fitted.shrunk:
                log.info("image %s shrunk from %d to %d bytes", image.name, len(image.data), len(fitted.data))
            if used + len(fitted.data) > total:
                over_budget.append(image.name)
                continue
            used += len(fitted.data)
            kept.append(StoredImage(image.name, fitted.mimetype, fitted.data))
        if over_budget:
            notices.append(
                f"⚠️ One message's images may take {self.config.max_image_context_mb:g} MB together, "
                f"so I left out: {', '.join(over_budget)}."
            )
        return kept, notices
