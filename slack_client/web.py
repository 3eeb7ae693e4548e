"""The Web API client every Slack call of the bot goes through.

One place decides what every post carries: no text is parsed into mentions beyond the control
sequences the bot built (`parse=none`, `link_names=false`, for edits too), and link and media
previews are off unless
`SLACK_UNFURL=true`, so a URL in an answer (or one a prompt-injected page slipped into it, with
data in its query string) is never fetched by Slack without a click. The placeholder is a post
too, so an answer edited into it later is not previewed either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

# (method, error) of a call Slack refused; (method) of a 429 answer, retried or not.
OnError = Callable[[str, str], None]
OnRateLimited = Callable[[str], None]


class RateLimitCounter(AsyncRetryHandler):
    """Sees every answer before the retry handlers after it: counts 429s, retries nothing."""

    def __init__(self, on_rate_limited: OnRateLimited) -> None:
        super().__init__(max_retry_count=1_000_000)
        self._on_rate_limited = on_rate_limited

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            self._on_rate_limited(request.url.rsplit("/", 1)[-1])
        return False


class SlackWebClient(AsyncWebClient):
    """`on_error`: told of every call that ends in an error (after retries), for the metrics;
    `on_rate_limited` is told of every 429 (put first among the retry handlers)."""

    def __init__(
        self, *args: Any, unfurl: bool = False, on_error: OnError | None = None,
        on_rate_limited: OnRateLimited | None = None, **kwargs: Any,
    ) -> None:
        if on_rate_limited is not None:
            kwargs["retry_handlers"] = [RateLimitCounter(on_rate_limited), *(kwargs.get("retry_handlers") or [])]
        super().__init__(*args, **kwargs)
        self.unfurl = unfurl
        self._on_error = on_error

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            if self._on_error is not None:
                error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
                self._on_error(api_method, str(error or exc.response.status_code))
            raise

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
