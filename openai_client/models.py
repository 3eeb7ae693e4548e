"""The models a server offers for chat, as the settings window lists them.

With `AVAILABLE_MODELS` unset, the list is the server's own (`GET /v1/models`, which OpenAI,
Ollama, vLLM and LiteLLM all serve), filtered to models that can chat, asked at start-up and
then hourly by a supervised job. When the list can't be had, the last good one stays, or just
`OPENAI_MODEL`. The default model is always first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from openai_client.events import ModelError

log = logging.getLogger(__name__)

# Model ids with one of these in them do something other than chat (embeddings, speech,
# pictures, moderation, …).
NOT_FOR_CHAT = (
    "embed", "tts", "whisper", "dall-e", "image", "moderation", "transcribe", "realtime", "audio",
    "babbage", "davinci", "sora", "rerank", "speech",
)
# A Slack select holds at most 100 options.
MAX_OFFERED = 100
REFRESH_SECONDS = 3600.0


def chat_models(ids: Iterable[str], default: str) -> tuple[str, ...]:
    """The ids that can chat, sorted, the default first, at most `MAX_OFFERED` of them."""
    found = sorted({i for i in ids if i and not any(word in i.lower() for word in NOT_FOR_CHAT)} - {default})
    return (default, *found)[:MAX_OFFERED]


class ModelCatalog:
    """The models people may choose. `configured`: `AVAILABLE_MODELS` (then the server is not
    asked); `fetch`: lists the server's model ids."""

    def __init__(
        self, default: str, configured: tuple[str, ...] = (),
        fetch: Callable[[], Awaitable[list[str]]] | None = None,
    ) -> None:
        self.default = default
        self.configured = bool(configured)
        self._fetch = None if configured else fetch
        self._models: tuple[str, ...] = configured or (default,)
        self._known = bool(configured)

    def available(self) -> tuple[str, ...]:
        """What the settings window offers."""
        return self._models

    def accepted(self) -> tuple[str, ...] | None:
        """What a stored or submitted choice must be one of; None while the server's list was
        never had (a choice saved earlier must not be dropped because the server is slow)."""
        return self._models if self._known else None

    async def refresh(self) -> None:
        """Ask the server once; a failure keeps the models known so far (logged)."""
        if self._fetch is None:
            return
        try:
            ids = await self._fetch()
        except ModelError as exc:  # the bot goes on with what it has
            log.warning("could not list the server's models (%s); offering %s", exc, ", ".join(self._models[:5]))
            return
        models = chat_models(ids, self.default)
        if models != self._models:
            log.info("the server offers %d chat models", len(models))
        self._models, self._known = models, True

    async def run(self, interval: float = REFRESH_SECONDS) -> None:
        """Asks now, then hourly (a supervised job: start-up does not wait for the server)."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval)
