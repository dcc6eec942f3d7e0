"""Keyframe times and spacing of an MP4/MOV file read from its sample tables, without starting ffprobe.

Spread sampling takes the keyframe nearest each point, and dense sampling decodes keyframes
only when they are at most one interval apart. For MP4 and
MOV (most of a Stash library) the answer is in the ``moov`` box: the video track's sync-sample
table (``stss``), its sample durations (``stts``) and time scale (``mdhd``). Reading them costs
a few milliseconds, where an ffprobe start costs about 0.1 s per scene. Anything unexpected
returns None and the caller asks ffprobe.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import BinaryIO

MAX_MOOV = 64 << 20
CONTAINERS = (b"trak", b"mdia", b"minf", b"stbl")
MAX_KEYS = 200_000
"""Keyframes read at most (a 24-hour file with a keyframe every half second)."""


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, payload end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1 and at + 16 <= end:
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < head or at + size > end:
            return
        yield kind, at + head, at + size
        at += size


def _moov(handle: BinaryIO) -> bytes | None:
    """The ``moov`` box's payload, found by walking the top-level boxes."""
    offset = 0
    while True:
        handle.seek(offset)
        head = handle.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1 and len(head) == 16:
            size, header = struct.unpack_from(">Q", head, 8)[0], 16
        if kind == b"moov":
            handle.seek(offset + header)
            return handle.read(min(size - header if size else MAX_MOOV, MAX_MOOV))
        if size < header:
            return None
        offset += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def _video_keyframes(data: bytes, start: int, end: int, window: float) -> list[float] | None:
    """The video track's keyframe times in seconds up to just past ``window``; None if not a video track."""
    mdia = _child(data, start, end, b"mdia")
    if mdia is None:
        return None
    hdlr, mdhd, minf = (_child(data, *mdia, k) for k in (b"hdlr", b"mdhd", b"minf"))
    if hdlr is None or mdhd is None or minf is None or data[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
        return None
    version = data[mdhd[0]]
    scale = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))[0]
    stbl = _child(data, *minf, b"stbl")
    stts = _child(data, *stbl, b"stts") if stbl else None
    if not scale or stbl is None or stts is None:
        return None
    entries = struct.unpack_from(">I", data, stts[0] + 4)[0]
    deltas = [struct.unpack_from(">II", data, stts[0] + 8 + 8 * i) for i in range(entries)]
    stss = _child(data, *stbl, b"stss")
    if stss is None:  # every sample is a keyframe
        keys: Iterator[int] = iter(range(1, sum(run for run, _ in deltas) + 1))
    else:
        count = struct.unpack_from(">I", data, stss[0] + 4)[0]
        keys = (struct.unpack_from(">I", data, stss[0] + 8 + 4 * i)[0] for i in range(min(count, MAX_KEYS)))
    times: list[float] = []
    sample, clock = 1, 0
    target = next(keys, None)
    for run, delta in deltas:
        while target is not None and target < sample + run:
            times.append((clock + (target - sample) * delta) / scale)
            if times[-1] > window or len(times) >= MAX_KEYS:
                return times
            target = next(keys, None)
        if target is None:
            break
        sample, clock = sample + run, clock + run * delta
    return times


def _keyframes(path: str, window: float) -> list[float] | None:
    try:
        with open(path, "rb") as handle:
            data = _moov(handle)
        if not data:
            return None
        for kind, start, end in _boxes(data):
            if kind == b"trak":
                found = _video_keyframes(data, start, end, window)
                if found is not None:
                    return found
    except (OSError, struct.error, ValueError):
        return None
    return None


def keyframe_times(path: str) -> list[float] | None:
    """Every keyframe time of the video track, in seconds (decoding order's clock); None if unknown.

    Keyframe sampling picks the keyframe nearest each point from this list: one read of the
    ``moov`` box instead of an ffprobe start per scene.
    """
    found = _keyframes(path, math.inf)
    return found or None


def keyframe_spacing(path: str, window: float = 60) -> float | None:
    """The widest gap between the video track's keyframes in the first ``window`` s; None if unknown."""
    times = _keyframes(path, window)
    gaps = [b - a for a, b in zip(times or [], (times or [])[1:], strict=False)]
    return max(gaps) if gaps else None
