"""Slack: events in as `Message`s, answers out through `BaseClient`."""

from slack_client.base import SlackBot, SlackStartError

__all__ = ["SlackBot", "SlackStartError"]
