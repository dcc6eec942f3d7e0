"""One pixel limit for every picture the plugin or the sidecar decodes, checked before decoding.

A 31 KB PNG can declare 16000x16000 pixels: decoded, that is 768 MB of memory and seconds of CPU
(a decompression bomb). Every decode (Pillow for Stash's images and contact sheets, OpenCV in the
local model and the sidecar) reads the picture's declared size from its header first and refuses
it above :data:`MAX_PIXELS`. Standard library only: the sidecar imports it without Pillow.
"""

from __future__ import annotations

import struct

MAX_PIXELS = 200_000_000
"""200 megapixels, the limit the plugin always had: stitched panoramas exceed any camera, and a
200 MP RGB picture is 600 MB decoded; a 16000x16000 bomb (256 MP) is still refused unread."""

_JPEG_SIZE_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_SCAN_LIMIT = 1 << 20
"""Bytes of a JPEG searched for its size marker (EXIF thumbnails and ICC profiles come first)."""


class TooManyPixels(ValueError):
    """A picture declares more pixels than :data:`MAX_PIXELS`; it was not decoded."""


def check(width: int, height: int, what: str = "the picture") -> None:
    """:class:`TooManyPixels` when ``width`` x ``height`` is over the limit."""
    if width * height > MAX_PIXELS:
        raise TooManyPixels(
            f"{what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), over the "
            f"{MAX_PIXELS // 1_000_000} megapixel limit; it was not decoded"
        )


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) a PNG or JPEG header declares (what the plugin sends); None for others.

    Other formats are left to the decoder's own limit: Pillow's ``MAX_IMAGE_PIXELS`` and OpenCV's
    ``OPENCV_IO_MAX_IMAGE_PIXELS``, both set from :data:`MAX_PIXELS`."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG's segments to its start-of-frame marker, which holds the size."""
    position = 2
    end = min(len(data), _JPEG_SCAN_LIMIT)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _JPEG_SIZE_MARKERS and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        if length < 2:
            return None
        position += 2 + length
    return None


def check_data(data: bytes, what: str = "the picture") -> None:
    """:func:`check` on the size the header declares; data whose size cannot be read passes (the
    decoder's own limit then applies)."""
    size = declared_size(data)
    if size is not None:
        check(*size, what=what)
