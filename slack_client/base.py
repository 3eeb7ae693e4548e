"""`SlackBot`: the Slack implementation of `BaseClient`, an `AsyncApp` over Socket Mode."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Awaitable, Callable

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)

from access import AccessPolicy
from base_client import BaseClient, Message
from config import SETUP_HINT, Config
from settings import SettingsSource
from slack_client.event_handlers.assistant import AssistantMixin
from slack_client.event_handlers.message_events import MessageEventsMixin
from slack_client.event_handlers.registration import RegistrationMixin
from slack_client.event_handlers.settings import SettingsMixin
from slack_client.messaging import MessagingMixin
from slack_client.pacing import ChannelPacer
from slack_client.utilities import UtilitiesMixin
from slack_client.web import OnError, OnRateLimited, SlackWebClient

log = logging.getLogger(__name__)


async def nothing_to_stop(channel_id: str, thread_ts: str, user_id: str, shown_as: str | None) -> bool:
    """The Stop of a bot that answers nothing (no processor given)."""
    return False


class SlackStartError(Exception):
    """Slack refused to let the bot start; the message says what to fix."""


class SlackBot(
    RegistrationMixin, MessageEventsMixin, SettingsMixin, AssistantMixin, MessagingMixin, UtilitiesMixin,
    BaseClient,
):
    def __init__(
        self,
        config: Config,
        deliver: Callable[[Message], object],
        is_active_thread: Callable[[str, str], Awaitable[bool]],
        settings_source: SettingsSource,
        record_feedback: Callable[[str, str, str, str], Awaitable[None]],
        stop_turn: Callable[[str, str, str, str | None], Awaitable[bool]] | None = None,
        tool_groups: Callable[[], tuple[str, ...]] = tuple,
        on_api_error: OnError | None = None,
        on_rate_limited: OnRateLimited | None = None,
        owner: str = "",
    ) -> None:
        self.config = config
        # This run's name on its progress messages (leases.py): another instance taking its
        # work over closes those, and only those.
        self.owner = owner
        self.tool_groups = tool_groups
        self.record_feedback = record_feedback
        self.stop_turn = stop_turn or nothing_to_stop
        self.untitled_threads: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.settings_source = settings_source
        self.access = AccessPolicy.from_config(config)
        self.deliver = deliver
        self.is_active_thread = is_active_thread
        self.bot_user_id = ""
        self.bot_id = ""
        self.team_id = ""
        self._session: aiohttp.ClientSession | None = None
        self._handler: AsyncSocketModeHandler | None = None
        self.web = SlackWebClient(
            token=config.slack_bot_token, unfurl=config.slack_unfurl,
            base_url=config.slack_api_url, on_error=on_api_error, on_rate_limited=on_rate_limited,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=3),
                # Honours Retry-After: a rate-limited update is delayed, never dropped.
                AsyncRateLimitErrorRetryHandler(max_retry_count=config.slack_max_retries),
            ],
        )
        # Streamed replies handle 429s themselves, with a pace shared per channel (pacing.py).
        self.reply_web = SlackWebClient(
            token=config.slack_bot_token, unfurl=config.slack_unfurl,
            base_url=config.slack_api_url, on_error=on_api_error, on_rate_limited=on_rate_limited,
            retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=3)],
        )
        self.pacer = ChannelPacer(config.stream_update_seconds)
        # The messages this process's replies are writing right now: never "stale" (recovery).
        self.live_messages: set[str] = set()
        # Listener runs finished (events, commands, actions), counted so that tests can wait
        # until an event was handled before checking that nothing came of it.
        self.handled = 0
        self.app: AsyncApp

    async def connect(self) -> None:
        """Check the bot token and make the Web API ready: from now on the bot can read and post,
        but hears nothing until `start` (crash recovery runs in between, see main.py)."""
        if self._session is not None:
            return
        # One pooled HTTP session for every Web API call (bolt's per-request clients share it).
        self._session = aiohttp.ClientSession()
        self.web.session = self._session
        self.reply_web.session = self._session
        try:
            auth = await self.web.auth_test()
        except SlackApiError as exc:
            raise SlackStartError(
                f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}): {SETUP_HINT}"
            ) from exc
        self.bot_user_id, self.bot_id, self.team_id = auth["user_id"], auth["bot_id"], auth["team_id"]
        # Named into the slack_bolt hierarchy: its listener loggers ("<name>:<function>") are
        # then held at the libraries' level like the rest of Bolt (log_redaction.py).
        self.app = AsyncApp(client=self.web, name="slack_bolt.app")
        self.register_listeners()

    async def start(self) -> None:
        """Open the Socket Mode connection (after `connect`, run here if nobody did)."""
        await self.connect()
        # The socket client pings this often and reconnects when a ping goes unanswered or the
        # connection is found closed: an abrupt drop is noticed within about one interval.
        self._handler = AsyncSocketModeHandler(
            self.app, self.config.slack_app_token, ping_interval=self.config.socket_ping_seconds
        )
        try:
            await self._handler.connect_async()
        except SlackApiError as exc:
            raise SlackStartError(
                f"Slack refused the Socket Mode connection ({exc.response.get('error')}): check "
                f"SLACK_APP_TOKEN and that Socket Mode is enabled ({SETUP_HINT})"
            ) from exc
        log.info("connected to Slack as %s (%s) in %s", self.bot_user_id, self.bot_id, self.team_id)

    async def socket_connected(self) -> bool:
        return self._handler is not None and await self._handler.client.is_connected()

    async def stop_receiving(self) -> None:
        """Close the socket: Slack sends no more events to this process."""
        if self._handler is not None:
            await self._handler.close_async()
            self._handler = None

    async def close(self) -> None:
        await self.stop_receiving()
        if self._session is not None:
            await self._session.close()
            self._session = None
