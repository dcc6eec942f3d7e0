"""The cache file carries a schema version; files of every earlier version are migrated in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ai_tagger.analyze.gateway.base import Candidate, Usage
from ai_tagger.store.cache import SCHEMA_VERSION, Cache, ItemRecord, NewerCache

# The file as AI Tagger wrote it before the schema had a version (user_version 0).
UNVERSIONED = """
CREATE TABLE answers (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, candidates TEXT NOT NULL, frame_count INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL
);
CREATE TABLE items (
    kind TEXT NOT NULL, id TEXT NOT NULL, answer_key TEXT, status TEXT NOT NULL, applied TEXT NOT NULL,
    review TEXT NOT NULL, updated REAL NOT NULL, PRIMARY KEY (kind, id)
);
INSERT INTO answers VALUES ('k1', 'fp', '[{"name": "Dog", "confidence": 0.9, "frames": [1]}]', 2, 10, 5, 0);
INSERT INTO items VALUES ('image', '7', 'k1', 'tagged', '["3"]', '[]', 0);
"""


def version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_file_gets_the_current_version(tmp_path):
    path = tmp_path / "cache.sqlite3"
    Cache(path).close()
    assert version(path) == SCHEMA_VERSION >= 1


def test_an_unversioned_file_is_migrated_and_keeps_its_answers_and_journal(tmp_path):
    path = tmp_path / "cache.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(UNVERSIONED)

    cache = Cache(path)
    answer = cache.get("k1")
    journal = list(cache.processed(("image",)))
    cache.close()

    assert cache.reset_reason is None
    assert version(path) == SCHEMA_VERSION
    assert answer is not None and answer.cached and answer.frame_count == 2
    assert answer.candidates == [Candidate(name="Dog", confidence=0.9, frames=(1,))]
    assert journal == [ItemRecord("image", "7", "k1", "tagged", ["3"], [])]


def test_a_file_from_a_newer_plugin_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "cache.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()

    with pytest.raises(NewerCache, match="newer AI Tagger.*update the plugin"):
        Cache(path)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cache.sqlite3"]


def test_a_corrupt_file_is_moved_aside_and_says_the_undo_history_was_lost(tmp_path):
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"not a database" * 200)

    cache = Cache(path)
    cache.close()

    assert cache.reset_reason is not None and "undo history" in cache.reset_reason
    assert version(path) == SCHEMA_VERSION
    assert list(tmp_path.glob("cache.sqlite3.corrupt-*"))


def test_answers_and_journal_round_trip(tmp_path):
    cache = Cache(tmp_path / "cache.sqlite3")
    cache.put("k", "fp", [Candidate(name="Cat", confidence=0.5)], 3, Usage(7, 1))
    cache.record(ItemRecord("scene", "1", "k", "tagged", ["9"], [{"tag": "Cat", "score": 0.5}]))

    answer = cache.get("k")

    assert answer is not None
    assert (answer.frame_count, answer.key, answer.cached, answer.calls, answer.usage) == (3, "k", True, 0, Usage())
    assert cache.processed_count(("scene",)) == 1 and cache.processed_count(("image",)) == 0
    assert cache.get("missing") is None
    cache.close()


def test_answer_times_and_marker_rows_survive_reopening(tmp_path):
    path = tmp_path / "cache.sqlite3"
    cache = Cache(path)
    cache.put("k", "oshash:1", [Candidate(name="Red", confidence=0.9, frames=(1, 2))], 3, Usage(), times=(0, 2, 4))
    planned = cache.plan_marker("7", "3", 0.0, 4.0, run_id="run-1")
    other = cache.plan_marker("7", "5", 6.0, None)
    cache.mark_created(planned, "41")
    cache.set_marker_state(other, "rejected")
    cache.close()

    cache = Cache(path)
    assert cache.get("k").times == (0, 2, 4)
    assert [(r.tag_id, r.marker_id, r.state, r.run_id) for r in cache.markers("7")] == [
        ("3", "41", "created", "run-1"),
        ("5", None, "rejected", None),
    ]
    assert [r.marker_id for r in cache.created_markers("run-1")] == ["41"]
    assert [r.marker_id for r in cache.created_markers()] == ["41"]
    assert cache.planned_scenes() == []
