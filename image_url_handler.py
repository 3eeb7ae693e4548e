"""Fetching images from URLs people paste, without letting a URL reach inside our network.

SSRF rules: http/https only, ports 80 and 443 only, no credentials in the URL; the host is
resolved and *every* address must be public (no loopback, private, link-local/cloud metadata,
site-local, multicast, reserved; an IPv6 address that wraps an IPv4 one, IPv4-mapped, NAT64,
6to4 or Teredo, is judged by the IPv4 inside); the connection goes to the address that was
checked (a pinned resolver, so DNS cannot change its answer in between); redirects are followed
by hand, at most 3, each hop checked the same way; only real, uncompressed images (checked by
content), with size and time limits. A refused, malformed or failed URL becomes an
`ImageUrlError` the person is told about.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Collection
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

MAX_REDIRECTS = 3
# The web's own ports: a link to :22, :6379 or :8080 is a probe of a service, not a picture.
WEB_PORTS = frozenset({80, 443})
# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
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


def _path(url: str) -> str:
    """The path of a URL, also of one `urlsplit` refuses (`http://[::1/x.png`).

    Such a link is still an image link, so that `ImageFetcher` can tell the person why it
    cannot be used instead of the link being silently ignored.
    """
    try:
        return urlsplit(url).path
    except ValueError:
        rest = url.split("://", 1)[-1].split("#", 1)[0].split("?", 1)[0]
        return rest[rest.find("/"):] if "/" in rest else ""


def image_urls(text: str) -> list[str]:
    """URLs in a message that point at an image file (by path), in order, without repeats."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(1) or match.group(2)
        if _path(url).lower().endswith(IMAGE_EXTENSIONS) and url not in found:
            found.append(url)
    return found


def _wrapped_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped, NAT64, 6to4, Teredo (both ends)."""
    if address.ipv4_mapped:
        return (address.ipv4_mapped,)
    if address in NAT64:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour:
        return (address.sixtofour,)
    if address.teredo:
        return address.teredo
    return ()


def _is_public_unicast(address: Address) -> bool:
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_loopback
        or address.is_link_local or address.is_private or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def is_public(address: Address) -> bool:
    """Only globally routable unicast addresses, an IPv6 wrapper judged by the IPv4 inside.

    `is_global` alone is not enough: Python 3.11 and 3.12 call 6to4 `2002:7f00:1::` (loopback
    inside) and site-local `fec0::/10` global. IPv4-mapped and NAT64 addresses are judged only
    by their IPv4 (the wrapper's range is "reserved"); 6to4 and Teredo must pass both ways.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = _wrapped_ipv4(address)
        if not all(_is_public_unicast(a) for a in inner):
            return False
        if address.ipv4_mapped or address in NAT64:
            return True
    return _is_public_unicast(address)


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _join(url: str, location: str) -> str:
    """The redirect target; a Location that cannot be read is the server's fault, told as such."""
    try:
        return urljoin(url, location)
    except ValueError as exc:
        raise ImageUrlError(f"it redirects to a malformed address ({exc})") from exc


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
        ports: Collection[int] = WEB_PORTS,
    ) -> None:
        """`allowed`, `resolve` and `ports` are the policy; tests widen them for loopback servers."""
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._allowed = allowed
        self._resolve = resolve
        self._ports = ports

    async def _checked(self, url: str) -> tuple[str, int, list[str]]:
        """Host, port and the checked addresses to connect to, or why the URL may not be fetched."""
        try:
            parts = urlsplit(url)
            explicit_port = parts.port
        except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", a port "x"
            raise ImageUrlError(f"the link is malformed ({exc})") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageUrlError("only http and https links can be fetched")
        if parts.username is not None or parts.password is not None:
            raise ImageUrlError("links with credentials in them are not fetched")
        port = explicit_port if explicit_port is not None else (443 if parts.scheme == "https" else 80)
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
            except UnicodeError as exc:  # the IDNA codec refuses it ("a..b", a label over 63)
                raise ImageUrlError(f"the link is malformed (the host name {host} is not valid)") from exc
        if not addresses or not all(self._allowed(ipaddress.ip_address(a)) for a in addresses):
            raise ImageUrlError(f"{host} is not a public internet address")
        if port not in self._ports:
            raise ImageUrlError(f"port {port} is not a web port (only 80 and 443 are fetched)")
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
                # Identity encoding, and no decompression: the bytes counted against the size
                # limit are the bytes that arrive, and a small gzip cannot unpack into a huge one.
                async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
                    async with session.get(
                        url, allow_redirects=False, headers={"Accept-Encoding": "identity"}
                    ) as response:
                        if response.status in (301, 302, 303, 307, 308):
                            location = response.headers.get("Location")
                            if not location:
                                raise ImageUrlError("it redirects nowhere")
                            url = _join(url, location)
                            continue
                        if response.status != 200:
                            raise ImageUrlError(f"the server answered {response.status}")
                        if not response.headers.get("Content-Type", "").startswith("image/"):
                            raise ImageUrlError("it is not an image")
                        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                            raise ImageUrlError("the server sent it compressed, though I asked for it as is")
                        data = await self._read(response)
            except (aiohttp.InvalidURL, ValueError) as exc:  # urlsplit read it, aiohttp's parser refuses
                raise ImageUrlError(f"the link is malformed ({exc})") from exc
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
