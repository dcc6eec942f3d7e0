"""The user's rules file and the decisions it shapes: tables of cases, then properties."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_tagger.analyze.gateway.base import Candidate
from ai_tagger.decide.decision import (
    APPLY,
    BELOW,
    BLOCKED,
    CREATE,
    NOT_ALLOWED,
    NOT_EXISTING,
    OVER_CAP,
    PARENT,
    RESERVED,
    REVIEW,
    TOO_FEW_FRAMES,
    Decision,
    Policy,
    decide,
)
from ai_tagger.decide.rules import Rules, RulesError, load_rules, parse_rules
from ai_tagger.stash.models import Tag, TagRef
from ai_tagger.stash.names import key
from ai_tagger.stash.vocabulary import Vocabulary

REPO = Path(__file__).resolve().parents[1]


def _tag(tag_id: str, name: str, *parents: str, aliases: tuple[str, ...] = ()) -> Tag:
    return Tag(id=tag_id, name=name, aliases=list(aliases), parents=[TagRef(id=p) for p in parents])


TREE = [
    _tag("1", "Animal", "9"),
    _tag("2", "Dog", "1", aliases=("Doggo",)),
    _tag("3", "Cat", "1"),
    _tag("4", "Outdoors"),
    _tag("5", "Beach", "4"),
    _tag("6", "Watermark Logo"),
    _tag("9", "Nature", "1"),  # a cycle: Nature -> Animal -> Nature
    _tag("10", "AI"),
    _tag("11", "Sunset", "10"),
]


NO_RULES = Rules()


def _policy(rules: Rules = NO_RULES, **overrides: object) -> Policy:
    values: dict[str, object] = {
        "threshold": 0.5,
        "max_tags": 10,
        "only_existing": False,
        "reserved": frozenset({"ai tagged", "ai"}),
        "rules": rules,
    }
    values.update(overrides)
    return Policy(**values)  # type: ignore[arg-type]


SETTING_NOTES = ("minConfidence:", "reviewConfidence:", "maxTagsPerItem:", "onlyExistingTags", "the plugin's own tag")


def _rules_only(rule: str | None) -> str | None:
    """The notes that come from the rules file; the settings' own notes are tested on their own."""
    kept = [note for note in (rule or "").split("; ") if note and not note.startswith(SETTING_NOTES)]
    return "; ".join(kept) or None


def _outcomes(decision: Decision) -> dict[str, tuple[str, str | None]]:
    return {v.label: (v.outcome, _rules_only(v.rule)) for v in decision.verdicts}


# --- loading -------------------------------------------------------------------------------

GOOD = """\
synonyms:
  Labrador Retriever: Dog
  Golden Retriever: Dog
  Dog:
    - Lab
    - Puppy Dog
  No: Yes
block:
  - "*watermark*"
  - Text
allow:
  - "*"
thresholds:
  Dog: 80
  Outdoors: 40%
add_parents: true
"""


def test_a_good_file_loads_with_both_synonym_forms(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(GOOD, encoding="utf-8")
    rules = load_rules(path)
    assert rules.synonyms == {
        "Labrador Retriever": "Dog",
        "Golden Retriever": "Dog",
        "Lab": "Dog",
        "Puppy Dog": "Dog",
        "No": "Yes",  # YAML 1.1 would read these as booleans; tag names stay names
    }
    assert rules.block == ("*watermark*", "Text") and rules.allow == ("*",)
    assert rules.thresholds == {"Dog": 80, "Outdoors": 40} and rules.add_parents


def test_the_shipped_example_is_a_working_rules_file():
    rules = load_rules(REPO / "rules.example.yml")
    assert rules.synonym("labrador_retriever") == ("Labrador Retriever", "Dog")
    assert rules.add_parents


@pytest.mark.parametrize(
    "text",
    [
        "",  # an empty file changes nothing
        "# only comments\n",  # so does a file with every line commented out
        "block:\nallow:\nthresholds:\n",  # sections left empty are absent, not errors
    ],
)
def test_empty_rules_are_the_default(text):
    assert parse_rules(text) == Rules()


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("synonyms:\n  Dog: [Lab\n", 3, "invalid YAML"),  # unclosed flow list: YAML's own mark
        ("block:\n  - a\n\tallow: b\n", 3, "invalid YAML"),  # a tab where YAML wants spaces
        ("block: []\nfavourites: [Dog]\n", 2, "unknown key"),  # a section the plugin does not know
        ("thresholds: {Dog: high}\n", 1, "thresholds.Dog"),  # a word where a percentage belongs
        ("thresholds:\n  Cat: 50\n  Dog: high\n", 3, "thresholds.Dog"),  # the bad entry's own line
        ("thresholds:\n  Dog: 101\n", 2, "0 to 100"),  # above 100 %
        ("thresholds:\n  Dog: -5\n", 2, "0 to 100"),  # below 0 %
        ("thresholds:\n  Dog: 80\n  dog: 70\n", 3, "given twice"),  # one tag, two thresholds
        ("thresholds: 80\n", 1, "mapping"),  # a number where a table belongs
        ("block: 5\n", 1, "list"),  # a scalar where a list belongs
        ("block:\n  - a\n  - [b, c]\n", 3, "block.1"),  # a nested list is not a pattern
        ("allow:\n  - ''\n", 2, "tag name"),  # an empty pattern would match nothing useful
        ("synonyms:\n  A: {b: c}\n", 2, "synonyms.A"),  # neither a name nor a list of names
        ("synonyms:\n  Lab: Dog\n  Cat:\n    - Kitty\n    - lab\n", 5, "already maps"),  # one spelling, two tags
        ("synonyms: [Dog]\n", 1, "mapping"),  # a list where a table belongs
        ("add_parents: maybe\n", 1, "add_parents"),  # not a boolean
        ("block: [a]\nblock: [b]\n", 2, "given twice"),  # a section twice: YAML would keep the last silently
        ("- Dog\n- Cat\n", 1, "must be a mapping"),  # a list instead of sections
    ],
)
def test_malformed_rules_name_the_file_and_line(tmp_path, text, line, says):
    path = tmp_path / "rules.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line {line}:"), message
    assert says in message


def test_a_missing_file_is_a_rules_error(tmp_path):
    with pytest.raises(RulesError, match="does not exist"):
        load_rules(tmp_path / "nope.yml")
    assert issubclass(RulesError, ValueError)


# --- decisions with rules ------------------------------------------------------------------

SYNONYMS = Rules(synonyms={"Labrador Retriever": "Dog", "Golden Retriever": "Dog", "Kitty": "Cat"})
BLOCK = Rules(block=("*watermark*", "Cat"))
ALLOW = Rules(allow=("dog", "out*"))
THRESHOLDS = Rules(thresholds={"Dog": 80, "Beach": 30})
PARENTS = Rules(add_parents=True)


@pytest.mark.parametrize(
    ("rules", "overrides", "candidates", "expected"),
    [
        (  # many-to-one: two breeds become one Dog, the best confidence wins, both rules shown
            SYNONYMS,
            {},
            [("Labrador Retriever", 0.7), ("golden retrievers", 0.9)],
            {"Dog": (APPLY, "synonym: Golden Retriever -> Dog; synonym: Labrador Retriever -> Dog")},
        ),
        (  # a synonym to a tag that does not exist yet creates the user's name, not the model's
            Rules(synonyms={"Seaside": "Coast"}),
            {},
            [("seaside", 0.9)],
            {"Coast": (CREATE, "synonym: Seaside -> Coast")},
        ),
        (  # block globs hold on names (case/spacing-insensitive) and on the synonym's target
            BLOCK,
            {},
            [("Watermark_Logo", 0.9), ("cats", 0.9), ("Dog", 0.9)],
            {"Watermark Logo": (BLOCKED, "block: *watermark*"), "Cat": (BLOCKED, "block: Cat"), "Dog": (APPLY, None)},
        ),
        (  # block also matches an alias, so a tag cannot slip through under another name
            Rules(block=("doggo",)),
            {},
            [("Dog", 0.9)],
            {"Dog": (BLOCKED, "block: doggo")},
        ),
        (  # only allowed tags are applied; the rest say why
            ALLOW,
            {},
            [("Dog", 0.9), ("Outdoors", 0.9), ("Cat", 0.9)],
            {"Dog": (APPLY, None), "Outdoors": (APPLY, None), "Cat": (NOT_ALLOWED, "not in allow list")},
        ),
        (  # a per-tag threshold above the global one holds a tag back the global would pass
            THRESHOLDS,
            {},
            [("Dog", 0.7)],
            {"Dog": (BELOW, "threshold Dog: 80%")},
        ),
        (  # a per-tag threshold below the global one lets a shy tag through
            THRESHOLDS,
            {},
            [("Beach", 0.35)],
            {"Beach": (APPLY, "threshold Beach: 30%")},
        ),
        (  # per-tag thresholds are found by alias too
            Rules(thresholds={"doggo": 95}),
            {},
            [("Dog", 0.9)],
            {"Dog": (BELOW, "threshold doggo: 95%")},
        ),
        (  # parents come transitively, through a cycle, without counting against the cap
            PARENTS,
            {"max_tags": 1},
            [("Dog", 0.9), ("Outdoors", 0.8)],
            {
                "Dog": (APPLY, None),
                "Animal": (PARENT, "parent of Dog"),
                "Nature": (PARENT, "parent of Dog"),
                "Outdoors": (OVER_CAP, None),
            },
        ),
        (  # a parent the model also named below threshold is applied once, as a parent
            PARENTS,
            {},
            [("Beach", 0.9), ("Outdoors", 0.2)],
            {"Beach": (APPLY, None), "Outdoors": (PARENT, "parent of Beach")},
        ),
        (  # the block list holds for parents too; the plugin's reserved AI parent is skipped silently
            Rules(add_parents=True, block=("nature",)),
            {},
            [("Dog", 0.9), ("Sunset", 0.9)],
            {
                "Dog": (APPLY, None),
                "Sunset": (APPLY, None),
                "Animal": (PARENT, "parent of Dog"),
                "Nature": (BLOCKED, "parent of Dog; block: nature"),
            },
        ),
        (  # between review and apply thresholds: kept for review, not applied
            Rules(),
            {"review_threshold": 0.3},
            [("Dog", 0.4), ("Cat", 0.2), ("Beach", 0.6)],
            {"Dog": (REVIEW, None), "Cat": (BELOW, None), "Beach": (APPLY, None)},
        ),
        (  # a per-tag threshold widens the review band for that tag
            THRESHOLDS,
            {"review_threshold": 0.3},
            [("Dog", 0.7)],
            {"Dog": (REVIEW, "threshold Dog: 80%")},
        ),
        (  # review never suggests a tag that could not be created anyway: it stays below threshold
            Rules(),
            {"review_threshold": 0.3, "only_existing": True},
            [("Unicorn", 0.4), ("Pegasus", 0.9)],
            {"Unicorn": (BELOW, None), "Pegasus": (NOT_EXISTING, None)},
        ),
        (  # reserved names win over every rule
            Rules(synonyms={"Status": "AI_Tagged"}, thresholds={"AI_Tagged": 0}),
            {},
            [("status", 0.99)],
            {"AI_Tagged": (RESERVED, "synonym: Status -> AI_Tagged")},
        ),
    ],
)
def test_decisions_follow_the_rules(rules, overrides, candidates, expected):
    given_ = [Candidate(name=n, confidence=c) for n, c in candidates]
    decision = decide(given_, 1, Vocabulary(TREE), _policy(rules, **overrides))
    assert _outcomes(decision) == expected


@pytest.mark.parametrize(
    ("frames", "min_frames", "outcome"),
    [
        ((1, 2, 3), 3, APPLY),  # seen in enough frames
        ((1, 2), 3, TOO_FEW_FRAMES),  # seen in too few
        ((1, 1, 2, 9), 3, TOO_FEW_FRAMES),  # repeated and out-of-range frame numbers do not count
        ((), 3, APPLY),  # the model did not say which frames: nothing to hold against it
        ((1, 2, 3, 4), 6, APPLY),  # more frames required than were sent: all of them suffice
    ],
)
def test_min_frames_counts_distinct_valid_frames(frames, min_frames, outcome):
    candidate = Candidate(name="Dog", confidence=1.0, frames=frames)
    frame_count = 4
    [verdict] = decide([candidate], frame_count, Vocabulary(TREE), _policy(min_frames=min_frames)).verdicts
    assert verdict.outcome == outcome


def test_min_frames_does_not_apply_to_a_single_picture():
    candidate = Candidate(name="Dog", confidence=0.9, frames=(1,))
    [verdict] = decide([candidate], 1, Vocabulary(TREE), _policy(min_frames=3)).verdicts
    assert verdict.outcome == APPLY


def test_review_and_describe_expose_the_rule():
    policy = _policy(THRESHOLDS, review_threshold=0.3)
    decision = decide([Candidate(name="Dog", confidence=0.7)], 1, Vocabulary(TREE), policy)
    assert [v.label for v in decision.review] == ["Dog"] and decision.applied == []
    assert decision.verdicts[0].describe()["rule"] == "threshold Dog: 80%; reviewConfidence: 30%"


def test_old_callers_still_work_without_rules():
    policy = Policy(threshold=0.5, max_tags=2, only_existing=False, reserved=frozenset())
    decision = decide([Candidate(name="Sunset", confidence=0.9)], 1, Vocabulary(TREE), policy)
    assert [(v.label, v.outcome, v.rule) for v in decision.verdicts] == [("Sunset", APPLY, "minConfidence: 50%")]
    assert decide([Candidate(name="Cloud", confidence=0.9)], 1, Vocabulary(TREE), policy).applied[0].outcome == CREATE


# --- properties ----------------------------------------------------------------------------

RICH = Rules(
    synonyms={"Labrador Retriever": "Dog", "Kitty": "Cat", "Shore": "Beach"},
    block=("*watermark*", "nature"),
    thresholds={"Dog": 70, "Beach": 30},
    add_parents=True,
)
NAMES = ["Dog", "dogs", "Labrador Retriever", "Kitty", "Cat", "Shore", "Beach", "Outdoors", "Watermark Logo",
         "Sunset", "AI_Tagged", "Animal", "Nature", "Unicorn"]  # fmt: skip

candidate_lists = st.lists(
    st.builds(
        Candidate,
        name=st.sampled_from(NAMES),
        confidence=st.floats(0, 1),
        frames=st.lists(st.integers(1, 6), max_size=6).map(tuple),
    ),
    max_size=14,
)
policies = st.builds(
    _policy,
    rules=st.sampled_from([Rules(), RICH, Rules(allow=("d*", "a*", "o*"), add_parents=True)]),
    max_tags=st.integers(1, 5),
    only_existing=st.booleans(),
    review_threshold=st.one_of(st.none(), st.floats(0, 0.5)),
    min_frames=st.integers(1, 4),
)


def _shape(decision: Decision) -> list[tuple[object, ...]]:
    return [(v.label, v.outcome, v.rule, v.score, v.frames) for v in decision.verdicts]


@given(candidate_lists, policies, st.randoms(use_true_random=False))
def test_same_input_same_decision_in_any_order(candidates, policy, rng):
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    first = decide(candidates, 6, Vocabulary(TREE), policy)
    assert _shape(first) == _shape(decide(candidates, 6, Vocabulary(TREE), policy))
    assert _shape(first) == _shape(decide(shuffled, 6, Vocabulary(TREE), policy))


@given(candidate_lists, policies)
def test_applied_tags_obey_block_cap_and_review(candidates, policy):
    decision = decide(candidates, 6, Vocabulary(TREE), policy)
    applied = decision.applied
    assert not any(policy.rules.blocked_by([v.label, *(v.tag.aliases if v.tag else [])]) for v in applied)
    assert len([v for v in applied if v.outcome != PARENT]) <= policy.max_tags
    assert not any(v.applied for v in decision.review)
    assert len({key(v.label) for v in applied}) == len(applied)  # no tag applied twice
    assert not any(key(v.label) in policy.reserved for v in applied)


# --- scale ---------------------------------------------------------------------------------


def test_a_large_vocabulary_resolves_names_by_dict_lookups():
    """10,000 tags and 100,000 lookups: seconds, not minutes (a sanity check, not a benchmark)."""
    tags = [_tag(str(i), f"Tag {i}", str(i // 10), aliases=(f"alias {i}",)) for i in range(10_000)]
    started = time.perf_counter()
    vocabulary = Vocabulary(tags)
    rng = random.Random(7)
    hits = sum(vocabulary.find(f"TAG_{rng.randrange(20_000)}s") is not None for _ in range(100_000))
    elapsed = time.perf_counter() - started
    assert 40_000 < hits < 60_000
    assert len(vocabulary.prompt_tags(200, parent="Tag 1")) == 200
    print(f"10,000 tags + 100,000 lookups: {elapsed:.2f}s")


@pytest.mark.parametrize(
    "text",
    [
        "mapping:\n  Labrador Retriever: Dog\n",  # "mapping" is what the issue calls synonyms
        "Synonyms:\n  Labrador Retriever: Dog\n",  # section names ignore case
        "block_list: [Text]\nallowlist: ['*']\n",  # booru-style and one-word spellings
        "also-add-parents: true\nper_tag_thresholds:\n  Dog: 80\n",
    ],
)
def test_section_names_accept_common_spellings(text):
    rules = parse_rules(text)
    assert rules != Rules()


def test_settings_that_decide_are_named_in_the_rule():
    """Preview must say why even without a rules file: which setting accepted or rejected a tag."""
    policy = Policy(threshold=0.5, max_tags=1, only_existing=False, review_threshold=0.2, reserved=frozenset({"ai"}))
    candidates = [
        Candidate(name="Dog", confidence=0.9),
        Candidate(name="Cat", confidence=0.8),
        Candidate(name="Sunset", confidence=0.3),
        Candidate(name="Fog", confidence=0.1),
        Candidate(name="AI", confidence=0.95),
    ]
    rules = {v.label: v.rule for v in decide(candidates, 1, Vocabulary(TREE), policy).verdicts}
    assert rules == {
        "AI": "the plugin's own tag",
        "Dog": "minConfidence: 50%",
        "Cat": "minConfidence: 50%; maxTagsPerItem: 1",
        "Sunset": "minConfidence: 50%; reviewConfidence: 20%",
        "Fog": "minConfidence: 50%",
    }
