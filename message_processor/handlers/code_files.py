"""The thread's data files, handed to the code interpreter as the files themselves.

A CSV, spreadsheet or JSON file someone shared is kept with the thread as it came (bytes, not
the text copy the model reads). On a turn that runs code, the newest of them (bounded in number
and bytes, `tools.code_interpreter`) are uploaded to the provider once, and their ids go into the
container; an upload is reused until it is about to expire there. What can't be handed over is
said in the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from base_client import Message, ReplyStream
from database import Database, ThreadFile
from openai_client import ModelError
from thread_manager import ThreadState
from tools.code_interpreter import (
    MAX_FILES,
    MAX_TOTAL_BYTES,
    UPLOAD_LIFETIME_SECONDS,
    UPLOAD_REUSE_SECONDS,
    choose_files,
)

if TYPE_CHECKING:
    from openai_client import OpenAIClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFile:
    """A data file of this message, as downloaded."""

    name: str
    mimetype: str
    data: bytes


@dataclass
class CodeFiles:
    """What one turn's container gets: provider file ids and their names; notices for the answer."""

    file_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def left_out_notice(name: str) -> str:
    return (
        f"⚠️ I couldn't give {name} to the code interpreter: one answer gets at most {MAX_FILES} "
        f"files of a thread and {MAX_TOTAL_BYTES // 1048576} MB of them, newest first."
    )


class CodeFilesMixin:
    db: Database
    ai: OpenAIClient

    if TYPE_CHECKING:  # from ThreadContextMixin
        async def thread_row(self, message: Message, state: ThreadState) -> int: ...

    async def keep_data_files(self, message: Message, state: ThreadState, files: Sequence[DataFile]) -> None:
        """This message's data files, stored with the thread for the code interpreter."""
        if not files:
            return
        thread_id = await self.thread_row(message, state)
        for file in files:
            await self.db.add_thread_file(thread_id, message.message_id, file.name, file.mimetype, file.data)

    async def code_files(self, message: Message, state: ThreadState, reply: ReplyStream) -> CodeFiles:
        """The thread's data files for this turn's container, uploaded where they are not yet."""
        result = CodeFiles()
        files = await self.db.thread_files(await self.thread_row(message, state))
        if not files:
            return result
        kept, left_out = choose_files(files, MAX_FILES, MAX_TOTAL_BYTES)
        for file in left_out:
            log.info("%s: %s (%d bytes) not handed to the code interpreter: over the limits",
                     message.conversation_key, file.name, file.size)
            if file.slack_ts == message.message_id:  # older files were told about when they were new
                result.notices.append(left_out_notice(file.name))
        for file in kept:
            try:
                result.file_ids.append(await self._uploaded(file, reply))
            except ModelError as exc:
                log.warning("%s: could not upload %s for the code interpreter: %s",
                            message.conversation_key, file.name, exc)
                result.notices.append(f"⚠️ I couldn't give {file.name} to the code interpreter: {exc.detail}.")
                continue
            result.names.append(file.name)
        return result

    async def _uploaded(self, file: ThreadFile, reply: ReplyStream) -> str:
        """The provider's id for `file`: the earlier upload while it is fresh, else a new one."""
        now = time.time()
        if file.uploaded_id and file.uploaded_at and now - file.uploaded_at < UPLOAD_REUSE_SECONDS:
            return file.uploaded_id
        await reply.progress(f"Handing {file.name} to the code interpreter…")
        data = await self.db.thread_file_data(file.id)
        uploaded_id = await self.ai.upload_file(file.name, data, file.mimetype, UPLOAD_LIFETIME_SECONDS)
        await self.db.set_file_upload(file.id, uploaded_id, now)
        return uploaded_id
