"""Shared images shrunk to what one model request may carry: longest side and bytes bounded.

`fit_image` is pure and CPU-bound (Pillow reads the header, then decodes, resizes and
re-encodes), and Pillow's decoders are C code reading whatever a stranger shared. So the bot
runs it through `ImageFitter`: in a sandboxed worker process per image (sandbox.py, as documents
get), never on the event loop nor in the bot's own process. That costs a process start (about
0.1 s) per image. An image that already fits comes back untouched (its pixels are not decoded,
and its bytes are not sent back).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sandbox

if TYPE_CHECKING:  # Pillow is imported on the first image (2 MB of the bot's memory otherwise)
    from PIL import Image

# OpenAI scales a "high detail" image to fit 2048 px anyway: more pixels only cost bytes.
MAX_SIDE = 2048
# One image at most this many bytes after shrinking (and never more than the request's budget).
MAX_IMAGE_BYTES = 4 * 1024 * 1024
# Decoding is skipped above this many pixels: one image must not cost hundreds of MB of memory.
MAX_PIXELS = 40_000_000
# At most this many images are shrunk at once (memory, cores).
CONCURRENCY = 2
# A worker's answer bigger than this (a shrunk image in base64) is decoded in a thread.
DECODE_OFF_LOOP_BYTES = 256 * 1024

log = logging.getLogger(__name__)
# Tried in order until the result fits: smaller sides, and JPEG when the original format is too big.
_SIDES = (1.0, 0.5, 0.25)
_JPEG_QUALITY = 82


class ImageUnusable(Exception):
    """An image that cannot be brought within the limits; `reason` completes "I left out X: …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Fitted:
    mimetype: str
    data: bytes
    # Whether it was re-encoded (for the log): False means the original bytes.
    shrunk: bool = False


def _megabytes(size: int) -> str:
    return f"{size / 1048576:.1f} MB"


def _flattened(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency over white (a black background would hide dark drawings)."""
    from PIL import Image

    if image.mode in ("RGB", "L"):
        return image
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _encode(image: Image.Image, kind: str) -> tuple[str, bytes]:
    out = io.BytesIO()
    if kind == "png":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(out, "PNG")
        return "image/png", out.getvalue()
    _flattened(image).save(out, "JPEG", quality=_JPEG_QUALITY)
    return "image/jpeg", out.getvalue()


def fit_image(data: bytes, mimetype: str, max_bytes: int, max_side: int = MAX_SIDE) -> Fitted:
    """The image within `max_bytes` and `max_side` px, or `ImageUnusable` saying why not.

    Photos become JPEG; PNG (screenshots, drawings: sharp edges) stays PNG while it fits.
    Only the first frame of an animation is kept (the model reads still images).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        if len(data) <= max_bytes:
            # Recognised by its signature but not by Pillow: the model may still read it.
            return Fitted(mimetype, data)
        raise ImageUnusable(f"it is {_megabytes(len(data))} and I couldn't read it to shrink it") from exc
    with image:
        width, height = image.size
        if len(data) <= max_bytes and max(width, height) <= max_side:
            return Fitted(mimetype, data)
        if width * height > MAX_PIXELS:
            raise ImageUnusable(f"it is {width}×{height} pixels, too large for me to shrink")
        return _shrink(image, mimetype, max_bytes, max_side)


def _shrink(image: Image.Image, mimetype: str, max_bytes: int, max_side: int) -> Fitted:
    from PIL import Image, ImageOps

    try:
        # JPEG only: decode at 1/2, 1/4 or 1/8 scale when that still covers `max_side`.
        image.draft("RGB", (max_side, max_side))
        frame = ImageOps.exif_transpose(image) or image
        frame.load()
    # Pillow's ways of saying "damaged" vary by format and by what is broken.
    except (OSError, ValueError, SyntaxError, KeyError, IndexError, TypeError) as exc:
        raise ImageUnusable("it is damaged, so I couldn't shrink it") from exc
    first = "png" if mimetype in ("image/png", "image/gif") else "jpeg"
    for scale in _SIDES:
        side = max(1, int(max_side * scale))
        resized = frame.copy()
        resized.thumbnail((side, side), Image.Resampling.LANCZOS)
        for kind in dict.fromkeys((first, "jpeg")):
            fitted_type, fitted = _encode(resized, kind)
            if len(fitted) <= max_bytes:
                return Fitted(fitted_type, fitted, shrunk=True)
    raise ImageUnusable(f"even shrunk to {int(max_side * _SIDES[-1])} px it is over {_megabytes(max_bytes)}")


class ImageFitter:
    """Runs `fit_image` in a sandboxed worker process per image, `CONCURRENCY` at a time."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def fit(self, data: bytes, mimetype: str, max_bytes: int) -> Fitted:
        """The image within `max_bytes` and `MAX_SIDE` px, or `ImageUnusable` saying why not."""
        async with self._slots:
            try:
                done = await sandbox.run(WORKER, [mimetype, str(max_bytes)], data, self._timeout)
            except sandbox.WorkerTimeout:
                raise ImageUnusable(f"it took longer than {self._timeout:g} seconds to shrink") from None
        if len(done.out) > DECODE_OFF_LOOP_BYTES:
            return await asyncio.to_thread(fit_result, data, mimetype, done)
        return fit_result(data, mimetype, done)


def fit_result(original: bytes, mimetype: str, done: sandbox.Finished) -> Fitted:
    """What a finished image worker produced, or the `ImageUnusable` it amounts to."""
    if done.err:
        log.warning("image worker: %s", done.err.decode(errors="replace")[-2000:])
    if done.returncode == sandbox.MEMORY_EXIT:
        raise ImageUnusable("it needs more memory to shrink than I allow for one image")
    try:
        if done.returncode != 0:
            raise ValueError(f"exit status {done.returncode}")
        result = json.loads(done.out)
        if "error" in result:
            raise ImageUnusable(str(result["error"]))
        if result.get("unchanged"):
            return Fitted(mimetype, original)
        return Fitted(str(result["mimetype"]), base64.b64decode(result["data"], validate=True), shrunk=True)
    except (ValueError, KeyError, TypeError) as exc:  # a worker that crashed, or wrote nonsense
        log.warning("image worker failed: %s", exc)
        raise ImageUnusable("it is damaged, so I couldn't shrink it") from exc


def _job(args: list[str], data: bytes) -> dict[str, object]:
    """The worker's job (`sandbox.serve`): arguments mimetype, max bytes; the image."""
    mimetype, max_bytes = args[0], int(args[1])
    try:
        fitted = fit_image(data, mimetype, max_bytes)
    except ImageUnusable as exc:
        return {"error": exc.reason}
    if not fitted.shrunk:
        return {"unchanged": True}
    return {"mimetype": fitted.mimetype, "data": base64.b64encode(fitted.data).decode()}


WORKER = Path(__file__).resolve()

if __name__ == "__main__":
    sandbox.serve(_job)
