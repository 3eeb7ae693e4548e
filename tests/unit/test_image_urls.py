"""Which links are image links, and which addresses may never be fetched."""

from __future__ import annotations

import ipaddress

import pytest

from image_url_handler import image_urls, is_public, sniff_image
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
    ],
)
def test_only_public_unicast_addresses_are_allowed(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_images_are_recognised_by_content() -> None:
    assert sniff_image(tiny_png()) == "image/png"
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image(b"<svg xmlns=...>") is None
