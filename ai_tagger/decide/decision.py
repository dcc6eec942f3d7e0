"""From a model's candidates to the tags an item gets: a pure, deterministic step.

An item's score for a tag combines how sure the model is with how much of the item shows it:
``score = confidence * sqrt(frames showing the tag / frames sent)``. When the model does not say
which frames show a tag (or only one picture was sent) the score is the confidence. Scores
are compared with ``minConfidence``; the best ``maxTagsPerItem`` are kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ai_tagger.decide.normalize import key
from ai_tagger.decide.vocabulary import Vocabulary
from ai_tagger.gateway.base import Candidate
from ai_tagger.stash.models import Tag

APPLY = "apply"
CREATE = "create"
BELOW = "below threshold"
OVER_CAP = "over cap"
NOT_EXISTING = "no such tag"
RESERVED = "reserved name"


@dataclass(frozen=True)
class Policy:
    """The settings a decision depends on, as plain values."""

    threshold: float
    max_tags: int
    only_existing: bool
    reserved: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    name: str
    confidence: float
    score: float
    frames: tuple[int, ...]
    tag: Tag | None
    outcome: str

    @property
    def applied(self) -> bool:
        return self.outcome in (APPLY, CREATE)

    @property
    def label(self) -> str:
        """The tag's name as it will appear in Stash."""
        return self.tag.name if self.tag else self.name

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tag": self.label,
            "confidence": round(self.confidence, 3),
            "score": round(self.score, 3),
            "frames": list(self.frames),
            "outcome": self.outcome,
        }


@dataclass
class Decision:
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def applied(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.applied]


def score(candidate: Candidate, frame_count: int) -> float:
    if frame_count <= 1 or not candidate.frames:
        return candidate.confidence
    shown = {f for f in candidate.frames if 1 <= f <= frame_count}
    if not shown:
        return candidate.confidence
    return candidate.confidence * math.sqrt(len(shown) / frame_count)


def _merge(candidates: Iterable[Candidate], vocabulary: Vocabulary) -> list[tuple[Candidate, Tag | None]]:
    """One candidate per target tag: spellings of the same tag collapse, frames add up."""
    merged: dict[str, tuple[Candidate, Tag | None]] = {}
    for candidate in candidates:
        tag = vocabulary.find(candidate.name)
        target = f"id:{tag.id}" if tag else f"new:{key(candidate.name)}"
        if not key(candidate.name):
            continue
        if target in merged:
            kept, _ = merged[target]
            frames = tuple(sorted(set(kept.frames) | set(candidate.frames)))
            best = max(kept, candidate, key=lambda c: (c.confidence, c.name))
            candidate = best.model_copy(update={"frames": frames})
        merged[target] = (candidate, tag)
    return list(merged.values())


def decide(
    candidates: Sequence[Candidate], frame_count: int, vocabulary: Vocabulary, policy: Policy
) -> Decision:
    scored = sorted(
        ((score(c, frame_count), c, tag) for c, tag in _merge(candidates, vocabulary)),
        key=lambda row: (-row[0], key(row[1].name)),
    )
    verdicts: list[Verdict] = []
    kept = 0
    for value, candidate, tag in scored:
        label_key = key(tag.name if tag else candidate.name)
        if label_key in policy.reserved:
            outcome = RESERVED
        elif value < policy.threshold:
            outcome = BELOW
        elif tag is None and policy.only_existing:
            outcome = NOT_EXISTING
        elif kept >= policy.max_tags:
            outcome = OVER_CAP
        else:
            outcome = APPLY if tag else CREATE
            kept += 1
        verdicts.append(Verdict(candidate.name, candidate.confidence, value, candidate.frames, tag, outcome))
    return Decision(verdicts)
