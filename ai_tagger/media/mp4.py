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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Keyframes:
    """A video track's keyframes: the times they are shown, in seconds, and their sample numbers."""

    times: list[float]
    samples: list[int]
    data: bytes = field(repr=False)
    stbl: tuple[int, int] = (0, 0)

    def annexb(self, path: str, chosen: list[int]) -> bytes | None:
        """The ``chosen`` keyframes (indices into :attr:`times`) as one H.264 Annex B stream, parameter
        sets before each; None unless the track is H.264 and every one of them is an IDR picture.

        One ffmpeg decoder then reads exactly these pictures from a pipe: no file opened per frame.
        """
        try:
            return _annexb(self.data, self.stbl, path, [self.samples[i] for i in chosen])
        except (OSError, struct.error, ValueError, IndexError):
            return None


def _annexb(data: bytes, stbl: tuple[int, int], path: str, samples: list[int]) -> bytes | None:
    stsd, stsz, stsc = (_child(data, *stbl, k) for k in (b"stsd", b"stsz", b"stsc"))
    chunks = _child(data, *stbl, b"stco") or _child(data, *stbl, b"co64")
    wide = chunks is not None and _child(data, *stbl, b"stco") is None
    if stsd is None or stsz is None or stsc is None or chunks is None:
        return None
    entry = next(_boxes(data, stsd[0] + 8, stsd[1]), None)
    if entry is None or entry[0] != b"avc1":
        return None
    avcc = _child(data, entry[1] + 78, entry[2], b"avcC")
    if avcc is None:
        return None
    at = avcc[0]
    length_size = (data[at + 4] & 3) + 1
    sets: list[bytes] = []
    at += 5
    for mask in (31, 255):  # the sequence parameter sets (count in 5 bits), then the picture ones
        count, at = data[at] & mask, at + 1
        for _ in range(count):
            size = struct.unpack_from(">H", data, at)[0]
            sets.append(data[at + 2 : at + 2 + size])
            at += 2 + size
    if len(sets) < 2:
        return None
    header = b"".join(b"\0\0\0\1" + unit for unit in sets)
    uniform, total = struct.unpack_from(">II", data, stsz[0] + 4)
    runs = [
        struct.unpack_from(">III", data, stsc[0] + 8 + 12 * i)
        for i in range(struct.unpack_from(">I", data, stsc[0] + 4)[0])
    ]

    def size_of(sample: int) -> int:
        return int(uniform or struct.unpack_from(">I", data, stsz[0] + 12 + 4 * (sample - 1))[0])

    def offset_of(chunk: int) -> int:
        if wide:
            return int(struct.unpack_from(">Q", data, chunks[0] + 8 + 8 * (chunk - 1))[0])
        return int(struct.unpack_from(">I", data, chunks[0] + 8 + 4 * (chunk - 1))[0])

    out = bytearray()
    with open(path, "rb") as handle:
        for sample in samples:
            if not 0 < sample <= total:
                return None
            first_sample = 1
            for index, (first_chunk, per_chunk, _) in enumerate(runs):
                following = runs[index + 1][0] if index + 1 < len(runs) else None
                span = (following - first_chunk) * per_chunk if following is not None else None
                if span is None or sample < first_sample + span:
                    chunk = first_chunk + (sample - first_sample) // per_chunk
                    start = sample - (sample - first_sample) % per_chunk
                    break
                first_sample += span
            else:
                return None
            handle.seek(offset_of(chunk) + sum(size_of(n) for n in range(start, sample)))
            packet = handle.read(size_of(sample))
            units: list[bytes] = []
            first_picture, at = 0, 0
            while at + length_size <= len(packet):
                size = int.from_bytes(packet[at : at + length_size], "big")
                unit = packet[at + length_size : at + length_size + size]
                if not unit or len(unit) != size:
                    return None
                if not first_picture and 1 <= unit[0] & 31 <= 5:
                    first_picture = unit[0] & 31
                units.append(unit)
                at += length_size + size
            if first_picture != 5:  # not an IDR picture: it may need what came before it
                return None
            out += header + b"".join(b"\0\0\0\1" + unit for unit in units)
    return bytes(out)


def _video_keyframes(data: bytes, start: int, end: int, window: float, shown: bool) -> Keyframes | None:
    """The video track's keyframes up to just past ``window`` s, at the times they are ``shown`` (else
    decoded); None if not a video track."""
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
    found = Keyframes([], [], data, stbl)
    sample, clock = 1, 0
    target = next(keys, None)
    for run, delta in deltas:
        while target is not None and target < sample + run:
            found.times.append((clock + (target - sample) * delta) / scale)
            found.samples.append(target)
            if found.times[-1] > window or len(found.times) >= MAX_KEYS:
                return found
            target = next(keys, None)
        if target is None:
            break
        sample, clock = sample + run, clock + run * delta
    shift = _presentation_shift(data, start, end, stbl, found.samples) if shown else None
    if shift:
        found.times[:] = [
            max(0.0, at + (extra - shift[0]) / scale) for at, extra in zip(found.times, shift[1:], strict=True)
        ]
    return found


def _presentation_shift(
    data: bytes, start: int, end: int, stbl: tuple[int, int], samples: list[int]
) -> list[int] | None:
    """``[edit list start, composition offset of each sample...]`` in track units, so that a keyframe's
    time is when it is shown (as ffmpeg reports it), not when it is decoded; None if both are 0."""
    media_time = 0
    edts = _child(data, start, end, b"edts")
    elst = _child(data, *edts, b"elst") if edts else None
    if elst is not None:
        version, count = data[elst[0]], struct.unpack_from(">I", data, elst[0] + 4)[0]
        for index in range(count):
            if version == 1:
                at = struct.unpack_from(">q", data, elst[0] + 8 + 20 * index + 8)[0]
            else:
                at = struct.unpack_from(">i", data, elst[0] + 8 + 12 * index + 4)[0]
            if at >= 0:
                media_time = at
                break
    ctts = _child(data, *stbl, b"ctts")
    offsets = [0] * len(samples)
    if ctts is not None:
        signed = data[ctts[0]] == 1
        runs = struct.unpack_from(">I", data, ctts[0] + 4)[0]
        wanted, first, index = 0, 1, 0
        while index < runs and wanted < len(samples):
            run, offset = struct.unpack_from(">Ii" if signed else ">II", data, ctts[0] + 8 + 8 * index)
            while wanted < len(samples) and samples[wanted] < first + run:
                offsets[wanted] = offset
                wanted += 1
            first, index = first + run, index + 1
    if not media_time and not any(offsets):
        return None
    return [media_time, *offsets]


def _keyframes(path: str, window: float, shown: bool = True) -> Keyframes | None:
    try:
        with open(path, "rb") as handle:
            data = _moov(handle)
        if not data:
            return None
        for kind, start, end in _boxes(data):
            if kind == b"trak":
                found = _video_keyframes(data, start, end, window, shown)
                if found is not None:
                    return found
    except (OSError, struct.error, ValueError):
        return None
    return None


def keyframes(path: str) -> Keyframes | None:
    """Every keyframe of the video track; None if unknown.

    Keyframe sampling picks the keyframe nearest each point from this list: one read of the
    ``moov`` box instead of an ffprobe start per scene.
    """
    found = _keyframes(path, math.inf)
    if not found or not found.times:
        return None
    if any(b < a for a, b in zip(found.times, found.times[1:], strict=False)):  # shown out of decoding order
        pairs = sorted(zip(found.times, found.samples, strict=True))
        found.times[:], found.samples[:] = [at for at, _ in pairs], [sample for _, sample in pairs]
    return found


def keyframe_times(path: str) -> list[float] | None:
    """When each keyframe of the video track is shown, in seconds; None if unknown."""
    found = keyframes(path)
    return found.times if found else None


def keyframe_spacing(path: str, window: float = 60) -> float | None:
    """The widest gap between the video track's keyframes in the first ``window`` s; None if unknown."""
    found = _keyframes(path, window, shown=False)  # gaps: decoding times, as before
    times = found.times if found else []
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(gaps) if gaps else None
