"""Which picture "make it blue" means: the newest image of the thread, shared or generated."""

from __future__ import annotations

from collections.abc import Sequence

from base_client import Message
from database import Database, StoredImage
from tools.base import OutputFile


class ImageEditMixin:
    db: Database

    async def latest_image(self, message: Message, attached: list[StoredImage]) -> StoredImage | None:
        if attached:
            return attached[-1]
        thread_id = await self.db.thread_id(message.channel_id, message.thread_id)
        if thread_id is None:
            return None
        newest = await self.db.recent_images(thread_id, 1)
        return newest[-1][1] if newest else None

    async def latest_picture(self, message: Message, attached: Sequence[StoredImage]) -> OutputFile | None:
        """The picture a change applies to: one shared with this message, else the thread's newest."""
        image = await self.latest_image(message, list(attached))
        return None if image is None else OutputFile(image.name, image.data, image.mimetype)
