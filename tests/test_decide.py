"""Normalisation, vocabulary lookup and the decision step: pure functions over data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_tagger.analyze.gateway.base import Candidate
from ai_tagger.decide.decision import BELOW, CREATE, NOT_EXISTING, OVER_CAP, RESERVED, Policy, decide, score
from ai_tagger.stash.models import Tag, TagRef
from ai_tagger.stash.names import key
from ai_tagger.stash.vocabulary import Vocabulary, prompt_entry

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


def _child(tag_id: str, name: str, *parents: str, uses: int = 0, aliases: tuple[str, ...] = ()) -> Tag:
    return Tag(id=tag_id, name=name, aliases=list(aliases), scene_count=uses, parents=[TagRef(id=p) for p in parents])


BRANCHES = [
    _child("1", "Animals", uses=50),
    _child("2", "Dog", "1", uses=5, aliases=("Doggo", "Hound", "dog")),
    _child("3", "Cat", "1", uses=9),
    _child("4", "Puppy", "2", uses=1),
    _child("5", "Places", uses=99),
    _child("6", "Beach", "5", uses=7),
    _child("7", "Loop", "8"),  # 7 and 8 are each other's parent: walks must stop
    _child("8", "Pool", "7"),
]


@pytest.mark.parametrize(
    ("budget", "parent", "exclude", "expected"),
    [
        (10, None, (), ["Places", "Animals", "Cat", "Beach", "Dog", "Puppy", "Loop", "Pool"]),  # most used, then name
        (2, None, (), ["Places", "Animals"]),  # capped at the budget
        (10, "animals", (), ["Cat", "Dog", "Puppy"]),  # one branch, transitively, without the parent itself
        (10, "Doggo", (), ["Puppy"]),  # the parent may be named by an alias
        (10, "Animals", ("3",), ["Dog", "Puppy"]),  # excluded ids (the plugin's own tags) never appear
        (10, "Loop", (), ["Pool"]),  # a cycle ends
        (10, "Nowhere", (), ["Places", "Animals", "Cat", "Beach", "Dog", "Puppy", "Loop", "Pool"]),  # unknown: all
        (0, None, (), []),  # no budget, no names
    ],
)
def test_prompt_tags_pick_a_branch_by_use(budget, parent, exclude, expected):
    offered = Vocabulary(BRANCHES).prompt_tags(budget, parent=parent, exclude_ids=exclude)
    assert [tag.name for tag in offered] == expected


def test_prompt_entry_carries_aliases_that_differ_from_the_name():
    offered = Vocabulary(BRANCHES).prompt_tags(2, parent="Animals")
    assert [prompt_entry(tag) for tag in offered] == ["Cat", "Dog (aliases: Doggo, Hound)"]


def test_tree_walks_and_re_added_tags_move_in_the_child_index():
    vocabulary = Vocabulary(BRANCHES)
    assert [t.name for t in vocabulary.ancestors("4")] == ["Dog", "Animals"]
    assert [t.name for t in vocabulary.descendants("1")] == ["Dog", "Cat", "Puppy"]
    assert [t.name for t in vocabulary.children_of("1")] == ["Dog", "Cat"]
    vocabulary.add(_child("3", "Cat", "5", uses=9))  # the user moved Cat under Places
    assert [t.name for t in vocabulary.children_of("1")] == ["Dog"]
    assert [t.name for t in vocabulary.children_of("5")] == ["Beach", "Cat"]
    assert vocabulary.ancestors("missing") == [] and vocabulary.descendants("missing") == []


def _unscored(policy: Policy, *extra: Candidate):
    candidates = [Candidate(name="Dog", confidence=None), *extra]
    return {v.name: (v.outcome, v.rule) for v in decide(candidates, 1, Vocabulary(VOCABULARY), policy).verdicts}


def test_unscored_tag_is_not_applied_by_default_and_says_why():
    assert _unscored(POLICY)["Dog"] == ("unscored", "unscored: trustUnscoredTags off")


def test_unscored_tag_goes_to_review_when_a_review_tier_is_set():
    policy = Policy(threshold=0.5, max_tags=10, only_existing=False, review_threshold=0.3, trust_unscored=True)
    assert _unscored(policy)["Dog"] == ("review", "unscored: reviewConfidence set")


def test_trusted_unscored_tag_is_applied_after_every_scored_tag_within_the_cap():
    policy = Policy(threshold=0.5, max_tags=1, only_existing=False, trust_unscored=True)
    assert _unscored(policy, Candidate(name="Cat", confidence=0.9))["Dog"][0] == OVER_CAP
    roomy = Policy(threshold=0.5, max_tags=2, only_existing=False, trust_unscored=True)
    verdict = decide([Candidate(name="Dog", confidence=None)], 1, Vocabulary(VOCABULARY), roomy).verdicts[0]
    assert verdict.applied and verdict.describe()["confidence"] is None and verdict.describe()["score"] is None


def test_a_scored_spelling_speaks_for_an_unscored_one():
    candidates = [Candidate(name="dogs", confidence=None), Candidate(name="Dog", confidence=0.8)]
    [verdict] = decide(candidates, 1, Vocabulary(VOCABULARY), POLICY).verdicts
    assert verdict.confidence == 0.8 and verdict.applied


@pytest.mark.parametrize(
    ("given", "read"),
    [(0.85, 0.85), (1, 1.0), (0, 0.0), (85, 0.85), ("85", 0.85), ("85%", 0.85), (100, 1.0), (None, None)],
)
def test_confidence_reads_fractions_and_percentages(given, read):
    assert Candidate(name="a", confidence=given).confidence == read


@pytest.mark.parametrize("given", [1.7, -0.1, 250, 85.5, "150%", "high", True])
def test_confidence_outside_the_rules_is_rejected_not_reinterpreted(given):
    with pytest.raises(ValueError):
        Candidate(name="a", confidence=given)


def test_cached_answers_of_the_earlier_format_still_load():
    stored = {"name": "Dog", "confidence": 0.8, "frames": [1, 2]}
    assert Candidate.model_validate(stored) == Candidate(name="Dog", confidence=0.8, frames=(1, 2))
