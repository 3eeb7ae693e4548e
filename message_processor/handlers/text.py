"""Text answers: build the request from the conversation, stream the model's answer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from base_client import Message, ReplyStream, Role, UserInfo
from database import StoredImage, StoredMessage
from message_processor.budget import estimate_tokens
from message_processor.handlers.code_files import CodeFiles, CodeFilesMixin
from message_processor.handlers.documents import DocumentsMixin
from message_processor.handlers.image_edit import ImageEditMixin
from message_processor.handlers.vision import image_budget, image_parts, newest_within
from message_processor.model_slots import ModelSlots
from message_processor.progress import ProgressIndicator
from message_processor.thread_management import ThreadContextMixin
from message_processor.turn_loop import TurnLoopMixin
from message_processor.usage import UsageMixin
from message_processor.utilities import (
    HISTORY_CUT_NOTICE,
    build_instructions,
    incomplete_note,
    sources_note,
    model_options,
    speaker_turn,
)
from openai_client import ModelError, ModelRequest
from openai_client.events import ErrorKind
from settings import Settings
from thread_manager import ThreadState
from tools.base import ToolContext
from tools.code_interpreter import files_note
from token_counter import Trimmed, input_budget, tokens_at_most, trim_turns

if TYPE_CHECKING:
    from config import Config
    from openai_client import OpenAIClient

log = logging.getLogger(__name__)


def request_tokens(request: ModelRequest) -> int:
    """What a request's input will cost, estimated (images not counted) for the budget."""
    return estimate_tokens(request.instructions, *(
        turn["content"] if isinstance(turn["content"], str)
        else "".join(part.get("text", "") for part in turn["content"])
        for turn in request.turns
    ))


ImageParts = dict[str, list[dict[str, Any]]]


def turn_input(turn: StoredMessage, text: str, images: ImageParts) -> dict[str, Any]:
    """One turn for the Responses API: text, plus the image inputs (already encoded, by the
    message they came with) of a person's turn with images."""
    shared = images.get(turn.slack_ts or "") if turn.role is Role.USER else None
    if not shared:
        return {"role": turn.role.value, "content": text}
    return {"role": turn.role.value, "content": [{"type": "input_text", "text": text}, *shared]}


class TextHandlerMixin(
    ThreadContextMixin, DocumentsMixin, CodeFilesMixin, UsageMixin, TurnLoopMixin, ImageEditMixin
):
    config: Config
    ai: OpenAIClient
    model_slots: ModelSlots

    async def answer_text(
        self, message: Message, state: ThreadState, reply: ReplyStream, settings: Settings, user: UserInfo
    ) -> None:
        """`user`: the person asking, looked up while the answer's first status went out."""
        history = await self.load_turns(message, state)
        # Said once, on the turn whose history was rebuilt only in part.
        history_cut, state.history_cut = state.history_cut, False
        read = await self.read_attachments(message, reply)
        blocks, images, notices = read.blocks, read.images, read.notices
        if history_cut:
            notices.insert(0, HISTORY_CUT_NOTICE)
        text = "\n\n".join(part for part in (message.text, *blocks) if part.strip())
        if not text and not images:
            # Only files, none readable: the reasons are the whole answer.
            await reply.fail("\n".join(notices))
            return
        text = text or f"[shared {len(images)} image(s)]"
        turn = StoredMessage(Role.USER, text, message.message_id, message.user_id, user.display_name)
        # Stored before the model call, so a failed answer still leaves the question in context.
        await self.save_turns(message, state, [turn], images)
        if self.tools.can_run_code:
            await self.keep_data_files(message, state, read.data_files)
        request = await self._build_request(
            history, user.timezone, settings, await self.context_images(message, state, bool(images)), history_cut
        )
        code = await self.code_files(message, state, reply) if self.tools.runs_code(settings) else CodeFiles()
        notices += code.notices
        if code.names:
            request = replace(request, instructions=request.instructions + files_note(code.names))

        self.hold_for_request(message, request_tokens(request))
        async with self.model_slots.slot(reply):
            progress = ProgressIndicator(reply, self.config.progress_update_seconds)
            progress.start(message.conversation_key)
            context = ToolContext(
                message.user_id, message.channel_id, message.thread_id,
                latest_image=lambda: self.latest_picture(message, images),
                image_size=settings.image_size, image_quality=settings.image_quality,
            )
            try:
                turn = await self.run_turn(
                    message, request, self.tools.for_turn(settings, code.file_ids), reply, progress,
                    settings.streaming, context,
                )
            finally:
                await progress.stop()
        text, completed = turn.text, turn.completed
        if not text.strip():
            raise ModelError(ErrorKind.FAILED, "the model returned an empty answer")
        if turn.citations:
            await reply.append(sources_note(turn.citations))
        if turn.notes:
            await reply.append("\n\n" + "\n".join(turn.notes))
        if completed.incomplete_reason:
            await reply.append("\n\n" + incomplete_note(completed.incomplete_reason))
        if notices:
            await reply.append("\n\n" + "\n".join(notices))
        # Saved before it is shown: once a person sees the answer, a follow-up must find it.
        await self.save_turns(message, state, [StoredMessage(Role.ASSISTANT, text)])
        outcome = await reply.finish()
        await self.remember_answer(message, outcome, settings)
        log.info(
            "%s answered: %d chars in %d message(s), tokens in/out %d/%d",
            message.conversation_key, len(text), len(outcome.message_ids),
            completed.input_tokens, completed.output_tokens,
        )

    async def _build_request(
        self, turns: list[StoredMessage], tz_name: str, settings: Settings,
        images: ImageParts | None = None, history_cut: bool = False,
    ) -> ModelRequest:
        config = self.config
        texts = [
            speaker_turn(t.author_name or "Someone", t.text) if t.role is Role.USER else t.text
            for t in turns
        ]
        budget = input_budget(
            settings.model, config.openai_max_output_tokens, config.openai_context_window
        )

        def instructions(trimmed: bool) -> str:
            return build_instructions(
                config.system_prompt, tz_name, trimmed, custom=settings.custom_instructions,
                history_cut=history_cut,
            )

        bound = tokens_at_most(instructions(False), texts)
        if bound <= budget:
            trimmed = Trimmed(kept_from=0, tokens=bound)
        else:
            # Near the window: exact counts, off the loop (tokenizing long text is CPU work).
            trimmed = await asyncio.to_thread(trim_turns, instructions(False), texts, budget)
        if trimmed.dropped:
            log.info("trimmed %d oldest turns to fit %d tokens", trimmed.dropped, budget)
        kept = range(trimmed.kept_from, len(turns))
        return ModelRequest(
            model=settings.model,
            instructions=instructions(bool(trimmed.dropped)),
            turns=[turn_input(turns[i], texts[i], images or {}) for i in kept],
            max_output_tokens=config.openai_max_output_tokens,
            extra=model_options(settings, config.reasoning_model_prefixes),
        )

    async def context_images(self, message: Message, state: ThreadState, shared_now: bool) -> ImageParts:
        """Input parts of the thread's newest shared images, by the message they came with.

        Bounded in number (`MAX_CONTEXT_IMAGES`) and in bytes (`MAX_IMAGE_CONTEXT_MB`), newest
        first: the question's own images (fitted to the budget when shared) always go. Pictures
        the bot drew are not shared images: they take no place here. A thread that begins with
        this message, which came without images (`shared_now`), has none: nothing to look up.
        """
        if message.starts_thread and not shared_now:
            return {}
        thread_id = await self.thread_row(message, state)
        total, _ = image_budget(self.config)
        recent = await self.db.recent_images(thread_id, self.config.max_context_images, shared_only=True)
        kept, left_out = newest_within(recent, total)
        for image in left_out:
            log.info("%s: older image %s left out of the request: over %g MB of images",
                     message.conversation_key, image.name, self.config.max_image_context_mb)
        by_message: dict[str, list[StoredImage]] = {}
        for ts, image in kept:
            by_message.setdefault(ts, []).append(image)
        return {ts: await image_parts(images) for ts, images in by_message.items()}
