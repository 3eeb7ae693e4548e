"""Pictures: a function tool the model calls to draw a new picture or change the thread's latest.

Backed by the images API (`OPENAI_IMAGE_MODEL`), so it works in both API styles, also with Chat
Completions servers that offer images. The picture goes into the thread through the turn loop
(`ToolResult.files`) and is kept there, so a later "make it blue" edits it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.base import OutputFile, Tool, ToolCall, ToolContext, ToolResult

if TYPE_CHECKING:
    from openai_client import OpenAIClient

PICTURE = "image.png"


class Pictures(Tool):
    name = "make_picture"
    description = (
        "Draw a picture from a description, or change the latest picture of this conversation "
        "(set edit_latest). The picture is shown to the person; describe it fully in `prompt`."
    )

    def __init__(self, ai: OpenAIClient, model: str) -> None:
        self._ai = ai
        self._model = model

    def parameters(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "description": "What to draw, or how to change the picture"},
                "edit_latest": {"type": "boolean", "description": "Change the latest picture instead of a new one"},
            },
            "required": ["prompt"],
        }

    def title(self, arguments: dict[str, Any]) -> str:
        return "Editing the picture" if arguments.get("edit_latest") else "Drawing"

    async def run(self, call: ToolCall, context: ToolContext) -> ToolResult:
        arguments = call.parsed()
        prompt = str(arguments.get("prompt") or "").strip()
        if not prompt:
            return ToolResult("No prompt was given; say what to draw.", ok=False)
        source = None
        if arguments.get("edit_latest") and context.latest_image is not None:
            source = await context.latest_image()
            if source is None:
                return ToolResult("There is no picture in this conversation to change yet.", ok=False)
        if source is not None:
            image = await self._ai.edit_image(
                self._model, (source.name, source.data, source.mimetype), prompt,
                context.image_size, context.image_quality,
            )
        else:
            image = await self._ai.generate_image(self._model, prompt, context.image_size, context.image_quality)
        done = "The changed picture" if source is not None else "The picture"
        return ToolResult(
            f"{done} is now shown to the person in the conversation.",
            files=(OutputFile(PICTURE, image.data, "image/png"),), detail=prompt[:100],
            usage=(self._model, image.input_tokens, image.output_tokens),
        )
