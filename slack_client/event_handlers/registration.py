"""Which Slack events reach which listener. Bolt acks events before the listener runs."""

from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable

from slack_bolt.async_app import AsyncApp

from config import Config
from settings_modal import CALLBACK_ID, MODEL_ACTION, OPEN_SETTINGS_ACTION
from slack_client.edited_reply import FEEDBACK_ACTION, STOP_ACTION


Listener = Callable[..., Awaitable[None]]

log = logging.getLogger(__name__)


class RegistrationMixin:
    app: AsyncApp
    config: Config
    handled: int

    def register_listeners(self) -> None:
        app, counted = self.app, self.counted
        app.event("message")(counted(self.on_message_event))  # type: ignore[attr-defined]
        app.event("app_mention")(counted(self.on_app_mention))  # type: ignore[attr-defined]
        app.command(self.config.settings_slash_command)(counted(self.on_settings_command))  # type: ignore[attr-defined]
        app.shortcut(self.config.thread_settings_callback_id)(counted(self.on_thread_settings_shortcut))  # type: ignore[attr-defined]
        app.action(MODEL_ACTION)(counted(self.on_model_change))  # type: ignore[attr-defined]
        app.action(OPEN_SETTINGS_ACTION)(counted(self.on_open_settings_button))  # type: ignore[attr-defined]
        app.view(CALLBACK_ID)(counted(self.on_settings_submit))  # type: ignore[attr-defined]
        app.event("assistant_thread_started")(counted(self.on_assistant_thread_started))  # type: ignore[attr-defined]
        app.event("assistant_thread_context_changed")(counted(self.on_ignored_event))  # type: ignore[attr-defined]
        app.event("app_home_opened")(counted(self.on_app_home_opened))  # type: ignore[attr-defined]
        app.action(FEEDBACK_ACTION)(counted(self.on_feedback))  # type: ignore[attr-defined]
        app.event("agent_session_stopped")(counted(self.on_agent_session_stopped))  # type: ignore[attr-defined]
        app.action(STOP_ACTION)(counted(self.on_stop_button))  # type: ignore[attr-defined]

    def counted(self, listener: Listener) -> Listener:
        """`listener`, counting each finished run in `handled` (tests wait on it before checking
        that an event led to nothing), and never raising to bolt.

        Bolt waits for a listener's ack() by polling every 10 ms; a listener that raises in
        between has its ack taken back, and then no ack is sent at all: Slack shows the person
        an error and delivers the envelope again. So a failure is logged here with its
        traceback, and acked if the listener had not acked yet.
        """

        # `wraps` keeps the listener's signature visible: bolt passes arguments by name.
        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            try:
                await listener(**kwargs)
            except Exception:
                log.exception("%s failed", listener.__name__)
                ack = kwargs.get("ack")
                if ack is not None and ack.response is None:
                    await ack()
            finally:
                self.handled += 1

        return run

    async def on_ignored_event(self) -> None:
        """Subscribed for the assistant features but not needed: acked, nothing to do."""
