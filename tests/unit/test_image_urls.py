"""Which links are image links, and which addresses may never be fetched."""

from __future__ import annotations

import ipaddress

import pytest

from image_url_handler import ImageFetcher, ImageUrlError, image_urls, is_public, sniff_image
from tests.fakes.openai import tiny_png


def test_image_links_are_found_in_slack_text() -> None:
    text = ("see <https://ex.com/a.PNG> and <https://ex.com/b.jpg?size=2|this photo>, "
            "<https://ex.com/page.html>, https://ex.com/c.webp and <https://ex.com/a.PNG> again")
    assert image_urls(text) == ["https://ex.com/a.PNG", "https://ex.com/b.jpg?size=2", "https://ex.com/c.webp"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True), ("2606:4700:4700::1111", True),
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
        ("240.0.0.1", False), ("::1", False), ("fe80::1", False), ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False), ("::ffff:8.8.8.8", True),
        # 6to4 (2002::/16): Python 3.11 and 3.12 call 2002:7f00:1:: global; the IPv4 inside decides.
        ("2002:7f00:1::", False), ("2002:a00:1::", False), ("2002:a9fe:a9fe::1", False),
        ("2002:808:808::1", True),
        # Teredo (2001::/32): server and client IPv4 inside.
        ("2001:0:7f00:1::f7f7:f7f7", False), ("2001:0:808:808::f5ff:fffe", False),
        # NAT64 (64:ff9b::/96): judged by the IPv4 it translates to.
        ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True),
        ("64:ff9b:1::808:808", False),  # local-use NAT64 (RFC 8215): a private translator
        # Site-local (deprecated, still routed inside some networks) and IPv4-compatible.
        ("fec0::1", False), ("feff::1", False), ("::7f00:1", False),
    ],
)
def test_only_public_unicast_addresses_are_allowed(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_images_are_recognised_by_content() -> None:
    assert sniff_image(tiny_png()) == "image/png"
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image(b"<svg xmlns=...>") is None


def test_malformed_links_are_still_image_links() -> None:
    """So the person is told why they cannot be used, rather than nothing (or a crash)."""
    text = "<http://[::1/x.png> and http://ex.com:99999/a.jpg and <http://[::1]:70000/b.gif|b>"
    assert image_urls(text) == ["http://[::1/x.png", "http://ex.com:99999/a.jpg", "http://[::1]:70000/b.gif"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1/x.png", "the link is malformed (Invalid IPv6 URL)"),
        ("http://ex.com:99999/a.png", "the link is malformed (Port out of range 0-65535)"),
        ("http://[::1]:70000/b.png", "the link is malformed (Port out of range 0-65535)"),
        ("http://ex.com:http/a.png", "the link is malformed"),
        ("http://8.8.8.8:22/a.png", "port 22 is not a web port (only 80 and 443 are fetched)"),
        ("https://8.8.8.8:8443/a.png", "port 8443 is not a web port"),
        ("http://8.8.8.8:0/a.png", "port 0 is not a web port"),
        ("http://[2002:7f00:1::]/a.png", "2002:7f00:1:: is not a public internet address"),
        ("http://[fec0::1]/a.png", "fec0::1 is not a public internet address"),
        ("http://[64:ff9b::7f00:1]/a.png", "64:ff9b::7f00:1 is not a public internet address"),
        ("http://[::ffff:127.0.0.1]/a.png", "::ffff:127.0.0.1 is not a public internet address"),
        ("http://user:pw@8.8.8.8/a.png", "links with credentials in them are not fetched"),
        ("http://@8.8.8.8/a.png", "links with credentials in them are not fetched"),
    ],
)
async def test_refused_links_say_why_before_any_connection(url: str, reason: str) -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"{url} should be refused without a lookup")

    with pytest.raises(ImageUrlError) as refused:
        await ImageFetcher(max_bytes=1024, resolve=no_dns).fetch(url)
    assert refused.value.reason.startswith(reason)


async def test_a_host_name_the_resolver_cannot_encode_is_malformed_not_a_crash() -> None:
    with pytest.raises(ImageUrlError, match=r"the link is malformed \(the host name a\.\.b is not valid\)"):
        await ImageFetcher(max_bytes=1024).fetch("http://a..b/x.png")  # refused by the IDNA codec, no lookup
