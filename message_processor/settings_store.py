"""Settings as the processor and the settings modal see them: resolved layers, saved diffs."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from config import Config
from database import Database
from message_processor.budget import day_start
from openai_client.models import ModelCatalog
from settings import PERSONAL_FIELDS, Scope, Settings, UsageSummary, overrides, resolve, shared


def defaults_from_config(config: Config) -> Settings:
    return Settings(
        model=config.openai_model,
        reasoning_effort=config.default_reasoning_effort,
        verbosity=config.default_verbosity,
        temperature=config.default_temperature,
        streaming=config.enable_streaming,
        web_search=config.enable_web_search,
        code_interpreter=config.enable_code_interpreter,
        image_size=config.default_image_size,
        image_quality=config.default_image_quality,
    )


CACHED_THREADS = 10_000


class SettingsStore:
    def __init__(self, config: Config, db: Database, models: ModelCatalog | None = None) -> None:
        self.config = config
        self.db = db
        self.models = models or ModelCatalog(config.openai_model, config.available_models)
        self.defaults = defaults_from_config(config)
        # Read on every turn, changed rarely: the layers are kept in memory once loaded. Thread
        # layers are bounded (most recent kept). On SQLite this store is the only writer (one
        # process). With several instances (PostgreSQL) any of them may change a layer: every
        # read first asks the database for its settings version, which each change moves in
        # the same transaction, and drops all cached layers when it moved.
        self._shared = db.engine == "postgresql"
        self._version: int | None = None
        # Moves when the cached layers are dropped: a load that began before caches nothing.
        self._epoch = 0
        self._workspace: dict[str, Any] | None = None
        self._users: dict[str, dict[str, Any]] = {}
        self._threads: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._mine: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()

    async def _fresh(self) -> None:
        """Several instances: drop the cached layers if any instance changed settings since.

        One indexed read a turn: a change saved on one instance applies to the very next answer
        on every instance (a cache invalidated by notification could still be a beat late)."""
        if not self._shared:
            return
        version = await self.db.settings_version()
        if version != self._version:
            self._workspace = None
            self._users.clear()
            self._threads.clear()
            self._mine.clear()
            self._epoch += 1
            self._version = version

    async def _resolve(self, *layers: dict[str, Any]) -> Settings:
        workspace = self._workspace
        if workspace is None:
            epoch = self._epoch
            workspace = await self.db.workspace_settings()
            if epoch == self._epoch:
                self._workspace = workspace
        return resolve(self.defaults, workspace, *layers, available_models=self.models.accepted())

    def available_models(self) -> tuple[str, ...]:
        """The models the settings window offers."""
        return self.models.available()

    def accepted_models(self) -> tuple[str, ...] | None:
        """What a choice must be one of (None: not known yet, any is taken)."""
        return self.models.accepted()

    async def for_workspace(self) -> Settings:
        """Environment defaults with everyone's defaults (set by admins) on top."""
        await self._fresh()
        return await self._resolve()

    async def _user_layer(self, user_id: str) -> dict[str, Any]:
        layer = self._users.get(user_id)
        if layer is None:
            epoch = self._epoch
            layer = await self.db.user_settings(user_id)
            if epoch == self._epoch:
                self._users[user_id] = layer
        return layer

    async def _cached(
        self, cache: OrderedDict[Any, dict[str, Any]], key: Any, load: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """A thread layer from memory, or loaded once; the most recent `CACHED_THREADS` kept."""
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        epoch = self._epoch
        layer = await load()
        if epoch == self._epoch:
            cache[key] = layer
            while len(cache) > CACHED_THREADS:
                cache.popitem(last=False)
        return layer

    async def _thread_layer(self, channel_id: str, thread_ts: str) -> dict[str, Any]:
        async def load() -> dict[str, Any]:
            # `shared`: a layer stored before instructions became personal keeps them to itself.
            return shared(await self.db.thread_settings(channel_id, thread_ts))

        return await self._cached(self._threads, (channel_id, thread_ts), load)

    async def _mine_layer(self, user_id: str, channel_id: str, thread_ts: str) -> dict[str, Any]:
        return await self._cached(
            self._mine, (channel_id, thread_ts, user_id),
            lambda: self.db.thread_user_settings(channel_id, thread_ts, user_id),
        )

    async def for_user(self, user_id: str) -> Settings:
        """Everyone's defaults with the person's own defaults on top."""
        await self._fresh()
        return await self._resolve(await self._user_layer(user_id))

    async def effective(
        self, user_id: str, channel_id: str | None, thread_ts: str | None, *, new_thread: bool = False
    ) -> Settings:
        """What a turn uses: defaults < everyone's < the person's defaults < the thread's
        settings for everyone < the person's own settings in the thread.

        `new_thread`: the thread begins with the message being answered, so no one has given
        it settings yet: its two layers are not read (two round trips saved on a first message).
        """
        await self._fresh()
        layers = [await self._user_layer(user_id)]
        if channel_id and thread_ts and not new_thread:
            layers.append(await self._thread_layer(channel_id, thread_ts))
            layers.append(await self._mine_layer(user_id, channel_id, thread_ts))
        return await self._resolve(*layers)

    async def for_thread(self, channel_id: str, thread_ts: str) -> Settings:
        """A thread's settings for everyone in it: everyone's defaults with the thread's on top."""
        await self._fresh()
        return await self._resolve(await self._thread_layer(channel_id, thread_ts))

    async def _save_mine(
        self, user_id: str, channel_id: str, thread_ts: str, values: dict[str, Any], merge: bool
    ) -> None:
        """A person's own layer in a thread: a diff against what they would get without it.
        `merge`: only some fields were given, the others keep their own value."""
        below = (await self._resolve(
            await self._user_layer(user_id), await self._thread_layer(channel_id, thread_ts)
        )).as_dict()
        layer = dict(await self._mine_layer(user_id, channel_id, thread_ts)) if merge else {}
        for name, value in values.items():
            if name not in below:
                continue
            if below[name] == value:
                layer.pop(name, None)
            else:
                layer[name] = value
        await self.db.save_thread_user_settings(channel_id, thread_ts, user_id, layer)
        self._mine[(channel_id, thread_ts, user_id)] = layer

    async def usage(self, user_id: str) -> UsageSummary:
        now = time.time()
        return UsageSummary(
            today=await self.db.tokens_used(user_id, day_start(now)),
            last_30_days=await self.db.tokens_used(user_id, now - 30 * 86400),
            daily_budget=self.config.daily_token_budget,
        )

    async def save(
        self, user_id: str, scope: Scope, values: dict[str, Any],
        channel_id: str | None = None, thread_ts: str | None = None,
    ) -> tuple[Settings, Settings]:
        """Store `values` at `scope` (as a diff against the layers below); (before, after).

        For `thread` (everyone in it), before and after are the thread's settings for everyone;
        custom instructions among `values` go to the saver's own layer in the thread."""
        if scope in ("thread", "thread_mine"):
            if not channel_id or not thread_ts:
                raise ValueError("thread settings need a channel and a thread")
            if scope == "thread":
                before = await self.for_thread(channel_id, thread_ts)
                layer = overrides(shared(values), await self.for_workspace())
                await self.db.save_thread_settings(channel_id, thread_ts, layer, user_id)
                self._threads[(channel_id, thread_ts)] = layer
                personal = {k: v for k, v in values.items() if k in PERSONAL_FIELDS}
                if personal:
                    await self._save_mine(user_id, channel_id, thread_ts, personal, merge=True)
                return before, await self.for_thread(channel_id, thread_ts)
            before = await self.effective(user_id, channel_id, thread_ts)
            await self._save_mine(user_id, channel_id, thread_ts, values, merge=False)
            return before, await self.effective(user_id, channel_id, thread_ts)
        if scope == "workspace":
            before = await self.for_workspace()
            self._workspace = overrides(values, self.defaults)
            await self.db.save_workspace_settings(self._workspace, user_id)
            return before, await self.for_workspace()
        before = await self.for_user(user_id)
        layer = overrides(values, await self.for_workspace())
        await self.db.save_user_settings(user_id, layer)
        self._users[user_id] = layer
        return before, await self.for_user(user_id)
