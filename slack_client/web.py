"""The Web API client every Slack call of the bot goes through.

One place decides what every post carries: no text is parsed into mentions beyond the control
sequences the bot built (`parse=none`, `link_names=false`, for edits too), and link and media
previews are off unless
`SLACK_UNFURL=true`, so a URL in an answer (or one a prompt-injected page slipped into it, with
data in its query string) is never fetched by Slack without a click. The placeholder is a post
too, so an answer edited into it later is not previewed either.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse


class SlackWebClient(AsyncWebClient):
    def __init__(self, *args: Any, unfurl: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unfurl = unfurl

    async def chat_postMessage(self, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        kwargs.setdefault("unfurl_links", self.unfurl)
        kwargs.setdefault("unfurl_media", self.unfurl)
        kwargs.setdefault("parse", "none")
        kwargs.setdefault("link_names", False)
        return await super().chat_postMessage(**kwargs)

    async def chat_update(self, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        # chat.update parses "client"-style by default (a typed "@channel" could become a
        # mention); "none" leaves only the control sequences the bot built itself.
        kwargs.setdefault("parse", "none")
        kwargs.setdefault("link_names", False)
        return await super().chat_update(**kwargs)
