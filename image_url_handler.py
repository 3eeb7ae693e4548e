"""Fetching images from URLs people paste, without letting a URL reach inside our network.

SSRF rules: http/https only, no credentials in the URL; the host is resolved and *every*
address must be public (no loopback, private, link-local/cloud metadata, multicast, reserved);
the connection goes to the address that was checked (a pinned resolver, so DNS cannot change
its answer in between); redirects are followed by hand, at most 3, each hop checked the same
way; only real images (checked by content), with size and time limits. A refused or failed URL
becomes an `ImageUrlError` the person is told about.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

MAX_REDIRECTS = 3
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
# Slack sends links as <https://…> or <https://…|label>; bare URLs are accepted too.
_URL = re.compile(r"<(https?://[^>|\s]+)(?:\|[^>]*)?>|(?<![<|])(https?://[^\s<>]+)")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]


# What the model accepts, recognised by content (a file's name or declared type can lie).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The image type of `data` by its first bytes, or None if it is not one we can send."""
    for signature, mimetype in _SIGNATURES:
        if data.startswith(signature):
            return mimetype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class FetchedImage:
    name: str
    mimetype: str
    data: bytes


class ImageUrlError(Exception):
    """Why an image URL was not used; completes "I couldn't use <url>: …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MAX_LINKS = 4


def image_urls(text: str) -> list[str]:
    """URLs in a message that point at an image file (by path), in order, without repeats."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(1) or match.group(2)
        if urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS) and url not in found:
            found.append(url)
    return found


def is_public(address: Address) -> bool:
    """Only globally routable unicast addresses; IPv4-mapped IPv6 is judged as the IPv4 inside."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_loopback
        or address.is_link_local or address.is_private or address.is_unspecified
    )


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedResolver(AbstractResolver):
    """Answers only for the host we checked, with the addresses we checked."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:  # type: ignore[override]
        if host != self._host:
            raise OSError(f"unexpected host {host}")
        return [
            {"hostname": host, "host": a, "port": port,
             "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
             "proto": 0, "flags": socket.AI_NUMERICHOST}
            for a in self._addresses
        ]

    async def close(self) -> None:
        """Nothing to release: no sockets of its own."""


class ImageFetcher:
    def __init__(
        self,
        max_bytes: int,
        timeout: float = 15.0,
        allowed: Callable[[Address], bool] = is_public,
        resolve: Resolve = system_resolve,
    ) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._allowed = allowed
        self._resolve = resolve

    async def _checked(self, url: str) -> tuple[str, int, list[str]]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageUrlError("only http and https links can be fetched")
        if parts.username or parts.password:
            raise ImageUrlError("links with credentials in them are not fetched")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        try:
            literal: Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self._resolve(host, port)
            except OSError as exc:
                raise ImageUrlError(f"the host {host} could not be found") from exc
        if not addresses or not all(self._allowed(ipaddress.ip_address(a)) for a in addresses):
            raise ImageUrlError(f"{host} is not a public internet address")
        return host, port, addresses

    async def fetch(self, url: str) -> FetchedImage:
        try:
            return await asyncio.wait_for(self._follow(url), self._timeout)
        except TimeoutError as exc:
            raise ImageUrlError(f"it took longer than {self._timeout:g} seconds") from exc

    async def _follow(self, url: str) -> FetchedImage:
        for _ in range(MAX_REDIRECTS + 1):
            host, _, addresses = await self._checked(url)
            connector = aiohttp.TCPConnector(resolver=_PinnedResolver(host, addresses), use_dns_cache=False)
            try:
                async with aiohttp.ClientSession(connector=connector) as session:
                    async with session.get(url, allow_redirects=False) as response:
                        if response.status in (301, 302, 303, 307, 308):
                            location = response.headers.get("Location")
                            if not location:
                                raise ImageUrlError("it redirects nowhere")
                            url = urljoin(url, location)
                            continue
                        if response.status != 200:
                            raise ImageUrlError(f"the server answered {response.status}")
                        if not response.headers.get("Content-Type", "").startswith("image/"):
                            raise ImageUrlError("it is not an image")
                        data = await self._read(response)
            except aiohttp.ClientError as exc:
                raise ImageUrlError("the server could not be reached") from exc
            mimetype = sniff_image(data)
            if mimetype is None:
                raise ImageUrlError("it is not a PNG, JPEG, GIF or WebP image")
            name = urlsplit(url).path.rsplit("/", 1)[-1] or "image"
            return FetchedImage(name, mimetype, data)
        raise ImageUrlError(f"it redirects more than {MAX_REDIRECTS} times")

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self._max_bytes:
            raise ImageUrlError(f"it is larger than {self._max_bytes // 1048576} MB")
        data = bytearray()
        async for block in response.content.iter_chunked(64 * 1024):
            data.extend(block)
            if len(data) > self._max_bytes:
                raise ImageUrlError(f"it is larger than {self._max_bytes // 1048576} MB")
        return bytes(data)
