"""Normalisation, vocabulary lookup and the decision step: pure functions over data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_tagger.decide.decision import BELOW, CREATE, NOT_EXISTING, OVER_CAP, RESERVED, Policy, decide, score
from ai_tagger.decide.normalize import key
from ai_tagger.decide.vocabulary import Vocabulary
from ai_tagger.gateway.base import Candidate
from ai_tagger.stash.models import Tag

VOCABULARY = [
    Tag(id="1", name="Outdoors", aliases=["outside"]),
    Tag(id="2", name="Dog"),
    Tag(id="3", name="Crimson", aliases=["Red"]),
    Tag(id="4", name="Puppies"),
    Tag(id="5", name="Glass"),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  Outdoors ", "outdoors"),  # surrounding whitespace
        ("OUT-DOORS", "out doors"),  # hyphen folds to a space
        ("out_doors", "out doors"),  # underscore too (booru style)
        ("Ｏｕｔｄｏｏｒｓ", "outdoors"),  # full-width letters, NFKC
        ("Straße", "strasse"),  # case-folding, not lower()
        ("two   spaces", "two spaces"),
    ],
)
def test_key_folds_spelling_variants(name, expected):
    assert key(name) == expected


@pytest.mark.parametrize(
    ("answer", "tag_id"),
    [
        ("outdoors", "1"),  # case
        ("Outside", "1"),  # alias
        ("red", "3"),  # alias, other case
        ("Dogs", "2"),  # plural of an existing singular
        ("Puppy", "4"),  # singular of an existing plural
        ("glasses", "5"),  # -es plural
        ("Cat", None),  # unknown stays unknown
        ("Glas", None),  # no stemming beyond plural endings
    ],
)
def test_vocabulary_finds_existing_tags(answer, tag_id):
    found = Vocabulary(VOCABULARY).find(answer)
    assert (found.id if found else None) == tag_id


def test_names_win_over_another_tags_alias():
    tags = [Tag(id="1", name="Beach", aliases=["Sand"]), Tag(id="2", name="sand")]
    assert Vocabulary(tags).find("Sand").id == "2"


POLICY = Policy(threshold=0.5, max_tags=10, only_existing=False, reserved=frozenset({"ai tagged", "ai"}))


def test_score_earns_confidence_across_frames():
    one_of_twelve = score(Candidate(name="a", confidence=0.9, frames=(3,)), 12)
    ten_of_twelve = score(Candidate(name="b", confidence=0.6, frames=tuple(range(1, 11))), 12)
    assert ten_of_twelve > one_of_twelve
    assert score(Candidate(name="c", confidence=0.7), 12) == 0.7  # no frames given: plain confidence
    assert score(Candidate(name="d", confidence=0.7, frames=(1,)), 1) == 0.7  # a single picture


def test_spellings_of_one_tag_collapse_into_one_verdict():
    candidates = [
        Candidate(name="Dogs", confidence=0.6, frames=(1,)),
        Candidate(name="dog", confidence=0.8, frames=(2,)),
    ]
    [verdict] = decide(candidates, 2, Vocabulary(VOCABULARY), POLICY).verdicts
    assert verdict.tag.name == "Dog" and verdict.frames == (1, 2) and verdict.score == 0.8


def test_outcomes_for_threshold_cap_existing_and_reserved():
    policy = Policy(threshold=0.5, max_tags=1, only_existing=True, reserved=frozenset({"ai tagged"}))
    candidates = [
        Candidate(name="Dog", confidence=0.9),
        Candidate(name="Outdoors", confidence=0.8),
        Candidate(name="Cat", confidence=0.95),
        Candidate(name="AI_Tagged", confidence=0.99),
        Candidate(name="Red", confidence=0.2),
    ]
    outcomes = {v.name: v.outcome for v in decide(candidates, 1, Vocabulary(VOCABULARY), policy).verdicts}
    assert outcomes == {
        "AI_Tagged": RESERVED,
        "Cat": NOT_EXISTING,
        "Dog": "apply",
        "Outdoors": OVER_CAP,
        "Red": BELOW,
    }


def test_unknown_names_are_created_when_allowed():
    [verdict] = decide([Candidate(name="Sunset", confidence=0.7)], 1, Vocabulary(VOCABULARY), POLICY).verdicts
    assert verdict.outcome == CREATE and verdict.label == "Sunset"


candidate_lists = st.lists(
    st.builds(
        Candidate,
        name=st.sampled_from(["Dog", "dogs", "Cat", "Outdoors", "red", "Sunset", "AI_Tagged"]),
        confidence=st.floats(0, 1),
        frames=st.lists(st.integers(1, 6), max_size=6).map(tuple),
    ),
    max_size=12,
)


@given(candidate_lists)
def test_same_input_always_yields_the_same_decision(candidates):
    first = decide(candidates, 6, Vocabulary(VOCABULARY), POLICY)
    second = decide(list(reversed(candidates)), 6, Vocabulary(VOCABULARY), POLICY)
    assert [(v.label, v.outcome) for v in first.verdicts] == [(v.label, v.outcome) for v in second.verdicts]


@given(candidate_lists, st.integers(1, 5))
def test_applied_tags_respect_threshold_cap_and_reserved(candidates, cap):
    policy = Policy(threshold=0.5, max_tags=cap, only_existing=False, reserved=frozenset({"ai tagged"}))
    applied = decide(candidates, 6, Vocabulary(VOCABULARY), policy).applied
    assert len(applied) <= cap
    assert all(v.score >= 0.5 and key(v.label) != "ai tagged" for v in applied)
