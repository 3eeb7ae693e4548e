"""Shrinking shared images to what one model request may carry: `fit_image` (pure, CPU), and
the sandboxed worker the bot runs it in (`ImageFitter`)."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from image_fit import MAX_PIXELS, MAX_SIDE, ImageFitter, ImageUnusable, fit_image

MB = 1024 * 1024


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    return Image.frombytes(mode, (width, height), os.urandom(width * height * len(mode)))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` (what a decompression bomb looks like)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def test_an_image_within_the_limits_is_passed_on_untouched() -> None:
    data = encoded(Image.new("RGB", (800, 600), "red"), "PNG")
    fitted = fit_image(data, "image/png", 4 * MB)
    assert fitted.data is data and fitted.mimetype == "image/png" and not fitted.shrunk


def test_a_big_photo_becomes_a_jpeg_within_the_bytes_and_the_side() -> None:
    data = encoded(noise(3000, 1500), "PNG")
    fitted = fit_image(data, "image/png", 2 * MB)
    assert fitted.shrunk and fitted.mimetype == "image/jpeg" and len(fitted.data) <= 2 * MB
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert image.size == (MAX_SIDE, MAX_SIDE // 2)


def test_a_large_screenshot_stays_png_when_it_fits() -> None:
    # Flat colours (text, UI): small in bytes, but wider than the model looks at.
    screenshot = Image.new("RGB", (4000, 1000), "white")
    screenshot.paste(Image.new("RGB", (2000, 500), "navy"), (1000, 250))
    fitted = fit_image(encoded(screenshot, "PNG"), "image/png", 4 * MB)
    assert fitted.mimetype == "image/png"
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert image.size == (MAX_SIDE, MAX_SIDE // 4)


def test_transparency_is_flattened_onto_white_for_jpeg() -> None:
    drawing = noise(2100, 600, "RGBA")
    drawing.paste((0, 0, 0, 0), (0, 0, 400, 600))  # a transparent margin (black underneath)
    fitted = fit_image(encoded(drawing, "PNG"), "image/png", 1 * MB)
    assert fitted.mimetype == "image/jpeg" and len(fitted.data) <= 1 * MB
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert min(image.convert("RGB").getpixel((10, 10))) > 240


def test_only_the_first_frame_of_an_animation_is_kept() -> None:
    frames = [noise(2200, 300).convert("P") for _ in range(3)]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    fitted = fit_image(gif, "image/gif", 4 * MB)
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert max(image.size) <= MAX_SIDE and getattr(image, "n_frames", 1) == 1


def test_an_image_that_cannot_shrink_enough_is_refused_with_a_reason() -> None:
    with pytest.raises(ImageUnusable, match="even shrunk to 512 px it is over 0.0 MB"):
        fit_image(encoded(noise(3000, 2000), "JPEG", quality=95), "image/jpeg", 1000)


def test_too_many_pixels_are_refused_before_decoding() -> None:
    side = int(MAX_PIXELS ** 0.5) + 100
    with pytest.raises(ImageUnusable, match=f"it is {side}×{side} pixels"):
        fit_image(png_header_only(side, side), "image/png", 4 * MB)


def test_damaged_images_are_passed_on_when_small_and_refused_when_big() -> None:
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    assert fit_image(broken, "image/png", 4 * MB).data == broken  # the model may still read it
    with pytest.raises(ImageUnusable, match="couldn't read it to shrink it"):
        fit_image(broken + b"\x00" * 2000, "image/png", 1000)
    truncated = encoded(noise(3000, 2000), "PNG")[: 3 * MB]
    with pytest.raises(ImageUnusable, match="damaged"):
        fit_image(truncated, "image/png", 1 * MB)


def test_follow_ups_keep_the_newest_images_that_fit_the_budget() -> None:
    from database import StoredImage
    from message_processor.handlers.vision import newest_within

    def image(name: str, size: int) -> tuple[str, StoredImage]:
        return f"ts-{name}", StoredImage(name, "image/png", b"x" * size)

    thread = [image("old", 30), image("big", 80), image("mid", 60), image("new", 50)]
    kept, left_out = newest_within(thread, 100)
    assert [ts for ts, _ in kept] == ["ts-old", "ts-new"]  # thread order; a smaller older one still fits
    assert [i.name for i in left_out] == ["mid", "big"]


async def test_the_worker_shrinks_a_big_image_and_passes_a_fitting_one_back_as_it_was() -> None:
    fitter = ImageFitter(timeout=30)
    big = encoded(noise(3000, 1500), "PNG")
    fitted = await fitter.fit(big, "image/png", 2 * MB)
    assert fitted.shrunk and fitted.mimetype == "image/jpeg" and len(fitted.data) <= 2 * MB
    with Image.open(io.BytesIO(fitted.data)) as image:
        assert image.size == (MAX_SIDE, MAX_SIDE // 2)

    small = encoded(Image.new("RGB", (800, 600), "red"), "PNG")
    untouched = await fitter.fit(small, "image/png", 4 * MB)
    assert untouched.data is small and not untouched.shrunk  # nothing came back but "unchanged"


async def test_the_worker_says_why_an_image_is_unusable_and_is_killed_at_its_time_limit() -> None:
    side = int(MAX_PIXELS ** 0.5) + 100
    with pytest.raises(ImageUnusable, match=f"it is {side}×{side} pixels"):
        await ImageFitter(timeout=30).fit(png_header_only(side, side), "image/png", 4 * MB)
    truncated = encoded(noise(3000, 2000), "PNG")[: 3 * MB]
    with pytest.raises(ImageUnusable, match="damaged"):
        await ImageFitter(timeout=30).fit(truncated, "image/png", 1 * MB)
    with pytest.raises(ImageUnusable, match="took longer than 0.001 seconds"):
        await ImageFitter(timeout=0.001).fit(encoded(noise(3000, 1500), "PNG"), "image/png", 2 * MB)
