"""The result cache: one SQLite file in the plugin's data folder, shared with the provenance journal.

This module owns ``answers``, ``answer_times``, ``items`` and ``markers`` (and the file's
migrations); :mod:`ai_tagger.store.journal` owns ``runs``, ``writes``, ``field_writes``,
``created_tags`` and ``rejections``, reaching them through :meth:`Cache.query` and
:meth:`Cache.transaction`. Each table has one owner.


``answers`` keeps each model answer (raw candidates, before any threshold or rule) under a key
made of the media's content fingerprint, the frame plan, provider, gateway URL, model and prompt version:
changing thresholds or rules, or tagging a duplicate file, costs no gateway call. ``items``
journals what each processed item got, committed per item, so "Re-apply tags from cache" can
re-decide every processed item with today's settings. ``answer_times`` keeps each answer's
frame times and ``markers`` every scene marker the plugin planned or wrote (with its state), so
markers can be recomputed, finished after a kill, and removed only when they are the plugin's.
WAL keeps them safe across kills; a corrupt file is moved aside and rebuilt, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_tagger.analyze.gateway.base import Candidate, TagAnswer, Usage

FACES_SCHEMA = """
CREATE TABLE IF NOT EXISTS performer_faces (
    performer_id TEXT NOT NULL,
    checksum TEXT NOT NULL,
    origin TEXT NOT NULL,
    embedding BLOB NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (performer_id, checksum)
);
CREATE TABLE IF NOT EXISTS face_sources (
    origin TEXT PRIMARY KEY,
    performer_id TEXT NOT NULL,
    version TEXT NOT NULL,
    checksum TEXT,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
"""
"""The face index's tables (ai_tagger.store.faces owns them). Here, not there: that module imports this one."""

# Each entry moves a file from the version before it (its index) to the next; ``PRAGMA
# user_version`` records where a file is. Files written before versions existed are version 0
# and already hold the tables of migration 1, hence ``IF NOT EXISTS``. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    candidates TEXT NOT NULL,
    frame_count INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    answer_key TEXT,
    status TEXT NOT NULL,
    applied TEXT NOT NULL,
    review TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (kind, id)
);
""",
    # The provenance journal (ai_tagger.store.journal): every run, every tag written, the tags created,
    # the user's rejections. A write is journaled before the mutation and ``done`` after it;
    # ``undone``/``dropped``/``rejected`` mark a write no longer in force.
    """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    items INTEGER NOT NULL DEFAULT 0,
    tags INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    undone REAL
);
CREATE TABLE IF NOT EXISTS writes (
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    had INTEGER NOT NULL,
    status INTEGER NOT NULL,
    confidence REAL,
    score REAL,
    frames TEXT,
    rule TEXT,
    provider TEXT,
    model TEXT,
    done REAL,
    undone REAL,
    dropped REAL,
    rejected REAL,
    PRIMARY KEY (run_id, kind, item_id, tag_id)
);
CREATE INDEX IF NOT EXISTS writes_by_item ON writes (kind, item_id);
CREATE TABLE IF NOT EXISTS created_tags (
    run_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    name TEXT NOT NULL,
    deleted REAL,
    PRIMARY KEY (run_id, tag_id)
);
CREATE TABLE IF NOT EXISTS rejections (
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    score REAL,
    time REAL NOT NULL,
    PRIMARY KEY (kind, item_id, tag_id)
);
-- What runs before the journal applied (``items``) becomes one undoable run. Those runs tagged
-- only untagged items, so the item had none of these tags; status tags are named, their ids
-- are looked up in Stash when undone.
INSERT OR IGNORE INTO runs (id, mode, started, ended)
    SELECT 'before-journal', 'tag_untagged', first, last
    FROM (SELECT min(updated) AS first, max(updated) AS last, count(*) AS n FROM items) WHERE n > 0;
INSERT OR IGNORE INTO writes (run_id, time, kind, item_id, tag_id, had, status, done)
    SELECT 'before-journal', i.updated, i.kind, i.id, CAST(j.value AS TEXT), 0, 0, i.updated
    FROM items AS i, json_each(i.applied) AS j;
INSERT OR IGNORE INTO writes (run_id, time, kind, item_id, tag_id, had, status, done)
    SELECT 'before-journal', updated, kind, id, 'status:AI_Tagged', 0, 1, updated FROM items WHERE status = 'tagged';
INSERT OR IGNORE INTO writes (run_id, time, kind, item_id, tag_id, had, status, done)
    SELECT 'before-journal', updated, kind, id, 'status:AI_Review', 0, 1, updated FROM items WHERE review != '[]';
""",
    # Scene markers (issue 11): each frame's time for an answer, and every marker the plugin
    # planned or wrote, so a kill between the tag write and the marker writes is finished later.
    """
CREATE TABLE IF NOT EXISTS answer_times (
    key TEXT PRIMARY KEY,
    times TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS markers (
    scene_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    seconds REAL NOT NULL,
    end_seconds REAL,
    marker_id TEXT,
    run_id TEXT,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS markers_scene ON markers (scene_id);
CREATE INDEX IF NOT EXISTS markers_state ON markers (state);
""",
    # The analyzer seam (issue 24): an answer's description, and what a run wrote to an item
    # besides tags (``field``: ``performer`` with the performer's id, ``details`` with the text),
    # journaled like ``writes`` so undo takes back exactly that.
    """
ALTER TABLE answers ADD COLUMN description TEXT;
CREATE TABLE IF NOT EXISTS field_writes (
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    had INTEGER NOT NULL,
    score REAL,
    rule TEXT,
    done REAL,
    undone REAL,
    dropped REAL,
    rejected REAL,
    PRIMARY KEY (run_id, kind, item_id, field, value)
);
CREATE INDEX IF NOT EXISTS field_writes_by_item ON field_writes (kind, item_id);
""",
    # Speech (issue 22): each file's transcript per speech model and audio budget, owned by
    # ``store/transcripts.py``; ``text`` NULL records a file without sound.
    """
CREATE TABLE IF NOT EXISTS transcripts (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT,
    seconds REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
);
""",
    # The face index (issue 21): performers' face embeddings and what each picture was when read.
    FACES_SCHEMA,
)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerCache(sqlite3.DatabaseError):
    """The file was written by a newer AI Tagger whose schema this one does not know."""


def _refuse_newer(db: sqlite3.Connection) -> int:
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise NewerCache(f"schema version {found} is newer than this plugin's {SCHEMA_VERSION}")
    return found


def migrate(db: sqlite3.Connection) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`, one committed step per migration; return the version found."""
    found = _refuse_newer(db)
    for number in range(found, SCHEMA_VERSION):
        db.executescript(f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;")
    return found


@dataclass(frozen=True)
class MarkerRow:
    """One marker the plugin planned or wrote (``row`` is SQLite's rowid, the handle for updates)."""

    row: int
    scene_id: str
    tag_id: str
    seconds: float
    end_seconds: float | None
    marker_id: str | None
    run_id: str | None
    state: str


MARKER_STATES = ("planned", "created", "removed", "rejected")


@dataclass(frozen=True)
class ItemRecord:
    kind: str
    id: str
    answer_key: str | None
    status: str
    applied: list[str]
    review: list[dict[str, object]]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


def answer_key(*parts: object) -> str:
    """A stable key for everything that shapes a model's answer."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


class Cache:
    """Thread-safe; every write is its own committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reset_reason: str | None = None
        self._lock = threading.Lock()
        self._db = self._open()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            _refuse_newer(db)  # before any pragma writes to a file this plugin cannot read
        except NewerCache as exc:
            db.close()
            raise NewerCache(
                f"{self.path} was written by a newer AI Tagger ({exc}): update the plugin; "
                "the file and its undo history were left untouched"
            ) from None
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _open(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = None
        try:
            db = self._connect()
            migrate(db)
            db.execute("SELECT count(*) FROM answers").fetchone()
            return db
        except NewerCache:
            raise
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.rename(Path(f"{aside}{suffix}"))
            self.reset_reason = (
                f"cache file was unreadable ({exc}); moved to {aside.name} and rebuilt: "
                "the undo history it held was lost (undo_last and remove_ai cannot reach earlier runs)"
            )
            db = self._connect()
            migrate(db)
            return db

    def get(self, key: str) -> TagAnswer | None:
        """The stored answer, marked ``cached``: it costs nothing now (no call, no tokens).

        None if absent or unreadable.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT candidates, frame_count, times, description FROM answers LEFT JOIN answer_times USING (key) "
                "WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        try:
            candidates = [Candidate.model_validate(c) for c in json.loads(row[0])]
            times = tuple(float(t) for t in json.loads(row[2] or "[]"))
        except (ValueError, TypeError):
            return None
        return TagAnswer(
            candidates, Usage(), calls=0, frame_count=int(row[1]), key=key, cached=True, times=times,
            description=row[3],
        )  # fmt: skip

    def put(
        self,
        key: str,
        fingerprint: str,
        candidates: list[Candidate],
        frame_count: int,
        usage: Usage,
        times: tuple[float, ...] = (),
        description: str | None = None,
    ) -> None:
        """Store an answer, and its frames' times (for markers) in the same transaction."""
        payload = json.dumps([c.model_dump(mode="json") for c in candidates])
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key, fingerprint, payload, frame_count, usage.prompt_tokens, usage.completion_tokens,
                        time.time(), description,
                    ),  # fmt: skip
                )
                if times:
                    self._db.execute("INSERT OR REPLACE INTO answer_times VALUES (?, ?)", (key, json.dumps(times)))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def plan_marker(
        self, scene_id: str, tag_id: str, seconds: float, end_seconds: float | None, run_id: str | None = None
    ) -> int:
        """Record a marker about to be written (state ``planned``); returns its row."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO markers VALUES (?, ?, ?, ?, NULL, ?, 'planned', ?)",
                (scene_id, tag_id, seconds, end_seconds, run_id, time.time()),
            )
        return int(cursor.lastrowid or 0)

    def mark_created(self, row: int, marker_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE markers SET marker_id = ?, state = 'created', updated = ? WHERE rowid = ?",
                (marker_id, time.time(), row),
            )

    def set_marker_state(self, row: int, state: str) -> None:
        """``removed`` (the plugin took it away) or ``rejected`` (the user deleted it: never again)."""
        if state not in MARKER_STATES:
            raise ValueError(f"unknown marker state {state!r}")
        with self._lock:
            self._db.execute("UPDATE markers SET state = ?, updated = ? WHERE rowid = ?", (state, time.time(), row))

    def drop_marker(self, row: int) -> None:
        """Forget a planned marker that was never written."""
        with self._lock:
            self._db.execute("DELETE FROM markers WHERE rowid = ? AND state = 'planned'", (row,))

    def markers(self, scene_id: str) -> list[MarkerRow]:
        """Every marker row of a scene, oldest first."""
        return self._marker_rows("WHERE scene_id = ?", (scene_id,))

    def created_markers(self, run_id: str | None = None) -> list[MarkerRow]:
        """Markers the plugin created and still owns: of one run, or all of them."""
        if run_id is None:
            return self._marker_rows("WHERE state = 'created'", ())
        return self._marker_rows("WHERE state = 'created' AND run_id = ?", (run_id,))

    def created_marker_ids(self, run_ids: list[str] | None) -> list[tuple[str, str]]:
        """``(scene id, marker id)`` the plugin created and still owns, of the runs or of all of them."""
        sql = "SELECT scene_id, marker_id FROM markers WHERE state = 'created' AND marker_id IS NOT NULL"
        params: tuple[Any, ...] = ()
        if run_ids is not None:
            sql += f" AND run_id IN ({_marks(run_ids)})"
            params = tuple(run_ids)
        return [(str(r[0]), str(r[1])) for r in self.query(sql + " ORDER BY scene_id, marker_id", params)]

    def marker_removed(self, marker_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE markers SET state = 'removed', updated = ? WHERE marker_id = ?", (time.time(), marker_id)
            )

    def has_markers(self, run_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM markers WHERE run_id = ? LIMIT 1", (run_id,)))

    def planned_scenes(self) -> list[str]:
        """Scenes with markers planned but not written (a run killed between the tag write and them)."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT scene_id FROM markers WHERE state = 'planned'").fetchall()
        return [str(r[0]) for r in rows]

    def _marker_rows(self, where: str, args: tuple[object, ...]) -> list[MarkerRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, scene_id, tag_id, seconds, end_seconds, marker_id, run_id, state FROM markers "
                f"{where} ORDER BY rowid",  # noqa: S608 - fixed clauses only
                args,
            ).fetchall()
        return [MarkerRow(int(r[0]), str(r[1]), str(r[2]), float(r[3]), r[4], r[5], r[6], str(r[7])) for r in rows]

    def record(self, entry: ItemRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.kind,
                    entry.id,
                    entry.answer_key,
                    entry.status,
                    json.dumps(entry.applied),
                    json.dumps(entry.review),
                    time.time(),
                ),
            )

    def processed_count(self, kinds: tuple[str, ...]) -> int:
        """How many records :meth:`processed` yields, counted by SQLite."""
        marks = ",".join("?" for _ in kinds)
        with self._lock:
            row = self._db.execute(
                f"SELECT count(*) FROM items WHERE kind IN ({marks}) AND answer_key IS NOT NULL",  # noqa: S608
                kinds,
            ).fetchone()
        return int(row[0])

    def processed(self, kinds: tuple[str, ...]) -> Iterator[ItemRecord]:
        """Processed items with a cached answer, in a stable order, read in pages."""
        last = ("", "")
        marks = ",".join("?" for _ in kinds)
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT kind, id, answer_key, status, applied, review FROM items "  # noqa: S608 - marks only
                    f"WHERE kind IN ({marks}) AND answer_key IS NOT NULL AND (kind, id) > (?, ?) "
                    "ORDER BY kind, id LIMIT 200",
                    (*kinds, *last),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield ItemRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]))
            last = (rows[-1][0], rows[-1][1])

    def pending_review(
        self, kinds: tuple[str, ...], offset: int, limit: int
    ) -> tuple[int, list[tuple[str, str, str]]]:
        """``(total, [(kind, item id, suggestions JSON)])``: items with suggestions, newest first."""
        where = f"review != '[]' AND kind IN ({_marks(kinds)})"
        total = int(self.query(f"SELECT count(*) FROM items WHERE {where}", kinds)[0][0])  # noqa: S608
        rows = self.query(
            f"SELECT kind, id, review FROM items WHERE {where} ORDER BY updated DESC, kind, id LIMIT ? OFFSET ?",  # noqa: S608
            (*kinds, limit, offset),
        )
        return total, [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def suggestions(self, kind: str, item_id: str) -> str | None:
        """The item's pending suggestions as stored (JSON), or None for an item never processed."""
        rows = self.query("SELECT review FROM items WHERE kind = ? AND id = ?", (kind, item_id))
        return str(rows[0][0]) if rows else None

    def swap_review(self, kind: str, item_id: str, old: str, new: str) -> bool:
        """Replace an item's pending suggestions only if they are still ``old`` (compare and swap).

        Two review decisions on the same item (two browser tabs) cannot both take a suggestion.
        """
        with self._lock:
            cursor = self._db.execute(
                "UPDATE items SET review = ? WHERE kind = ? AND id = ? AND review = ?", (new, kind, item_id, old)
            )
            return cursor.rowcount == 1

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement, for modules that keep their own tables in this file (the journal)."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def transaction(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        """Several writes committed together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    self._db.execute(sql, params)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
