"""Keyframe spacing of an MP4/MOV file read from its sample tables, without starting ffprobe.

Dense sampling decodes keyframes only when they are at most one interval apart. For MP4 and
MOV (most of a Stash library) the answer is in the ``moov`` box: the video track's sync-sample
table (``stss``), its sample durations (``stts``) and time scale (``mdhd``). Reading them costs
a few milliseconds, where an ffprobe start costs about 0.1 s per scene. Anything unexpected
returns None and the caller asks ffprobe.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

MAX_MOOV = 64 << 20
CONTAINERS = (b"trak", b"mdia", b"minf", b"stbl")


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


def _video_spacing(data: bytes, start: int, end: int, window: float) -> float | None:
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
        return min((d for _, d in deltas), default=0) / scale or None
    count = struct.unpack_from(">I", data, stss[0] + 4)[0]
    keys = [struct.unpack_from(">I", data, stss[0] + 8 + 4 * i)[0] for i in range(min(count, 10_000))]
    times: list[float] = []
    sample, clock, wanted = 1, 0, iter(keys)
    target = next(wanted, None)
    for run, delta in deltas:
        while target is not None and target < sample + run:
            times.append((clock + (target - sample) * delta) / scale)
            if times[-1] > window:
                break
            target = next(wanted, None)
        if target is None or (times and times[-1] > window):
            break
        sample, clock = sample + run, clock + run * delta
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(gaps) if gaps else None


def keyframe_spacing(path: str, window: float = 60) -> float | None:
    """The widest gap between the video track's keyframes in the first ``window`` s; None if unknown."""
    try:
        with open(path, "rb") as handle:
            data = _moov(handle)
        if not data:
            return None
        for kind, start, end in _boxes(data):
            if kind == b"trak":
                found = _video_spacing(data, start, end, window)
                if found is not None:
                    return found
    except (OSError, struct.error, ValueError):
        return None
    return None
