"""Real photographs for the face tests, the demo and the benchmark: scikit-image's astronaut
(Eileen Collins) and cameraman as performers' images, altered copies of them as library items
(mirrored, 60 % of the size, darkened), the cat and the coffee cup as faceless items."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from tests import media

PEOPLE = ("astronaut", "camera")
FACELESS = ("chelsea", "coffee")


def altered(name: str) -> Image.Image:
    """The photo mirrored, shrunk to 60 % and darkened: the same person, not the same picture."""
    image = ImageOps.mirror(media.photo(name).convert("RGB"))
    image = image.resize((round(image.width * 0.6), round(image.height * 0.6)))
    return ImageEnhance.Brightness(image).enhance(0.6)


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()


def photo_jpeg(name: str) -> bytes:
    return jpeg(media.photo(name))


def save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, "JPEG", quality=92)
    return path
