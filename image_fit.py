"""Shared images shrunk to what one model request may carry: longest side and bytes bounded.

Pure and CPU-bound (Pillow decodes, resizes and re-encodes): call `fit_image` through
`asyncio.to_thread`, never on the event loop. Pillow releases the GIL while it decodes, resizes
and encodes, so a thread is enough; a process (as documents get) would add a start-up per image.
An image that already fits is returned untouched (its bytes are not even decoded).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported on the first image (2 MB of the bot's memory otherwise)
    from PIL import Image

# OpenAI scales a "high detail" image to fit 2048 px anyway: more pixels only cost bytes.
MAX_SIDE = 2048
# One image at most this many bytes after shrinking (and never more than the request's budget).
MAX_IMAGE_BYTES = 4 * 1024 * 1024
# Decoding is skipped above this many pixels: one image must not cost hundreds of MB of memory.
MAX_PIXELS = 40_000_000
# At most this many images are decoded at once, whatever the thread pool's size (memory, cores).
_DECODE_SLOTS = threading.BoundedSemaphore(2)
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
        with _DECODE_SLOTS:
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
