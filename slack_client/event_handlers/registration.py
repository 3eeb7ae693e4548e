"""Which Slack events reach which listener. Bolt acks events before the listener runs."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from config import Config
from settings_modal import CALLBACK_ID, MODEL_ACTION, OPEN_SETTINGS_ACTION
from slack_client.edited_reply import FEEDBACK_ACTION


class RegistrationMixin:
    app: AsyncApp
    config: Config

    def register_listeners(self) -> None:
        app = self.app
        app.event("message")(self.on_message_event)  # type: ignore[attr-defined]
        app.event("app_mention")(self.on_app_mention)  # type: ignore[attr-defined]
        app.command(self.config.settings_slash_command)(self.on_settings_command)  # type: ignore[attr-defined]
        app.shortcut(self.config.thread_settings_callback_id)(self.on_thread_settings_shortcut)  # type: ignore[attr-defined]
        app.action(MODEL_ACTION)(self.on_model_change)  # type: ignore[attr-defined]
        app.action(OPEN_SETTINGS_ACTION)(self.on_open_settings_button)  # type: ignore[attr-defined]
        app.view(CALLBACK_ID)(self.on_settings_submit)  # type: ignore[attr-defined]
        app.event("assistant_thread_started")(self.on_assistant_thread_started)  # type: ignore[attr-defined]
        app.event("assistant_thread_context_changed")(self.on_ignored_event)  # type: ignore[attr-defined]
        app.event("app_home_opened")(self.on_app_home_opened)  # type: ignore[attr-defined]
        app.action(FEEDBACK_ACTION)(self.on_feedback)  # type: ignore[attr-defined]

    async def on_ignored_event(self) -> None:
        """Subscribed for the assistant features but not needed: acked, nothing to do."""
