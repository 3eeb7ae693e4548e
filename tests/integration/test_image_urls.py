"""Image links: public images reach the model; inner addresses are never requested."""

from __future__ import annotations

import gzip
import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from image_url_handler import ImageFetcher, ImageUrlError, is_public
from tests.fakes.openai import FakeOpenAI, tiny_png
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies


class Servers:
    """A canary on 127.0.0.1 that must never be hit, and a stand-in public host on 127.0.0.2."""

    def __init__(self) -> None:
        self.canary_hits: list[str] = []
        self.accept_encodings: list[str | None] = []
        self.runners: list[web.AppRunner] = []
        self.canary_port = self.public_port = 0

    async def start(self) -> None:
        canary = web.Application()
        canary.router.add_get("/{tail:.*}", self._canary)
        public = web.Application()
        public.router.add_get("/{name}", self._public)
        self.canary_port = await self._serve(canary, "127.0.0.1")
        self.public_port = await self._serve(public, "127.0.0.2")

    async def _public(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.accept_encodings.append(request.headers.get("Accept-Encoding"))
        if name == "cat.png":
            return web.Response(body=tiny_png(), content_type="image/png")
        if name == "packed.png":  # compressed although identity was asked for
            return web.Response(
                body=gzip.compress(tiny_png()), content_type="image/png", headers={"Content-Encoding": "gzip"}
            )
        if name == "bounce.png":
            raise web.HTTPFound(f"http://127.0.0.1:{self.canary_port}/canary.png")
        if name == "loop.png":
            raise web.HTTPFound("/loop.png")
        return web.Response(text="<html>", content_type="text/html")

    async def _canary(self, request: web.Request) -> web.Response:
        self.canary_hits.append(request.path)
        return web.Response(body=tiny_png(), content_type="image/png")

    async def _serve(self, app: web.Application, host: str) -> int:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        self.runners.append(runner)
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    servers = Servers()
    await servers.start()
    yield servers
    await servers.stop()


async def test_inner_addresses_are_refused_without_a_request(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, servers: Servers
):
    await start_bot()
    port = servers.canary_port
    links = [
        f"http://127.0.0.1:{port}/canary.png",
        f"http://localhost:{port}/canary.png",
        f"http://[::1]:{port}/canary.png",
        "http://169.254.169.254/latest/meta-data/a.png",
        "http://10.0.0.7/internal.png",
        f"ftp://127.0.0.1:{port}/canary.png",
    ]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "look: " + " ".join(f"<{u}>" for u in links))

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=15)

    assert servers.canary_hits == []
    assert text.count("is not a public internet address") == 4
    assert "I look at 4 image links per message at most, so I skipped: http://10.0.0.7/internal.png." in text
    assert text.startswith("You said: Alice: look:")  # the message itself is still answered


async def test_public_images_arrive_and_redirects_are_checked_hop_by_hop(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, servers: Servers
):
    app = await start_bot()

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.2"] if host == "public.example" else []

    # Only the stand-in public host is let through; the canary's address keeps the real policy.
    app.processor.image_fetcher = ImageFetcher(
        max_bytes=1 << 20, allowed=lambda a: is_public(a) or a == ipaddress.ip_address("127.0.0.2"),
        resolve=resolve, ports={servers.public_port},
    )
    base = f"http://public.example:{servers.public_port}"
    ts = await slack.user_says(
        "U0ALICE", "D0ALICE",
        f"<{base}/cat.png> <{base}/bounce.png> <{base}/page.png> <{base}/loop.png>",
    )

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=15)

    [turn] = openai.responses_requests()[0]["input"]
    images = [p for p in turn["content"] if p["type"] == "input_image"]
    assert len(images) == 1 and images[0]["image_url"].startswith("data:image/png;base64,")
    assert servers.canary_hits == []  # the redirect to loopback was refused before connecting
    assert f"{base}/bounce.png: 127.0.0.1 is not a public internet address" in text
    assert f"{base}/page.png: it is not an image" in text
    assert f"{base}/loop.png: it redirects more than 3 times" in text


async def test_images_are_asked_for_uncompressed_and_a_compressed_answer_is_refused(servers: Servers):
    fetcher = ImageFetcher(
        max_bytes=1 << 20, allowed=lambda a: a == ipaddress.ip_address("127.0.0.2"), ports={servers.public_port}
    )
    base = f"http://127.0.0.2:{servers.public_port}"

    image = await fetcher.fetch(f"{base}/cat.png")
    with pytest.raises(ImageUrlError, match="the server sent it compressed"):
        await fetcher.fetch(f"{base}/packed.png")

    assert image.data == tiny_png()
    assert servers.accept_encodings == ["identity", "identity"]


async def test_only_the_web_ports_are_fetched_even_from_an_allowed_address(servers: Servers):
    fetcher = ImageFetcher(max_bytes=1 << 20, allowed=lambda a: True)  # every address, default ports

    with pytest.raises(ImageUrlError, match=f"port {servers.canary_port} is not a web port"):
        await fetcher.fetch(f"http://127.0.0.1:{servers.canary_port}/canary.png")

    assert servers.canary_hits == []


async def test_malformed_links_get_a_reply_that_says_why(slack: FakeSlack, openai: FakeOpenAI, start_bot):
    await start_bot()
    ts = await slack.user_says(
        "U0ALICE", "D0ALICE", "look: <http://[::1/x.png> <http://example.com:99999/a.png> https://[::1]:8o/b.gif"
    )

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=15)

    assert text.startswith("You said: Alice: look:")  # the message itself is still answered
    assert "I couldn't use the image at http://[::1/x.png: the link is malformed (Invalid IPv6 URL)." in text
    assert ("I couldn't use the image at http://example.com:99999/a.png: "
            "the link is malformed (Port out of range 0-65535).") in text
    assert "I couldn't use the image at https://[::1]:8o/b.gif: the link is malformed" in text
