"""Still images with Pillow: orientation applied, RGB, scaled down, JPEG in memory."""

from __future__ import annotations

import io
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from ai_tagger.errors import MediaError

Image.MAX_IMAGE_PIXELS = 200_000_000


def prepare_image(data: bytes | IO[bytes] | str, *, max_side: int, quality: int = 85) -> bytes:
    """Normalise one image (first frame of an animation) into a JPEG the model can read."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(source) as opened:
            opened.seek(0)
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            image = _to_rgb(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"cannot read image: {exc}") from None
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white: a transparent background should not read as black.

    16-bit greyscale (``I;16``, a 16-bit PNG) is scaled to 8 bits: Pillow's own conversion clips
    it, which turns most pictures white.
    """
    if image.mode.startswith("I;16") or image.mode == "I":
        high = image.convert("I").getextrema()[1]
        scale = 1 / 256 if isinstance(high, int) and high > 255 else 1
        return image.convert("I").point(lambda v: v * scale).convert("L").convert("RGB")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
