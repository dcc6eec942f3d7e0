"""One scene's dense frames in several requests, and their answers merged back into one.

A model reads a handful of pictures well and hundreds badly (and a request has a size limit),
so dense frames go in requests of at most ``framesPerRequest``. Each answer numbers its frames
from 1; merging shifts them to the scene's own numbering, keeps each name's highest confidence
and the union of its frames, and adds up the cost, so the rest of the run sees one answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ai_tagger.analyze.gateway.base import Candidate, TagAnswer, Usage
from ai_tagger.stash.names import key


def chunks(count: int, size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of consecutive runs of at most ``size`` frames covering ``count`` frames."""
    size = max(1, size)
    return [(start, min(size, count - start)) for start in range(0, count, size)]


def _stronger(a: Candidate, b: Candidate) -> Candidate:
    """The more confident of two readings of a name; a scored one beats an unscored one."""
    rank_a = -1.0 if a.confidence is None else a.confidence
    rank_b = -1.0 if b.confidence is None else b.confidence
    return b if rank_b > rank_a else a


def merge(parts: Sequence[tuple[int, TagAnswer]]) -> TagAnswer:
    """One answer from ``(frame offset, answer)`` pairs, frame numbers shifted by each offset."""
    merged: dict[str, Candidate] = {}
    usage = Usage()
    calls = 0
    notes = []
    for offset, answer in parts:
        usage.add(answer.usage)
        calls += answer.calls
        notes += answer.notes
        for candidate in answer.candidates:
            shifted = candidate.model_copy(update={"frames": tuple(f + offset for f in candidate.frames)})
            name = key(candidate.name)
            kept = merged.get(name)
            if kept is None:
                merged[name] = shifted
                continue
            best = _stronger(kept, shifted)
            merged[name] = best.model_copy(
                update={
                    "frames": tuple(sorted(set(kept.frames) | set(shifted.frames))),
                    "opt_in": kept.opt_in and shifted.opt_in,
                }
            )
    description = next((answer.description for _, answer in parts if answer.description), None)
    return TagAnswer(list(merged.values()), usage, calls=calls, notes=notes, description=description)
