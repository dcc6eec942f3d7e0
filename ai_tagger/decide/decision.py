"""From a model's candidates to the tags an item gets: a pure, deterministic step.

An item's score for a tag combines how sure the model is with how much of the item shows it:
``score = confidence * sqrt(frames showing the tag / frames sent)``. When the model does not say
which frames show a tag (or only one picture was sent) the score is the confidence.

Opt-in candidates (names a provider reports only on request) that the allow list does not name
are held back first. Per candidate, in this order: the user's synonyms rename it, spellings of
one tag merge, then reserved names, the block list, the allow list, the minimum frame count,
the tag's own threshold (else ``minConfidence``) with the review tier below it,
``onlyExistingTags`` and the cap decide.
A candidate the model named without a confidence (unscored) has no score to compare: it goes to
review when a review tier is set, else it is applied only with ``trustUnscoredTags``, after
every scored tag.
Applied existing tags may then bring their ancestors (``add_parents``). Every verdict carries
the rule text that shaped it, so a preview explains itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ai_tagger.analyze.gateway.base import Candidate
from ai_tagger.decide.rules import Rules
from ai_tagger.settings import STATUS_TAGS, Settings
from ai_tagger.stash.models import Tag
from ai_tagger.stash.names import key
from ai_tagger.stash.vocabulary import Vocabulary

APPLY = "apply"
CREATE = "create"
BELOW = "below threshold"
OVER_CAP = "over cap"
NOT_EXISTING = "no such tag"
RESERVED = "reserved name"
REVIEW = "review"
BLOCKED = "blocked"
NOT_ALLOWED = "not allowed"
TOO_FEW_FRAMES = "too few frames"
PARENT = "parent"
UNSCORED = "unscored"
REJECTED = "rejected by user"

APPLIED = frozenset({APPLY, CREATE, PARENT})


@dataclass(frozen=True)
class Policy:
    """The settings a decision depends on, as plain values (thresholds as 0..1 fractions)."""

    threshold: float
    max_tags: int
    only_existing: bool
    reserved: frozenset[str] = frozenset()
    review_threshold: float | None = None
    min_frames: int = 1
    rules: Rules = field(default_factory=Rules)
    trust_unscored: bool = False
    learned: Mapping[str, float] = field(default_factory=dict, hash=False)
    """Thresholds the user's rejections raised, by tag id (``learnThresholds``); never lowers one."""
    performer_threshold: float = 0.5
    """``performerThreshold``: a performer is added from this face match score (1 - dlib's distance)."""
    performer_review: float | None = None
    """``performerReviewConfidence``: matches from here up to the threshold are suggested for review."""

    @classmethod
    def from_settings(
        cls, settings: Settings, rules: Rules | None = None, learned: Mapping[str, float] | None = None
    ) -> Policy:
        """The policy the user's settings ask for; the plugin's own tag names are reserved."""
        own = (*STATUS_TAGS, settings.created_tag_parent)
        return cls(
            threshold=settings.threshold,
            max_tags=settings.max_tags_per_item,
            only_existing=settings.only_existing_tags,
            reserved=frozenset(key(name) for name in own),
            review_threshold=settings.review_threshold,
            min_frames=settings.min_frames,
            rules=rules or Rules(),
            trust_unscored=settings.trust_unscored_tags,
            learned=dict(learned or {}) if settings.learn_thresholds else {},
            performer_threshold=settings.performer_match,
            performer_review=settings.performer_review,
        )


def percent(fraction: float | None) -> str:
    """A 0..1 score or confidence as people read it next to the thresholds: ``0.823`` -> ``82%``."""
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


@dataclass(frozen=True)
class Verdict:
    name: str
    confidence: float | None
    score: float
    frames: tuple[int, ...]
    tag: Tag | None
    outcome: str
    rule: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome in APPLIED

    @property
    def label(self) -> str:
        """The tag's name as it will appear in Stash."""
        return self.tag.name if self.tag else self.name

    @property
    def scored_label(self) -> str:
        """``Dog 82%``: the name with its score on the percentage scale of every threshold."""
        return f"{self.label} {percent(self.score)}" if self.confidence is not None else f"{self.label} (unscored)"

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tag": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
            "score": None if self.confidence is None else round(self.score, 3),
            "frames": list(self.frames),
            "outcome": self.outcome,
            "rule": self.rule,
        }


@dataclass
class Decision:
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def applied(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.applied]

    @property
    def review(self) -> list[Verdict]:
        """Suggestions close to the threshold, kept for the user to confirm."""
        return [v for v in self.verdicts if v.outcome == REVIEW]


def shown_frames(candidate: Candidate, frame_count: int) -> frozenset[int]:
    """The valid frame numbers the model says show the tag (empty: it did not say usefully)."""
    if frame_count <= 1:
        return frozenset()
    return frozenset(f for f in candidate.frames if 1 <= f <= frame_count)


def score(candidate: Candidate, frame_count: int) -> float:
    """The candidate's score; an unscored candidate ranks below every scored one."""
    if candidate.confidence is None:
        return 0.0
    shown = shown_frames(candidate, frame_count)
    if not shown:
        return candidate.confidence
    return candidate.confidence * math.sqrt(len(shown) / frame_count)


@dataclass(frozen=True)
class _Target:
    """One candidate after synonyms and merging, with the tag it means and the synonyms used."""

    candidate: Candidate
    tag: Tag | None
    notes: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return self.tag.name if self.tag else self.candidate.name


def _rename(candidate: Candidate, rules: Rules) -> tuple[Candidate, str | None]:
    """The candidate under the user's name for it, and the synonym rule that renamed it."""
    found = rules.synonym(candidate.name)
    if found is None:
        return candidate, None
    spelling, target = found
    return candidate.model_copy(update={"name": target}), f"synonym: {spelling} -> {target}"


def _strength(candidate: Candidate) -> tuple[float, str]:
    """Which spelling of a tag speaks for it: the most confident, scored before unscored."""
    return (-1.0 if candidate.confidence is None else candidate.confidence, candidate.name)


def _merge(candidates: Iterable[Candidate], vocabulary: Vocabulary, rules: Rules) -> list[_Target]:
    """One target per tag: synonyms and spellings of the same tag collapse, frames add up."""
    merged: dict[str, _Target] = {}
    for original in candidates:
        if not key(original.name):
            continue
        candidate, note = _rename(original, rules)
        tag = vocabulary.find(candidate.name)
        target = f"id:{tag.id}" if tag else f"new:{key(candidate.name)}"
        notes = frozenset({note} if note else ())
        if target in merged:
            kept = merged[target]
            frames = tuple(sorted(set(kept.candidate.frames) | set(candidate.frames)))
            best = max(kept.candidate, candidate, key=_strength)
            candidate = best.model_copy(update={"frames": frames})
            notes |= kept.notes
        merged[target] = _Target(candidate, tag, notes)
    return list(merged.values())


def _names(label: str, tag: Tag | None) -> list[str]:
    """Every name a rule may use for a tag: its label first, then its aliases."""
    return [label, *tag.aliases] if tag else [label]


def _gate(label: str, tag: Tag | None, policy: Policy) -> tuple[str | None, str | None]:
    """The rules that hold whatever the score: reserved names, block list, allow list."""
    if key(label) in policy.reserved:
        return RESERVED, "the plugin's own tag"
    names = _names(label, tag)
    pattern = policy.rules.blocked_by(names)
    if pattern is not None:
        return BLOCKED, f"block: {pattern}"
    if not policy.rules.allowed(names):
        return NOT_ALLOWED, "not in allow list"
    return None, None


def _threshold(label: str, tag: Tag | None, policy: Policy) -> tuple[float, str | None]:
    """The tag's own threshold from the rules (by name or alias), else ``minConfidence``; raised if learned."""
    found = policy.rules.threshold_for(_names(label, tag))
    if found is None:
        value, note = policy.threshold, f"minConfidence: {policy.threshold * 100:g}%"
    else:
        name, percent = found
        value, note = percent / 100, f"threshold {name}: {percent:g}%"
    learned = policy.learned.get(tag.id) if tag is not None else None
    if learned is not None and learned > value:
        return learned, f"learned threshold: {learned * 100:g}% (was {note}; the user rejected this tag often)"
    return value, note


def _too_few_frames(candidate: Candidate, frame_count: int, min_frames: int) -> bool:
    """Seen in too few frames, judged only when the model said which frames show it."""
    shown = shown_frames(candidate, frame_count)
    return bool(shown) and len(shown) < min(min_frames, frame_count)


def _judge(value: float, target: _Target, frame_count: int, policy: Policy, room: bool) -> tuple[str, str | None]:
    """The outcome for one scored target and the rule that decided it."""
    tag, label = target.tag, target.label
    outcome, note = _gate(label, tag, policy)
    if outcome is not None:
        return outcome, note
    if _too_few_frames(target.candidate, frame_count, policy.min_frames):
        return TOO_FEW_FRAMES, f"min frames: {min(policy.min_frames, frame_count)}"
    creatable = tag is not None or not policy.only_existing
    if target.candidate.unscored:
        return _judge_unscored(tag, policy, room, creatable)
    threshold, note = _threshold(label, tag, policy)
    if value < threshold:
        review = policy.review_threshold
        if review is not None and value >= review and creatable:
            return REVIEW, _join(note, f"reviewConfidence: {review * 100:g}%")
        return BELOW, note
    if not creatable:
        return NOT_EXISTING, _join(note, "onlyExistingTags")
    if not room:
        return OVER_CAP, _join(note, f"maxTagsPerItem: {policy.max_tags}")
    return (APPLY if tag else CREATE), note


def _judge_unscored(tag: Tag | None, policy: Policy, room: bool, creatable: bool) -> tuple[str, str]:
    """No confidence to hold against a threshold: review if there is a review tier, else trust by setting."""
    if policy.review_threshold is not None and creatable:
        return REVIEW, "unscored: reviewConfidence set"
    if not policy.trust_unscored:
        return UNSCORED, "unscored: trustUnscoredTags off"
    if not creatable:
        return NOT_EXISTING, "unscored: trustUnscoredTags on; onlyExistingTags"
    if not room:
        return OVER_CAP, f"unscored: trustUnscoredTags on; maxTagsPerItem: {policy.max_tags}"
    return (APPLY if tag else CREATE), "unscored: trustUnscoredTags on"


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def _order(verdict: Verdict) -> tuple[float, str, str, str]:
    return (-verdict.score, key(verdict.label), verdict.tag.id if verdict.tag else "", verdict.outcome)


def _with_parents(verdicts: list[Verdict], vocabulary: Vocabulary, policy: Policy) -> list[Verdict]:
    """Add the ancestors of every applied existing tag, outside the cap but inside the block list.

    A parent that already has a verdict of its own (say below threshold) is upgraded in place;
    reserved parents (the plugin's own ``AI`` parent) are skipped silently.
    """
    result = list(verdicts)
    index = {v.tag.id: i for i, v in enumerate(result) if v.tag}
    done = {v.tag.id for v in result if v.tag and v.applied}
    for child in verdicts:
        if child.outcome != APPLY or child.tag is None:
            continue
        for parent in vocabulary.ancestors(child.tag.id):
            if parent.id in done:
                continue
            done.add(parent.id)
            outcome, note = _gate(parent.name, parent, policy)
            at = index.get(parent.id)
            if outcome == RESERVED or (outcome is not None and at is not None):
                continue
            base = child if at is None else result[at]
            name = parent.name if at is None else base.name
            rule = _join(f"parent of {child.label}", note)
            verdict = Verdict(name, base.confidence, base.score, base.frames, parent, outcome or PARENT, rule)
            if at is None:
                index[parent.id] = len(result)
                result.append(verdict)
            else:
                result[at] = verdict
    return result


def _opted_out(candidate: Candidate, rules: Rules) -> bool:
    """An opt-in name (the local model's covered body parts) that the allow list does not name."""
    return candidate.opt_in and rules.names(candidate.name) is None


def _held(candidates: Sequence[Candidate], frame_count: int) -> list[Verdict]:
    verdicts = [
        Verdict(c.name, c.confidence, score(c, frame_count), c.frames, None, NOT_ALLOWED, "opt-in: name it in allow")
        for c in candidates
    ]
    return sorted(verdicts, key=_order)


def decide(candidates: Sequence[Candidate], frame_count: int, vocabulary: Vocabulary, policy: Policy) -> Decision:
    """The verdict on every candidate; the same input gives the same decision in any order."""
    held = [c for c in candidates if _opted_out(c, policy.rules)]
    candidates = [c for c in candidates if not _opted_out(c, policy.rules)]
    scored = sorted(
        ((score(t.candidate, frame_count), t) for t in _merge(candidates, vocabulary, policy.rules)),
        key=lambda row: (-row[0], key(row[1].label), row[1].tag.id if row[1].tag else ""),
    )
    verdicts: list[Verdict] = []
    kept = 0
    for value, target in scored:
        outcome, note = _judge(value, target, frame_count, policy, kept < policy.max_tags)
        kept += outcome in (APPLY, CREATE)
        candidate = target.candidate
        rule = _join(*sorted(target.notes), note)
        verdicts.append(
            Verdict(candidate.name, candidate.confidence, value, candidate.frames, target.tag, outcome, rule)
        )
    if policy.rules.add_parents:
        verdicts = sorted(_with_parents(verdicts, vocabulary, policy), key=_order)
    return Decision(verdicts + _held(held, frame_count))
