"""Which performers an item gets from the faces seen in its frames: a pure decision, nothing written.

A scene needs the same performer matched in at least ``minFrames`` frames (an image, in its one
picture); a performer scoring at least the threshold is applied, one between the review floor and
the threshold is suggested for review. A performer the item already has (the user's) is neither
applied again nor suggested.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ai_tagger.analyze.faces.index import Match


@dataclass(frozen=True)
class PerformerVerdict:
    performer_id: str
    score: float
    """The best match score over the frames (1 - dlib's face distance)."""
    frames: tuple[int, ...]
    """1-based frames where this performer's face was matched at or above the review floor."""


@dataclass(frozen=True)
class PerformerDecision:
    applied: tuple[PerformerVerdict, ...] = ()
    review: tuple[PerformerVerdict, ...] = ()


def decide_performers(
    frames: Sequence[Sequence[Match]],
    *,
    threshold: float,
    review_floor: float | None,
    min_frames: int,
    kind: str,
    existing: Collection[str] = (),
) -> PerformerDecision:
    """``frames``: each frame's matched faces (already past the ambiguity margin and the lowest floor)."""
    floor = threshold if review_floor is None else min(review_floor, threshold)
    needed = 1 if kind == "image" else max(1, min_frames)
    seen: dict[str, set[int]] = {}
    best: dict[str, float] = {}
    strong: dict[str, set[int]] = {}
    for number, matches in enumerate(frames, 1):
        for match in matches:
            if match.score < floor or match.performer_id in existing:
                continue
            seen.setdefault(match.performer_id, set()).add(number)
            best[match.performer_id] = max(best.get(match.performer_id, 0.0), match.score)
            if match.score >= threshold:
                strong.setdefault(match.performer_id, set()).add(number)
    applied, review = [], []
    for performer_id in sorted(seen, key=lambda p: (-best[p], p)):
        verdict = PerformerVerdict(performer_id, round(best[performer_id], 4), tuple(sorted(seen[performer_id])))
        if len(strong.get(performer_id, ())) >= needed:
            applied.append(verdict)
        elif review_floor is not None and len(seen[performer_id]) >= needed:
            review.append(verdict)
    return PerformerDecision(tuple(applied), tuple(review))
