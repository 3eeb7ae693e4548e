"""Fetching a shared file within the size limit, with the reason in words when it fails."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from base_client import Attachment, BaseClient, DownloadError, FileTooLarge, ReplyStream, UntrustedFileUrl
from document_handler import DocumentError

if TYPE_CHECKING:
    from config import Config

log = logging.getLogger(__name__)


class DownloadMixin:
    config: Config
    client: BaseClient

    async def download(
        self, attachment: Attachment, limit: int, reply: ReplyStream, status: str, limit_mb: float | None = None
    ) -> bytes:
        """The file's bytes; refused from its declared size before any byte is fetched.
        `limit_mb`: the setting behind `limit`, as the person reads it (default `MAX_FILE_MB`)."""
        too_big = f"over the {self.config.max_file_mb if limit_mb is None else limit_mb:g} MB limit"
        if attachment.size > limit:
            raise DocumentError(f"it is {attachment.size / 1048576:.1f} MB, {too_big}")
        await reply.progress(status)
        try:
            return await self.client.download_file(attachment, limit)
        except FileTooLarge as exc:  # its declared size was wrong
            raise DocumentError(f"it is {too_big}") from exc
        except UntrustedFileUrl as exc:  # a forged or odd file entry: the bot token was not sent
            log.warning("download of %s refused: %s", attachment.name, exc)
            raise DocumentError("its link is not Slack's file server, so I did not download it") from exc
        except DownloadError as exc:
            log.warning("download of %s failed: %s", attachment.name, exc)
            raise DocumentError("I couldn't download it from Slack; please share it again") from exc
