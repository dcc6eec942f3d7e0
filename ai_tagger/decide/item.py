"""One item's decision over every analyzer's finding: pure, deterministic, nothing written.

Everything it depends on is an input (:class:`Inputs`): the policy (settings, rules, learned
thresholds), the vocabulary, what the item holds now and the user's rejections on it (read
from the journal before deciding). Each kind of finding has its piece: tags
(:func:`~ai_tagger.decide.decision.decide`), performers, details. A new piece is a function
``(findings, inputs) -> part`` called from :func:`decide_item` and a field of :class:`ItemDecision`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum

from ai_tagger.analyze.base import DescriptionFinding, Findings, PerformerFinding
from ai_tagger.analyze.gateway.base import TagAnswer
from ai_tagger.decide.decision import APPLY, BELOW, REJECTED, REVIEW, Decision, Policy, Verdict, decide
from ai_tagger.decide.rules import Rules
from ai_tagger.stash.names import key
from ai_tagger.stash.vocabulary import Vocabulary

ON_ITEM = "on the item"
"""A review suggestion the item already has: not pending any more."""
NEW_TAG = "new:"
"""A rejected suggestion for a tag that does not exist yet is kept under its name's key."""
PERFORMER = "performer:"
"""A rejected performer is kept under ``performer:<id>`` (tag ids are bare, so the two never mix)."""
DESCRIPTION = "details"
"""The rejection key of the plugin's description on an item: the user changed or cleared it."""


class SuggestionKind(str, Enum):
    """What a review suggestion proposes (``items.review`` entries carry it as ``kind``)."""

    TAG = "tag"
    PERFORMER = "performer"
    DESCRIPTION = "description"

    def __str__(self) -> str:
        return self.value


def rejection_keys(verdict: Verdict) -> set[str]:
    """What a rejection of this tag suggestion is stored under: its tag's id, and its name's key."""
    keys = {NEW_TAG + key(verdict.label), NEW_TAG + key(verdict.name)}
    return keys | ({verdict.tag.id} if verdict.tag is not None else set())


@dataclass(frozen=True)
class Inputs:
    """What a decision depends on besides the findings; gathered before it, never written by it."""

    policy: Policy
    vocabulary: Vocabulary
    current_tags: frozenset[str] = frozenset()
    current_performers: frozenset[str] = frozenset()
    details: str | None = None
    """The item's description in Stash now."""
    rejected: frozenset[str] = frozenset()
    """Rejection keys on the item: tag ids, ``new:`` name keys, ``performer:<id>``, ``details``."""


@dataclass(frozen=True)
class PerformerVerdict:
    performer_id: str
    name: str
    confidence: float
    outcome: str
    rule: str | None = None
    frames: tuple[int, ...] = ()

    @property
    def applied(self) -> bool:
        return self.outcome == APPLY

    def describe(self) -> dict[str, object]:
        return {
            "performer": self.name,
            "performer_id": self.performer_id,
            "confidence": round(self.confidence, 3),
            "frames": list(self.frames),
            "outcome": self.outcome,
            "rule": self.rule,
        }


@dataclass
class ItemDecision:
    tags: Decision
    performers: list[PerformerVerdict] = field(default_factory=list)
    details: str | None = None
    """The description to write: only where the item's details are empty and it was not rejected."""
    description: str | None = None
    """What the model described, written or not (a preview shows it)."""

    @property
    def review(self) -> bool:
        """Anything left for the user to confirm (the item gets ``AI_Review``)."""
        return bool(self.tags.review) or any(p.outcome == REVIEW for p in self.performers)


def decide_tags(answer: TagAnswer | None, inputs: Inputs) -> Decision:
    """The policy's tag verdicts, less what the user removed from this item before."""
    if answer is None:
        return Decision()
    decision = decide(answer.candidates, answer.frame_count, inputs.vocabulary, inputs.policy)
    verdicts = []
    for v in decision.verdicts:
        if (v.applied or v.outcome == REVIEW) and rejection_keys(v) & inputs.rejected:
            v = dataclasses.replace(v, outcome=REJECTED, rule="removed by the user from this item")
        elif v.outcome == REVIEW and v.tag is not None and v.tag.id in inputs.current_tags:
            v = dataclasses.replace(v, outcome=ON_ITEM, rule="the item has this tag (accepted on review)")
        verdicts.append(v)
    return Decision(verdicts)


def decide_performers(finding: PerformerFinding | None, inputs: Inputs) -> list[PerformerVerdict]:
    """Per match: rejected by the user, already on the item, applied, for review, or below threshold.

    A match's confidence is its face score in the ``minFrames``-th best frame (the analyzer's
    :func:`~ai_tagger.analyze.faces.match.per_performer`), so a scene needs the performer that
    well in that many frames; an image needs one. Thresholds are ``performerThreshold`` and
    ``performerReviewConfidence``, not the tag thresholds: a face distance is not a tag score.
    """
    if finding is None:
        return []
    policy = inputs.policy
    apply_at, review_at = policy.performer_threshold, policy.performer_review
    verdicts = []
    for match in sorted(finding.matches, key=lambda m: (-m.confidence, m.name, m.performer_id)):
        if PERFORMER + match.performer_id in inputs.rejected:
            outcome, rule = REJECTED, "removed by the user from this item"
        elif match.performer_id in inputs.current_performers:
            outcome, rule = ON_ITEM, "the item has this performer"
        elif match.confidence >= apply_at:
            outcome, rule = APPLY, f"performerThreshold: {apply_at * 100:g}%"
        elif review_at is not None and match.confidence >= review_at:
            outcome, rule = REVIEW, f"performerReviewConfidence: {review_at * 100:g}%"
        else:
            outcome, rule = BELOW, f"performerThreshold: {apply_at * 100:g}%"
        verdicts.append(PerformerVerdict(match.performer_id, match.name, match.confidence, outcome, rule, match.frames))
    return verdicts


def decide_details(finding: DescriptionFinding | None, inputs: Inputs) -> str | None:
    """The description to write: never over the user's text, never again once they changed ours."""
    if finding is None or not finding.text.strip():
        return None
    if (inputs.details or "").strip() or DESCRIPTION in inputs.rejected:
        return None
    return finding.text


def decide_item(findings: Findings, inputs: Inputs) -> ItemDecision:
    """The whole item's decision; the same findings and inputs give the same decision."""
    described = findings.get(DescriptionFinding)
    return ItemDecision(
        tags=decide_tags(findings.get(TagAnswer), inputs),
        performers=decide_performers(findings.get(PerformerFinding), inputs),
        details=decide_details(described, inputs),
        description=described.text if described is not None else None,
    )


def rejection_keys_of(name: str, vocabulary: Vocabulary, rules: Rules) -> set[str]:
    """Every key a user's rejection of the tag a candidate ``name`` means may be stored under: the
    tag's id (after the user's synonyms) and the ``new:`` keys of both spellings."""
    found = rules.synonym(name)
    target = found[1] if found else name
    tag = vocabulary.find(target)
    return {NEW_TAG + key(name), NEW_TAG + key(target)} | ({tag.id} if tag is not None else set())
