"""The provenance journal: migrated from today's file, rejections recorded, thresholds learned from them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ai_tagger.analyze.gateway.base import Candidate
from ai_tagger.decide.decision import APPLY, BELOW, Policy, Verdict, decide
from ai_tagger.deps import data_dir
from ai_tagger.settings import Settings
from ai_tagger.stash.models import ItemState, Tag
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.cache import MIGRATIONS, Cache
from ai_tagger.store.journal import Journal, Write
from ai_tagger.tasks.modes import UNDOABLE
from tests import media
from tests.conftest import run_plugin
from tests.test_undo import ok

DOG = Tag(id="5", name="Dog")


def todays_file(path: Path, items: list[tuple[str, str, str, str]]) -> None:
    """A cache file as the plugin before the journal wrote it: schema version 1, ``answers`` and ``items``."""
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        for kind, item_id, applied, review in items:
            row = (kind, item_id, applied, review)
            db.execute("INSERT INTO items VALUES (?, ?, 'k', 'tagged', ?, ?, 1700000000)", row)


def test_a_journal_written_by_todays_plugin_becomes_one_undoable_run(tmp_path):
    path = tmp_path / "cache.sqlite3"
    todays_file(path, [("image", "7", '["3", "4"]', "[]"), ("scene", "2", '["3"]', '[{"tag": "Cat", "score": 0.5}]')])

    cache = Cache(path)
    journal = Journal(cache)
    [run] = journal.runs(UNDOABLE)

    assert cache.reset_reason is None and run.id == "before-journal"
    assert journal.added([run.id], "image", "7") == {"3": False, "4": False, "status:AI_Tagged": True}
    assert journal.added([run.id], "scene", "2") == {"3": False, "status:AI_Tagged": True, "status:AI_Review": True}
    assert list(cache.processed(("image",)))[0].applied == ["3", "4"], "the old journal is kept as it was"
    cache.close()


def test_remove_ai_takes_back_what_todays_plugin_added(stash, model, tmp_path):
    """The journal file of the plugin before this version: its runs can be removed too."""
    user, water, tagged = stash.add_tag("Mine"), stash.add_tag("Water"), stash.add_tag("AI_Tagged")
    image = stash.add_image(media.make_image(tmp_path / "a.jpg", "blue"), tag_ids=[water, tagged])
    other = stash.add_image(media.make_image(tmp_path / "b.jpg", "blue"), tag_ids=[water, tagged, user])
    folder = _data_folder(stash)
    rows = [("image", image, f'["{water}"]', "[]"), ("image", other, f'["{water}"]', "[]")]
    todays_file(folder / "cache.sqlite3", rows)

    output = ok(run_plugin(stash, {"mode": "remove_ai"}))

    assert stash.tags_of_image(image) == set() and stash.tags_of_image(other) == {"Mine"}
    assert output["removed"]["tags"] == 2 and output["removed"]["status_tags"] == 2


def _data_folder(stash) -> Path:
    folder = data_dir(stash.server_connection()["Dir"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _applications(journal: Journal, scores: list[float], rejected: int) -> None:
    """``len(scores)`` items got Dog at these scores; the user removed it from the first ``rejected``."""
    run_id = journal.begin("tag_untagged")
    for index, score in enumerate(scores):
        verdict = Verdict("Dog", score, score, (), DOG, APPLY, "minConfidence: 60%")
        journal.intend(run_id, "image", str(index), [Write(DOG.id, False, verdict)])
        journal.done(run_id, "image", str(index))
    for index in range(rejected):
        assert journal.rejected("image", str(index), ItemState()) == {DOG.id}


def test_a_tag_removed_by_the_user_is_a_rejection_only_once_and_only_on_that_item(tmp_path):
    journal = Journal(Cache(tmp_path / "cache.sqlite3"))
    _applications(journal, [0.7, 0.8], rejected=1)

    assert journal.rejected("image", "0", ItemState()) == {DOG.id}
    assert journal.rejected("image", "1", ItemState(tag_ids={DOG.id})) == set()
    [stat] = journal.tag_stats()
    assert stat == {
        "tag_id": "5", "applied": 2, "rejected": 1, "rejection_rate": 0.5,
        "mean_score_rejected": 0.7, "mean_score_kept": 0.8,
    }


def test_learned_threshold_keeps_90_percent_of_rejections_out_and_the_decision_uses_it(tmp_path):
    journal = Journal(Cache(tmp_path / "cache.sqlite3"))
    rejected = [0.62, 0.65, 0.70, 0.72]
    _applications(journal, [*rejected, 0.9, 0.9, 0.9, 0.95, 0.95, 0.97], rejected=len(rejected))

    [learned] = journal.learned()
    assert (learned.tag_id, learned.threshold, learned.applied, learned.rejected) == ("5", 0.73, 10, 4)
    assert "4 of 10" in learned.why

    vocabulary = Vocabulary([DOG])
    on = Policy.from_settings(Settings.from_stash({"learnThresholds": True}), learned={"5": learned.threshold})
    off = Policy.from_settings(Settings.from_stash({}), learned={"5": learned.threshold})
    [low] = decide([Candidate(name="Dog", confidence=0.72)], 1, vocabulary, on).verdicts
    [high] = decide([Candidate(name="Dog", confidence=0.75)], 1, vocabulary, on).verdicts
    [before] = decide([Candidate(name="Dog", confidence=0.72)], 1, vocabulary, off).verdicts
    assert low.outcome == BELOW and "learned threshold: 73%" in (low.rule or "")
    assert high.outcome == APPLY and before.outcome == APPLY


def test_learning_needs_ten_applications_and_30_percent_and_never_goes_above_99(tmp_path):
    few = Journal(Cache(tmp_path / "few.sqlite3"))
    _applications(few, [0.7] * 9, rejected=9)
    rare = Journal(Cache(tmp_path / "rare.sqlite3"))
    _applications(rare, [0.7] * 10, rejected=2)
    sure = Journal(Cache(tmp_path / "sure.sqlite3"))
    _applications(sure, [0.995] * 10, rejected=5)

    assert few.learned() == [] and rare.learned() == []
    assert [entry.threshold for entry in sure.learned()] == [0.99]
