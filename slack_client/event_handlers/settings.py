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
    NOT_YOUR_THREAD,
    SCOPE,
    InvalidMetadata,
    ModalContext,
    build_view,
    read_context,
    read_state,
    sign_context,
    signing_key,
    tools_off,
)

from slack_client.edited_reply import reply_metadata
from slack_client.formatting.text import escape

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
STALE_MODAL = "This settings window is out of date. Close it and open the settings again."


class SettingsMixin:
    web: AsyncWebClient
    config: Config
    settings_source: SettingsSource
    access: AccessPolicy
    team_id: str
    # The team's tool servers (MCP), which people switch on or off in the window.
    tool_groups: Callable[[], tuple[str, ...]]

    def _scopes(self, context: ModalContext) -> tuple[Scope, ...]:
        """Where this person may save from this window: a thread for everyone only if they
        started it (or are an admin); admins also set everyone's defaults."""
        scopes: tuple[Scope, ...] = ("user",)
        if context.for_thread:
            scopes = ("thread", "thread_mine", "user") if context.shared else ("thread_mine", "user")
        return (*scopes, "workspace") if self.access.is_admin(context.user_id) else scopes

    def _access_refusal(self, user: dict[str, Any], channel_id: str | None = None) -> str | None:
        """Checked on opening, and again on every change and submission: an allow-list may have
        changed, and a window stays open for a long time. `channel_id`: a thread's window."""
        external = bool(user.get("team_id") and self.team_id and user["team_id"] != self.team_id)
        if channel_id:
            return self.access.refusal(user["id"], channel_id, channel_id.startswith("D"), external)
        return self.access.person_refusal(user["id"], external)

    async def _thread_starter(self, channel_id: str, thread_ts: str, message: dict[str, Any]) -> str | None:
        """Who started a thread: the shortcut's message if it is the first, else Slack's record."""
        if message.get("ts") == thread_ts and message.get("user"):
            return str(message["user"])
        try:
            response = await self.web.conversations_replies(channel=channel_id, ts=thread_ts, limit=1)
        except SlackApiError as exc:
            log.warning("could not read who started %s:%s: %s", channel_id, thread_ts, exc.response.get("error"))
            return None
        first = (response.get("messages") or [{}])[0]
        return first.get("user") if first.get("ts") == thread_ts else None

    def _chosen_scope(self, context: ModalContext, raw: dict[str, Any]) -> Scope | None:
        """The scope picked in the window (its first choice when none); None if not allowed."""
        scopes = self._scopes(context)
        chosen = raw.get(SCOPE) or scopes[0]
        return chosen if chosen in scopes else None

    async def _current(self, scope: Scope, context: ModalContext) -> Settings:
        """The settings of the layer being edited, as they stand."""
        if scope == "thread":
            # The thread's settings for everyone; instructions are the person's own, as always.
            mine = await self.settings_source.effective(context.user_id, context.channel_id, context.thread_ts)
            everyone = await self.settings_source.for_thread(context.channel_id, context.thread_ts)
            return replace(everyone, custom_instructions=mine.custom_instructions)
        if scope == "thread_mine":
            return await self.settings_source.effective(context.user_id, context.channel_id, context.thread_ts)
        if scope == "workspace":
            return await self.settings_source.for_workspace()
        return await self.settings_source.for_user(context.user_id)

    async def _view(self, settings: Settings, context: ModalContext, scope: Scope) -> dict[str, Any]:
        metadata = sign_context(context, signing_key(self.config.slack_bot_token))
        reasoning = is_reasoning_model(settings.model, self.config.reasoning_model_prefixes)
        usage = await self.settings_source.usage(context.user_id)
        note = NOT_YOUR_THREAD if context.for_thread and not context.shared else None
        return build_view(settings, self.settings_source.available_models(), reasoning, metadata, scope,
                          self._scopes(context), usage, web_search=self.config.openai_api_style == "responses",
                          note=note, tool_groups=self.tool_groups())

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

    async def _refused(
        self, user: dict[str, Any], channel_id: str, thread_ts: str | None = None, for_thread: bool = False
    ) -> bool:
        """Settings are for people the bot serves; others are told why nothing opens."""
        refusal = self._access_refusal(user, channel_id if for_thread else None)
        if refusal is not None:
            await self.web.chat_postEphemeral(channel=channel_id, user=user["id"], thread_ts=thread_ts, text=refusal)
        return refusal is not None

    async def _open_defaults(self, trigger_id: str, user: dict[str, Any], channel_id: str) -> None:
        """The person's own defaults (slash command, welcome button)."""
        user_id = user["id"]
        if await self._refused(user, channel_id):
            return
        settings = await self.settings_source.for_user(user_id)
        context = ModalContext(user_id=user_id, issued_at=time.time())
        await self._open(trigger_id, await self._view(settings, context, "user"), user_id, channel_id)

    async def on_settings_command(self, ack: Ack, command: dict[str, Any]) -> None:
        await ack()
        user = {"id": command["user_id"], "team_id": command.get("team_id")}
        await self._open_defaults(command["trigger_id"], user, command["channel_id"])

    async def on_open_settings_button(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        user_id = body["user"]["id"]
        channel_id = (body.get("channel") or {}).get("id", user_id)
        await self._open_defaults(body["trigger_id"], body["user"], channel_id)

    async def on_thread_settings_shortcut(self, ack: Ack, shortcut: dict[str, Any]) -> None:
        await ack()
        user_id = shortcut["user"]["id"]
        channel_id = shortcut["channel"]["id"]
        message = shortcut.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts") or shortcut.get("message_ts", "")
        if await self._refused(shortcut["user"], channel_id, thread_ts, for_thread=True):
            return
        # A thread's settings for everyone are its starter's to set (or an admin's); anyone else
        # sets only their own answers in it. In a DM with the bot, the person is the starter.
        starter = user_id if channel_id.startswith("D") else await self._thread_starter(channel_id, thread_ts, message)
        shared = starter == user_id or self.access.is_admin(user_id)
        context = ModalContext(user_id=user_id, issued_at=time.time(), channel_id=channel_id,
                               thread_ts=thread_ts, shared=shared)
        scope: Scope = "thread" if shared else "thread_mine"
        view = await self._view(await self._current(scope, context), context, scope)
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
        refusal = self._access_refusal(body["user"], context.channel_id if context.for_thread else None)
        if refusal is not None:
            log.info("settings change from %s refused: no longer admitted", user_id)
            return
        raw = tools_off(read_state(view.get("state", {}).get("values", {})), self.tool_groups())
        scope = self._chosen_scope(context, raw)
        if scope is None:
            return
        values, _ = validate(raw, self.settings_source.accepted_models())
        shown = replace(await self._current(scope, context), **values)
        await self.web.views_update(
            view_id=view["id"], hash=view.get("hash"), view=await self._view(shown, context, scope)
        )

    async def on_settings_submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        context = self._context(view, user_id)
        if context is None:
            await ack(response_action="errors", errors={"model": STALE_MODAL})
            return
        refusal = self._access_refusal(body["user"], context.channel_id if context.for_thread else None)
        if refusal is not None:
            log.info("settings from %s refused: no longer admitted", user_id)
            await ack(response_action="errors", errors={"model": refusal})
            return
        raw = tools_off(read_state(view.get("state", {}).get("values", {})), self.tool_groups())
        values, errors = validate(raw, self.settings_source.accepted_models())
        scope = self._chosen_scope(context, raw)
        if scope is None:
            errors[SCOPE] = (
                "Only the person who started this thread, or an admin, can change it for everyone."
                if raw.get(SCOPE) == "thread" else "Only admins can change everyone's defaults."
            )
        if errors or scope is None:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        # Fields the window did not show keep the value of the layer being saved.
        current = await self._current(scope, context)
        before, after = await self.settings_source.save(
            user_id, scope, {**current.as_dict(), **values},
            context.channel_id or None, context.thread_ts or None,
        )
        try:
            await self._confirm(user_id, scope, context, describe_changes(before, after))
        except SlackApiError as exc:  # saved all the same; only the confirmation is missing
            log.warning("could not confirm %s's settings: %s", user_id, exc.response.get("error"))

    async def _confirm(self, user_id: str, scope: Scope, context: ModalContext, changes: list[str]) -> None:
        if scope == "thread" and changes:
            # Everyone in the thread is answered with these now: they see who changed what.
            line = "; ".join(escape(change) for change in changes)
            await self.web.chat_postMessage(
                channel=context.channel_id, thread_ts=context.thread_ts, metadata=reply_metadata("notice"),
                text=f":gear: <@{user_id}> changed this thread's settings for everyone: {line}",
            )
            return
        where = {
            "thread": "this thread", "thread_mine": "your answers in this thread", "user": "your defaults",
            "workspace": "everyone's defaults",
        }[scope]
        text = (
            f":white_check_mark: Saved for {where}:\n" + "\n".join(f"• {escape(line)}" for line in changes)
            if changes else f"Saved for {where}: nothing changed."
        )
        if scope in ("thread", "thread_mine"):
            await self.web.chat_postEphemeral(
                channel=context.channel_id, user=user_id, thread_ts=context.thread_ts, text=text
            )
        else:
            # A bot posting to a person's user id lands in their DM with the app.
            await self.web.chat_postMessage(channel=user_id, text=text)
