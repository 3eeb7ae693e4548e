"""Settings as the processor and the settings modal see them: resolved layers, saved diffs."""

from __future__ import annotations

from typing import Any

from config import Config
from database import Database
from settings import Scope, Settings, overrides, resolve


def defaults_from_config(config: Config) -> Settings:
    return Settings(
        model=config.openai_model,
        reasoning_effort=config.default_reasoning_effort,
        verbosity=config.default_verbosity,
        temperature=config.default_temperature,
        streaming=config.enable_streaming,
        web_search=config.enable_web_search,
        image_size=config.default_image_size,
        image_quality=config.default_image_quality,
    )


class SettingsStore:
    def __init__(self, config: Config, db: Database) -> None:
        self.config = config
        self.db = db
        self.defaults = defaults_from_config(config)

    def _resolve(self, *layers: dict[str, Any]) -> Settings:
        return resolve(self.defaults, *layers, available_models=self.config.available_models)

    async def for_user(self, user_id: str) -> Settings:
        """Environment defaults with the person's own defaults on top."""
        return self._resolve(await self.db.user_settings(user_id))

    async def effective(self, user_id: str, channel_id: str | None, thread_ts: str | None) -> Settings:
        """What a turn uses: defaults < the person's defaults < the thread's settings."""
        layers = [await self.db.user_settings(user_id)]
        if channel_id and thread_ts:
            layers.append(await self.db.thread_settings(channel_id, thread_ts))
        return self._resolve(*layers)

    async def save(
        self, user_id: str, scope: Scope, values: dict[str, Any],
        channel_id: str | None = None, thread_ts: str | None = None,
    ) -> tuple[Settings, Settings]:
        """Store `values` at `scope` (as a diff against the layer below); (before, after)."""
        if scope == "thread":
            if not channel_id or not thread_ts:
                raise ValueError("thread settings need a channel and a thread")
            before = await self.effective(user_id, channel_id, thread_ts)
            base = await self.for_user(user_id)
            await self.db.save_thread_settings(channel_id, thread_ts, overrides(values, base), user_id)
            return before, await self.effective(user_id, channel_id, thread_ts)
        before = await self.for_user(user_id)
        await self.db.save_user_settings(user_id, overrides(values, self.defaults))
        return before, await self.for_user(user_id)
