"""The analyzer seam: a new analyzer is one registration, and what it finds goes through the one
decision, the one write per item, the journal, undo and review like tags do.

A test analyzer recognises performers (as issue 21's face analyzer will): registered by name,
switched on by a fixture, run in-process through ``entry.main`` against the bundled Stash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from ai_tagger.analyze.base import (
    AnalyzerContext,
    Findings,
    PerformerFinding,
    PerformerMatch,
    analyzer_names,
    register_analyzer,
)
from ai_tagger.analyze.gateway.base import Candidate, TagAnswer
from ai_tagger.decide.decision import REJECTED, REVIEW, Policy
from ai_tagger.decide.item import ON_ITEM, PERFORMER, Inputs, decide_item
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item
from ai_tagger.stash.vocabulary import Vocabulary
from tests.conftest import PLUGIN_ID
from tests.servers.stash_server import FakeStash
from tests.test_in_process import FakeProvider, images, run, settings


class FakeFaces:
    """Finds ``matches`` in every item, looking at the frames the tag analyzer already extracted."""

    name: ClassVar[str] = "test-faces"
    on: ClassVar[bool] = False
    matches: ClassVar[list[PerformerMatch]] = []
    seen: ClassVar[list[str]] = []

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> PerformerFinding | None:
        media.shots()  # the frames the tag analyzer extracted, shared: not extracted again
        self.seen.append(item.id)
        return PerformerFinding(tuple(self.matches))


@register_analyzer("test-faces", order=30)
def _faces(context: AnalyzerContext) -> FakeFaces | None:
    return FakeFaces() if FakeFaces.on and context.fresh else None


@pytest.fixture(autouse=True)
def faces_on() -> Any:
    FakeFaces.on, FakeFaces.matches, FakeFaces.seen = True, [], []
    FakeProvider.answers, FakeProvider.failures = {"red": [("Red", 0.9)]}, {}
    FakeProvider.history, FakeProvider.configs = [], []
    yield
    FakeFaces.on = False


@pytest.fixture
def stash() -> Any:
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, settings(reviewConfidence=40, performerThreshold=60))
        yield server


def bulk_writes(stash: FakeStash) -> list[dict[str, Any]]:
    with stash.lock:
        return [v for op, v in stash.operations if op in ("BulkImageUpdate", "ReviewImageUpdate")]


def test_an_analyzer_is_one_registration_and_runs_after_the_tag_analyzer():
    names = analyzer_names()
    assert names.index("tags") < names.index("test-faces") < names.index("description")


def test_performers_found_go_in_the_items_single_write_with_tags_and_status(stash, tmp_path):
    alice, bob = stash.add_performer("Alice"), stash.add_performer("Bob")
    FakeFaces.matches = [PerformerMatch(alice, "Alice", 0.9), PerformerMatch(bob, "Bob", 0.5)]
    [red] = images(stash, tmp_path, "red")

    output, error, _ = run(stash, tmp_path / "data")

    assert error is None and output["performers_applied"] == 1
    [write] = bulk_writes(stash)
    assert write["input"]["performer_ids"] == {"ids": [alice], "mode": "ADD"}
    assert write["input"]["tag_ids"]["mode"] == "ADD"
    assert stash.performers_of("image", red) == {"Alice"}
    assert stash.tags_of_image(red) == {"Red", "AI_Tagged", "AI_Review"}, "Bob waits for review"
    [row] = output["items"]
    assert [(p["performer"], p["outcome"]) for p in row["performers"]] == [("Alice", "apply"), ("Bob", REVIEW)]
    assert len(FakeProvider.history) == 1 and FakeFaces.seen == [red]


def test_review_lists_a_performer_suggestion_and_accepting_it_adds_the_performer(stash, tmp_path):
    bob = stash.add_performer("Bob")
    FakeFaces.matches = [PerformerMatch(bob, "Bob", 0.5)]
    [red] = images(stash, tmp_path, "red")
    run(stash, tmp_path / "data")

    listed, error, _ = run(stash, tmp_path / "data", mode="review_list")
    assert error is None
    [item] = listed["items"]
    assert [(s.get("kind"), s.get("performer")) for s in item["suggestions"]] == [("performer", "Bob")]

    decided, error, _ = run(
        stash, tmp_path / "data", mode="review_decide", kind="image", id=red, accept=[{"kind": "performer", "id": bob}]
    )

    assert error is None and decided["performers_accepted"] == ["Bob"] and decided["pending"] == 0
    assert stash.performers_of("image", red) == {"Bob"}
    assert "AI_Review" not in stash.tags_of_image(red)


def test_a_rejected_performer_suggestion_leaves_the_queue_and_is_never_applied(stash, tmp_path):
    bob = stash.add_performer("Bob")
    FakeFaces.matches = [PerformerMatch(bob, "Bob", 0.5)]
    [red] = images(stash, tmp_path, "red")
    run(stash, tmp_path / "data")

    decided, error, _ = run(
        stash, tmp_path / "data", mode="review_decide", kind="image", id=red, reject=[{"kind": "performer", "id": bob}]
    )

    assert error is None and decided["performers_rejected"] == ["Bob"]
    assert stash.performers_of("image", red) == set()
    listed, _, _ = run(stash, tmp_path / "data", mode="review_list")
    assert listed["items"] == []


def test_a_performer_a_run_applied_is_listed_and_rejecting_it_removes_it_for_good(stash, tmp_path):
    alice = stash.add_performer("Alice")
    FakeFaces.matches = [PerformerMatch(alice, "Alice", 0.9)]
    [red] = images(stash, tmp_path, "red")
    run(stash, tmp_path / "data")

    listed, _, _ = run(stash, tmp_path / "data", mode="review_list", kind="image", id=red)
    [item] = listed["items"]
    assert [(a.get("kind"), a.get("performer")) for a in item["applied"] if a.get("kind")] == [("performer", "Alice")]

    alice_out = [{"kind": "performer", "id": alice}]
    decided, error, _ = run(stash, tmp_path / "data", mode="review_decide", kind="image", id=red, reject=alice_out)

    assert error is None and decided["performers_rejected"] == ["Alice"]
    assert stash.performers_of("image", red) == set()
    run(stash, tmp_path / "data", mode="reapply")
    assert stash.performers_of("image", red) == set(), "a rejected performer is never added again"


def test_undo_takes_back_only_the_performers_the_plugin_added(stash, tmp_path):
    alice, carol = stash.add_performer("Alice"), stash.add_performer("Carol")
    stash.add_performer("Dave")
    FakeFaces.matches = [PerformerMatch(alice, "Alice", 0.9), PerformerMatch(carol, "Carol", 0.9)]
    [red] = images(stash, tmp_path, "red")
    stash.set_item_performers("image", red, ["Carol"])  # the user's own, before the run
    run(stash, tmp_path / "data")
    assert stash.performers_of("image", red) == {"Alice", "Carol"}
    stash.set_item_performers("image", red, ["Alice", "Carol", "Dave"])  # the user adds Dave after it

    output, error, _ = run(stash, tmp_path / "data", mode="undo_last")

    assert error is None and output["removed"]["performers"] == 1
    assert stash.performers_of("image", red) == {"Carol", "Dave"}
    removes = [w for w in bulk_writes(stash) if w["input"].get("performer_ids", {}).get("mode") == "REMOVE"]
    assert [w["input"]["performer_ids"]["ids"] for w in removes] == [[alice]]


def test_a_performer_the_user_removed_is_not_added_again_on_reapply(stash, tmp_path):
    alice = stash.add_performer("Alice")
    FakeFaces.matches = [PerformerMatch(alice, "Alice", 0.9)]
    [red] = images(stash, tmp_path, "red")
    run(stash, tmp_path / "data")
    stash.set_item_performers("image", red, [])

    output, error, _ = run(stash, tmp_path / "data", mode="reapply")

    assert error is None
    assert stash.performers_of("image", red) == set()
    assert stash.tags_of_image(red) == {"Red", "AI_Tagged"}


def _inputs(**overrides: Any) -> Inputs:
    policy = Policy(threshold=0.6, max_tags=10, only_existing=False, review_threshold=0.4)
    return Inputs(policy=policy, vocabulary=Vocabulary([]), **overrides)


def test_the_item_decision_is_pure_and_takes_the_users_rejections_as_input():
    found = Findings(
        TagAnswer([Candidate(name="Red", confidence=0.9)], frame_count=1),
        PerformerFinding((PerformerMatch("1", "Alice", 0.9), PerformerMatch("2", "Bob", 0.9))),
    )
    inputs = _inputs(current_performers=frozenset({"2"}), rejected=frozenset({PERFORMER + "1"}))

    first, second = decide_item(found, inputs), decide_item(found, inputs)

    assert first == second
    assert [(p.name, p.outcome) for p in first.performers] == [("Alice", REJECTED), ("Bob", ON_ITEM)]
    assert [v.label for v in first.tags.applied] == ["Red"] and not first.review


def test_no_analyzer_finding_means_no_performer_or_details_in_the_decision(tmp_path: Path):
    decision = decide_item(Findings(TagAnswer([], frame_count=1)), _inputs())
    assert decision.performers == [] and decision.details is None and decision.description is None


def test_an_items_media_is_read_once_and_shared_by_every_analyzer(stash, tmp_path, monkeypatch):
    import ai_tagger.media.source as source

    calls: list[str] = []
    real = source.shots

    def counted(item: Item, *args: Any, **kwargs: Any) -> Any:
        calls.append(item.id)
        return real(item, *args, **kwargs)

    monkeypatch.setattr(source, "shots", counted)
    red, blue = images(stash, tmp_path, "red", "blue")

    output, error, _ = run(stash, tmp_path / "data")

    assert error is None and output["tagged"] == 2
    assert sorted(calls) == sorted([red, blue]), "the tag and face analyzers shared one extraction per item"
    assert sorted(FakeFaces.seen) == sorted([red, blue])
