"""Contact sheets: all frames of a scene in one picture, cells numbered row by row.

Providers bill each picture with a fixed overhead plus its area, so one sheet of eight small
cells usually costs far fewer tokens than eight separate frames, at some loss of detail.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, ImageDraw

from ai_tagger.media import pixels


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns for ``count`` cells, as square as possible, wider than tall."""
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    return rows, cols


def _opened(frame: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(frame))
    width, height = image.size
    pixels.check(width, height, what="a frame")
    return image


def contact_sheet(frames: Sequence[bytes], *, max_side: int, quality: int = 85) -> tuple[bytes, tuple[int, int]]:
    """One JPEG holding every frame; returns it with its (rows, cols)."""
    images = [_opened(frame).convert("RGB") for frame in frames]
    rows, cols = grid_shape(len(images))
    cell_w = max(image.width for image in images)
    cell_h = max(image.height for image in images)
    scale = min(1.0, max_side / (cols * cell_w), max_side / (rows * cell_h))
    cell_w, cell_h = max(1, int(cell_w * scale)), max(1, int(cell_h * scale))
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for number, image in enumerate(images, 1):
        image.thumbnail((cell_w, cell_h))
        x, y = ((number - 1) % cols) * cell_w, ((number - 1) // cols) * cell_h
        sheet.paste(image, (x + (cell_w - image.width) // 2, y + (cell_h - image.height) // 2))
        draw.rectangle((x, y, x + 13 + 6 * len(str(number)), y + 13), fill=(0, 0, 0))
        draw.text((x + 3, y + 1), str(number), fill=(255, 255, 255))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=quality)
    return out.getvalue(), (rows, cols)
