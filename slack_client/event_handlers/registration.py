"""Which Slack events reach which listener. Bolt acks events before the listener runs."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


class RegistrationMixin:
    app: AsyncApp

    def register_listeners(self) -> None:
        self.app.event("message")(self.on_message_event)  # type: ignore[attr-defined]
        self.app.event("app_mention")(self.on_app_mention)  # type: ignore[attr-defined]
