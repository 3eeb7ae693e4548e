"""Pictures: deciding when a message asks for one, drawing it or editing the latest one.

Routing costs a model call, so only messages that mention pictures get one: a cheap word check
first, then `OPENAI_UTILITY_MODEL` answers one word (generate, edit, clarify or text).
Image calls run under the same lock, timeout and progress indicator as text answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from base_client import Message, ReplyStream, Role
from database import GENERATED_IMAGE_PREFIX, StoredImage, StoredMessage
from message_processor.handlers.image_edit import ImageEditMixin
from message_processor.progress import ProgressIndicator
from settings import Settings
from thread_manager import ThreadState

if TYPE_CHECKING:
    from message_processor.handlers.text import TextHandlerMixin as _Base
else:
    _Base = object

log = logging.getLogger(__name__)

INTENTS = ("generate", "edit", "clarify", "text")
VISUAL_WORDS = re.compile(
    r"\b(draw|drawing|picture|image|photo|illustrat\w*|sketch|paint\w*|logo|icon|wallpaper|"
    r"render|poster|cartoon|make it|change it|turn it|recolou?r|background)\b",
    re.IGNORECASE,
)
ROUTER_PROMPT = (
    "You route messages for a chat assistant that can also create and edit pictures. "
    "Answer with exactly one word:\n"
    "generate - the person wants a new picture made\n"
    "edit - the person wants the latest picture in the thread changed\n"
    "clarify - they want a picture, but it is unclear whether a new one or a change\n"
    "text - anything else, including questions about a picture"
)
CLARIFY_QUESTION = (
    "Do you want me to change the latest picture in this thread, or draw a new one? "
    "Say \"change it\" or \"draw a new one\"."
)
PICTURES_OFF_NOTICE = (
    ":frame_with_picture: I can't draw or edit pictures here: this bot's model server has no image API. "
    "An admin can enable it with OPENAI_IMAGE_MODEL. I can still answer questions in text."
)


def looks_visual(text: str) -> bool:
    return bool(VISUAL_WORDS.search(text))


class ImageGenerationMixin(ImageEditMixin, _Base):
    async def route(self, message: Message, has_image: bool) -> str:
        """Ask the utility model; only called for messages that `looks_visual`."""
        question = f"The thread has a picture: {'yes' if has_image else 'no'}.\nMessage: {message.text}"
        model = self.config.openai_utility_model
        result = await asyncio.wait_for(
            self.ai.classify(model, ROUTER_PROMPT, question), self.config.openai_timeout_seconds,
        )
        await self.record_usage(message, model, "routing", result.input_tokens, result.output_tokens)
        word = result.word
        intent = word.split()[0].strip(".") if word else "text"
        if intent not in INTENTS:
            return "text"
        if intent == "edit" and not has_image:
            return "generate"
        return intent

    async def answer(self, message: Message, state: ThreadState, reply: ReplyStream, settings: Settings) -> None:
        """Every message: a picture, a question back, or a text answer."""
        if not looks_visual(message.text):
            await self.answer_text(message, state, reply, settings)
            return
        images = [a for a in message.attachments if a.mimetype.startswith("image/")]
        has_image = bool(images) or await self.latest_image(message, []) is not None
        intent = await self.route(message, has_image)
        log.info("%s: routed to %s", message.conversation_key, intent)
        if intent == "text":
            await self.answer_text(message, state, reply, settings)
        elif not self.config.pictures_enabled:
            await self._pictures_off(message, state, reply)
        elif intent == "clarify":
            await self._clarify(message, state, reply)
        else:
            await self._picture(message, state, reply, settings, edit=intent == "edit")

    async def _save_request(
        self, message: Message, state: ThreadState, images: list[StoredImage] | None = None
    ) -> None:
        """The person's turn, stored before any model call (as text answers do)."""
        user = await self.user_info(message.user_id)
        await self.load_turns(message, state)
        turn = StoredMessage(Role.USER, message.text, message.message_id, message.user_id, user.display_name)
        await self.save_turns(message, state, [turn], images or [])

    async def _clarify(self, message: Message, state: ThreadState, reply: ReplyStream) -> None:
        await self._save_request(message, state)
        await self.save_turns(message, state, [StoredMessage(Role.ASSISTANT, CLARIFY_QUESTION)])
        await reply.append(CLARIFY_QUESTION)
        await reply.finish()

    async def _pictures_off(self, message: Message, state: ThreadState, reply: ReplyStream) -> None:
        """A picture was asked for but the server cannot draw: say so instead of failing."""
        await self._save_request(message, state)
        await self.save_turns(message, state, [StoredMessage(Role.ASSISTANT, PICTURES_OFF_NOTICE)])
        await reply.append(PICTURES_OFF_NOTICE)
        await reply.finish()

    async def _picture(
        self, message: Message, state: ThreadState, reply: ReplyStream, settings: Settings, edit: bool
    ) -> None:
        _, attached, notices = await self.read_attachments(message, reply)
        await self._save_request(message, state, attached)
        source = await self.latest_image(message, attached) if edit else None
        config = self.config
        progress = ProgressIndicator(reply, config.progress_update_seconds)
        progress.start(message.conversation_key)
        try:
            await progress.tool("image_generation")
            async with self.model_slots.slot(reply):
                if source is not None:
                    call = self.ai.edit_image(
                        config.openai_image_model, (source.name, source.data, source.mimetype),
                        message.text, settings.image_size, settings.image_quality,
                    )
                else:
                    call = self.ai.generate_image(
                        config.openai_image_model, message.text, settings.image_size, settings.image_quality,
                    )
                image = await asyncio.wait_for(call, config.openai_timeout_seconds)
            data = image.data
            await self.record_usage(
                message, config.openai_image_model, "picture", image.input_tokens, image.output_tokens
            )
            await progress.progress_text("Uploading the picture…")
            await self.client.upload_file(
                message.channel_id, message.thread_id, "edited.png" if source else "image.png", data,
                title=message.text[:200] or "image",
            )
        finally:
            await progress.stop()
        thread_id = await self.thread_row(message, state)
        await self.db.add_images(
            thread_id, GENERATED_IMAGE_PREFIX + message.message_id, [StoredImage("image.png", "image/png", data)]
        )
        caption = "Here is the edited picture." if source else "Here is your picture."
        await self.save_turns(message, state, [StoredMessage(Role.ASSISTANT, f"[{caption} Prompt: {message.text}]")])
        await reply.append(caption + ("\n\n" + "\n".join(notices) if notices else ""))
        outcome = await reply.finish()
        await self.remember_answer(message, outcome, settings, config.openai_image_model)
