"""Settings from Slack: the slash command, the thread shortcut, the modal's updates and saving.

Every listener acks first (Slack allows 3 s), then does its I/O. Everything a person sees when
something goes wrong (an expired trigger, a stale modal) says what to do next.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from access import AccessPolicy
from config import Config
from settings import (
    Scope,
    Settings,
    SettingsSource,
    describe_changes,
    is_reasoning_model,
    validate,
)
from settings_modal import (
    SCOPE,
    InvalidMetadata,
    ModalContext,
    build_view,
    read_context,
    read_state,
    sign_context,
    signing_key,
)

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
STALE_MODAL = "This settings window is out of date. Close it and open the settings again."


class SettingsMixin:
    web: AsyncWebClient
    config: Config
    settings_source: SettingsSource
    access: AccessPolicy

    def _view(self, settings: Settings, context: ModalContext, scope: Scope | None) -> dict[str, Any]:
        metadata = sign_context(context, signing_key(self.config.slack_bot_token))
        reasoning = is_reasoning_model(settings.model, self.config.reasoning_model_prefixes)
        return build_view(settings, self.config.available_models, reasoning, metadata, scope)

    async def _open(self, trigger_id: str, view: dict[str, Any], user_id: str, channel_id: str,
                    thread_ts: str | None = None) -> None:
        try:
            await self.web.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("views.open failed for %s: %s", user_id, error)
            hint = (
                "Slack took too long to hand me the request"
                if error == "expired_trigger_id" else f"Slack said: {error}"
            )
            await self.web.chat_postEphemeral(
                channel=channel_id, user=user_id, thread_ts=thread_ts,
                text=f":warning: I couldn't open the settings window ({hint}). "
                f"Please try again with {self.config.settings_slash_command}.",
            )

    async def _refused(self, user_id: str, channel_id: str, thread_ts: str | None = None) -> bool:
        """Settings are for people the bot serves; others are told why nothing opens."""
        refusal = self.access.person_refusal(user_id)
        if refusal is not None:
            await self.web.chat_postEphemeral(channel=channel_id, user=user_id, thread_ts=thread_ts, text=refusal)
        return refusal is not None

    async def _open_defaults(self, trigger_id: str, user_id: str, channel_id: str) -> None:
        """The person's own defaults (slash command, welcome button)."""
        if await self._refused(user_id, channel_id):
            return
        settings = await self.settings_source.for_user(user_id)
        context = ModalContext(user_id=user_id, issued_at=time.time())
        await self._open(trigger_id, self._view(settings, context, None), user_id, channel_id)

    async def on_settings_command(self, ack: Ack, command: dict[str, Any]) -> None:
        await ack()
        await self._open_defaults(command["trigger_id"], command["user_id"], command["channel_id"])

    async def on_open_settings_button(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        user_id = body["user"]["id"]
        channel_id = (body.get("channel") or {}).get("id", user_id)
        await self._open_defaults(body["trigger_id"], user_id, channel_id)

    async def on_thread_settings_shortcut(self, ack: Ack, shortcut: dict[str, Any]) -> None:
        await ack()
        user_id = shortcut["user"]["id"]
        channel_id = shortcut["channel"]["id"]
        message = shortcut.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts") or shortcut.get("message_ts", "")
        if await self._refused(user_id, channel_id, thread_ts):
            return
        settings = await self.settings_source.effective(user_id, channel_id, thread_ts)
        context = ModalContext(user_id=user_id, issued_at=time.time(), channel_id=channel_id, thread_ts=thread_ts)
        view = self._view(settings, context, "thread")
        await self._open(shortcut["trigger_id"], view, user_id, channel_id, thread_ts)

    def _context(self, view: dict[str, Any], user_id: str) -> ModalContext | None:
        try:
            return read_context(
                view.get("private_metadata", ""), signing_key(self.config.slack_bot_token), user_id, time.time()
            )
        except InvalidMetadata as exc:
            log.warning("refused settings modal metadata from %s: %s", user_id, exc)
            return None

    async def on_model_change(self, ack: Ack, body: dict[str, Any]) -> None:
        """Show the fields that fit the newly chosen model, keeping what was typed."""
        await ack()
        view = body["view"]
        user_id = body["user"]["id"]
        context = self._context(view, user_id)
        if context is None:
            return
        raw = read_state(view.get("state", {}).get("values", {}))
        base = await self.settings_source.effective(user_id, context.channel_id or None, context.thread_ts or None)
        values, _ = validate(raw, self.config.available_models)
        shown = replace(base, **values)
        scope: Scope | None = None
        if context.for_thread:
            scope = "user" if raw.get(SCOPE) == "user" else "thread"
        await self.web.views_update(view_id=view["id"], hash=view.get("hash"), view=self._view(shown, context, scope))

    async def on_settings_submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        context = self._context(view, user_id)
        if context is None:
            await ack(response_action="errors", errors={"model": STALE_MODAL})
            return
        raw = read_state(view.get("state", {}).get("values", {}))
        values, errors = validate(raw, self.config.available_models)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        scope: Scope = "thread" if context.for_thread and raw.get(SCOPE) != "user" else "user"
        # Fields the window did not show keep the value of the layer being saved.
        if scope == "thread":
            current = await self.settings_source.effective(user_id, context.channel_id, context.thread_ts)
        else:
            current = await self.settings_source.for_user(user_id)
        before, after = await self.settings_source.save(
            user_id, scope, {**current.as_dict(), **values},
            context.channel_id or None, context.thread_ts or None,
        )
        await self._confirm(user_id, scope, context, describe_changes(before, after))

    async def _confirm(self, user_id: str, scope: Scope, context: ModalContext, changes: list[str]) -> None:
        where = "this thread" if scope == "thread" else "your defaults"
        text = (
            f":white_check_mark: Saved for {where}:\n" + "\n".join(f"• {line}" for line in changes)
            if changes else f"Saved for {where}: nothing changed."
        )
        if scope == "thread":
            await self.web.chat_postEphemeral(
                channel=context.channel_id, user=user_id, thread_ts=context.thread_ts, text=text
            )
        else:
            # A bot posting to a person's user id lands in their DM with the app.
            await self.web.chat_postMessage(channel=user_id, text=text)
