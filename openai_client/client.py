"""`AsyncOpenAI` behind one streaming method, with SDK errors turned into `ModelError`."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any, AsyncIterator

import openai
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient

from openai_client import chat_completions, responses
from openai_client.events import (
    Completed,
    ErrorKind,
    GeneratedImage,
    ModelError,
    ModelRequest,
    StreamEvent,
)

log = logging.getLogger(__name__)

# The calls that answer people (what the concurrency limit is about).
MODEL_CALL_PATHS = ("/responses", "/chat/completions")


def classify(exc: openai.OpenAIError) -> ModelError:
    """Map an SDK exception to what it means for the person waiting."""
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "message", None) or str(exc)
    # APITimeoutError subclasses APIConnectionError: test it first.
    if isinstance(exc, openai.APITimeoutError) and _really_timed_out(exc):
        kind = ErrorKind.TIMEOUT
    elif isinstance(exc, openai.APIConnectionError):
        kind = ErrorKind.CONNECTION
    elif isinstance(exc, openai.RateLimitError):
        code = getattr(exc, "code", None)
        kind = ErrorKind.AUTH if code == "insufficient_quota" else ErrorKind.RATE_LIMIT
    elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        kind = ErrorKind.AUTH
    elif isinstance(exc, openai.BadRequestError):
        code = getattr(exc, "code", None) or ""
        is_length = "context_length" in code or "context length" in detail.lower()
        kind = ErrorKind.CONTEXT_LENGTH if is_length else ErrorKind.BAD_REQUEST
    elif isinstance(exc, openai.NotFoundError):
        kind = ErrorKind.BAD_REQUEST
    elif isinstance(exc, openai.APIStatusError) and (status or 0) >= 500:
        kind = ErrorKind.SERVER
    else:
        kind = ErrorKind.FAILED
    return ModelError(kind, detail, status, retry_after=_retry_after(exc))


def _really_timed_out(exc: openai.APITimeoutError) -> bool:
    """False for a connection that failed at once, which the aiohttp transport also reports as
    a connect timeout (refused, no such host, the server hung up): what it wraps says which.
    A person is then told the server could not be reached, not that it was slow."""
    transport_error = exc.__cause__
    cause = transport_error.__cause__ if transport_error is not None else None
    return cause is None or isinstance(cause, TimeoutError)


def _retry_after(exc: openai.OpenAIError) -> float | None:
    """The seconds a refusal asks to wait (`retry-after-ms` or `retry-after`), if it says."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError, TypeError):
            continue
    return None


def _untransformed(params: dict[str, Any], bulky: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(typed parameters, `extra_body`): the `bulky` fields (a chat's tools) go as they are.

    They are already in the wire format (built by chat_completions.py), and the SDK's parameter
    transform walks every nested dict of them against its TypedDicts: with a tool's JSON schema
    that is ~2.5 ms of the loop's CPU per request. `extra_body` is sent unchanged, merged into
    the same JSON body. (Responses requests skip the typed method altogether: `client.post`.)
    """
    body = {name: params.pop(name) for name in bulky if name in params}
    return params, body


def _size(count: int) -> str:
    """Bytes as people read them: 20 kB, 3.4 MB."""
    return f"{count / 1048576:.1f} MB" if count >= 1048576 else f"{max(count // 1024, 1)} kB"


def _tokens(response: Any, name: str) -> int:
    """A usage count from any API response; servers that report none count as 0."""
    return int(getattr(getattr(response, "usage", None), name, 0) or 0)


class OpenAIClient:
    """Streams answers from the Responses API, or from Chat Completions (`api_style`)."""

    def __init__(
        self, api_key: str, base_url: str | None, timeout: float, max_retries: int,
        api_style: str = "responses", on_response: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> None:
        # "chat_completions": /v1/chat/completions only (Ollama, vLLM, LM Studio, Azure
        # deployments), translated in chat_completions.py; anything else: the Responses API.
        self.api_style = api_style
        # The SDK timeout is a backstop for a stalled socket; asyncio.wait_for in the processor
        # is what bounds a whole answer. `on_response` sees every model call's HTTP answer,
        # retries included (status and headers: the concurrency limit follows them).
        self._on_response = on_response
        # The SDK's aiohttp transport (its `openai[aiohttp]` option; aiohttp is here for Slack
        # anyway): httpx2's own pool walks every connection on each request and each close, and
        # with hundreds of answers in flight that was most of the loop's CPU before a model call
        # (300 people at once: CPU per answer 10.4 → 8.2 ms, the last to reach the model 0.3 s
        # sooner). Retries, timeouts, errors, proxies from the environment and the event hook
        # stay the SDK's and httpx2's.
        http_client = DefaultAioHttpClient(event_hooks={"response": [self._observe]})
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
            http_client=http_client,
        )

    async def _observe(self, response: Any) -> None:
        if self._on_response is not None and response.request.url.path.endswith(MODEL_CALL_PATHS):
            self._on_response(response.status_code, response.headers)

    @property
    def chat_style(self) -> bool:
        return self.api_style == "chat_completions"

    async def close(self) -> None:
        await self._client.close()

    async def container_file(self, container_id: str, file_id: str, max_bytes: int) -> bytes:
        """A file the code interpreter wrote; refused (FAILED) if it is over `max_bytes`."""
        try:
            response = await self._client.containers.files.content.retrieve(file_id, container_id=container_id)
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        data = response.content
        if len(data) > max_bytes:
            raise ModelError(ErrorKind.FAILED, f"it is {_size(len(data))}, over the {_size(max_bytes)} limit")
        return data

    async def model_ids(self) -> list[str]:
        """Every model id the server lists (`GET /v1/models`)."""
        try:
            return [model.id async for model in self._client.models.list()]
        except openai.OpenAIError as exc:
            raise classify(exc) from exc

    async def upload_file(self, name: str, data: bytes, mimetype: str, lifetime_seconds: int) -> str:
        """A file for the hosted tools (`/v1/files`, purpose `user_data`), its id; the provider
        deletes it after `lifetime_seconds`, so people's data does not stay there."""
        try:
            uploaded = await self._client.files.create(
                file=(name, data, mimetype), purpose="user_data",
                expires_after={"anchor": "created_at", "seconds": lifetime_seconds},
            )
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        return uploaded.id

    async def transcribe(
        self, name: str, data: bytes, mimetype: str, model: str
    ) -> tuple[str, tuple[int, int] | None]:
        """The words spoken in an audio file (`/v1/audio/transcriptions`, JSON), and the
        (input, output) tokens the server reports for it: None when it reports none, or bills by
        duration as whisper-1 does. `name` must end in a format the server knows (`.m4a`, …)."""
        try:
            result = await self._client.audio.transcriptions.create(
                file=(name, data, mimetype), model=model, response_format="json",
            )
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        text = getattr(result, "text", None)
        if not isinstance(text, str):  # a server whose JSON is not a transcription
            raise ModelError(ErrorKind.FAILED, "the transcription server's answer has no text")
        usage = getattr(result, "usage", None)
        if getattr(usage, "type", None) != "tokens":
            return text, None
        return text, (_tokens(result, "input_tokens"), _tokens(result, "output_tokens"))

    async def generate_image(self, model: str, prompt: str, size: str, quality: str) -> GeneratedImage:
        try:
            result = await self._client.images.generate(
                model=model, prompt=prompt, size=size, quality=quality, n=1,  # type: ignore[call-overload]  # validated by settings.py
            )
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        return self._image_bytes(result)

    async def edit_image(
        self, model: str, image: tuple[str, bytes, str], prompt: str, size: str, quality: str
    ) -> GeneratedImage:
        try:
            result = await self._client.images.edit(
                model=model, image=image, prompt=prompt, size=size, quality=quality, n=1,  # type: ignore[call-overload]  # validated by settings.py
            )
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        return self._image_bytes(result)

    @staticmethod
    def _image_bytes(result: Any) -> GeneratedImage:
        # GPT image models always answer in base64 (response_format is not sent to them).
        if not result.data or not result.data[0].b64_json:
            raise ModelError(ErrorKind.FAILED, "the image model returned no image")
        return GeneratedImage(
            base64.b64decode(result.data[0].b64_json), _tokens(result, "input_tokens"), _tokens(result, "output_tokens")
        )

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """The answer as events, whichever API style the server speaks."""
        return self._stream_chat(request) if self.chat_style else self._stream_responses(request)

    async def _stream_chat(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        reader = chat_completions.ChunkReader()
        try:
            # `messages` stays typed: the SDK insists on it (and a chat's messages are flat).
            params, body = _untransformed(chat_completions.request_params(request), ("tools",))
            stream = await self._client.chat.completions.create(**params, extra_body=body)
            async with stream:
                async for chunk in stream:
                    for event in reader.read(chunk):
                        yield event
                        if isinstance(event, Completed):
                            return
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        completed = reader.end()  # a server that sent no usage chunk
        if completed is None:
            raise ModelError(ErrorKind.CONNECTION, "the answer stream ended before it was complete")
        yield completed

    async def _stream_responses(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        reader = responses.EventReader()
        try:
            # The events as the API's JSON (`AsyncStream[object]`), not the SDK's models: see
            # `responses.EventReader`. The body goes as built (no parameter transform either).
            stream = await self._client.post(
                "/responses", body=responses.request_params(request), cast_to=object, stream=True,
                stream_cls=AsyncStream[object],
            )
            async with stream:
                async for event in stream:
                    if not isinstance(event, dict):
                        continue  # not an event of the Responses API (a keep-alive comment, say)
                    for converted in reader.read(event):
                        yield converted
                        if isinstance(converted, Completed):
                            return
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
        raise ModelError(ErrorKind.CONNECTION, "the answer stream ended before it was complete")
