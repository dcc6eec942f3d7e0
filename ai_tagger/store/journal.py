"""The provenance journal: what each run wrote, why, and what the user took back.

Kept in the cache's SQLite file (tables made by ``cache.MIGRATIONS``). Every tag a run puts on
an item is a row in ``writes`` with the decision behind it and whether the item already had
the tag; every performer and description a row in ``field_writes`` (``performer`` + id,
``details`` + the text); undo removes only rows the item did not have. A row stops being "in force" when a run
is undone (``undone``), when re-apply drops it (``dropped``), or when the user removed the tag
from the item (``rejected``, plus a row in ``rejections`` that keeps the tag off that item).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ai_tagger.decide.decision import Verdict
from ai_tagger.decide.item import DESCRIPTION, PERFORMER
from ai_tagger.stash.models import ItemState
from ai_tagger.store.cache import Cache
from ai_tagger.tasks.modes import REVIEW_DECISION

LEARN_MIN_APPLIED = 10
LEARN_MIN_RATE = 0.30
LEARN_KEEP_OUT = 0.90
LEARN_CEILING = 0.99
_IN_FORCE = "undone IS NULL AND dropped IS NULL AND rejected IS NULL"
STATUS_BY_NAME = "status:"
BY_THE_USER = "review"
"""The ``run_id`` of rejections the user made on the review page rather than by removing a tag."""
"""A status tag journaled by name (runs from before the journal), its id looked up when undone."""


@dataclass(frozen=True)
class Write:
    """One tag put on one item, and the decision behind it (``None`` for status tags)."""

    tag_id: str
    had: bool
    verdict: Verdict | None = None


class Field(str, Enum):
    """What a ``field_writes`` row wrote to an item besides tags."""

    PERFORMER = "performer"
    DETAILS = "details"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FieldWrite:
    """One performer (``value``: its id) or description (``value``: the text) put on one item."""

    field: Field
    value: str
    had: bool = False
    score: float | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Run:
    id: str
    mode: str
    started: float
    ended: float | None


@dataclass(frozen=True)
class Learned:
    """A tag whose threshold the user's rejections raised (``learnThresholds``)."""

    tag_id: str
    threshold: float
    applied: int
    rejected: int

    @property
    def why(self) -> str:
        return (
            f"{self.rejected} of {self.applied} applications rejected ({self.rejected / self.applied:.0%}); "
            f"{self.threshold * 100:g}% keeps {LEARN_KEEP_OUT:.0%} of the rejected ones out"
        )


def _marks(values: Iterable[object]) -> str:
    return ",".join("?" for _ in values)


def _undo_rows(run_ids: list[str]) -> str:
    """Items with writes of the runs not undone yet, tags and other fields alike (run ids bound twice)."""
    marks = _marks(run_ids)
    return (
        f"SELECT kind, item_id FROM writes WHERE run_id IN ({marks}) AND undone IS NULL "  # noqa: S608
        f"UNION SELECT kind, item_id FROM field_writes WHERE run_id IN ({marks}) AND undone IS NULL"
    )


class Journal:
    """Thread-safe (the cache serialises statements); each item's rows commit together."""

    def __init__(self, cache: Cache, *, provider: str | None = None, model: str | None = None) -> None:
        self.cache = cache
        self.provider = provider
        self.model = model

    # ---- a tagging run ------------------------------------------------------------------

    def begin(self, mode: str) -> str:
        run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self.cache.transaction([("INSERT INTO runs (id, mode, started) VALUES (?, ?, ?)", (run_id, mode, time.time()))])
        return run_id

    def end(self, run_id: str, *, tokens: int, errors: int) -> None:
        """The run's totals (items and tags counted from its writes).

        A run that changed nothing is forgotten, so that ``undo_last`` never spends itself on it.
        """
        wrote = self.cache.query(
            "SELECT EXISTS (SELECT 1 FROM writes WHERE run_id = ?) "
            "OR EXISTS (SELECT 1 FROM field_writes WHERE run_id = ?) "
            "OR EXISTS (SELECT 1 FROM created_tags WHERE run_id = ?)",
            (run_id, run_id, run_id),
        )[0][0]
        if not wrote and not self.cache.has_markers(run_id):
            self.cache.transaction([("DELETE FROM runs WHERE id = ?", (run_id,))])
            return
        self.cache.transaction(
            [
                (
                    "UPDATE runs SET ended = ?, tokens = ?, errors = ?, "
                    "items = (SELECT count(DISTINCT kind || ':' || item_id) FROM writes WHERE run_id = ?), "
                    "tags = (SELECT count(*) FROM writes WHERE run_id = ? AND had = 0 AND status = 0) WHERE id = ?",
                    (time.time(), tokens, errors, run_id, run_id, run_id),
                )
            ]
        )

    def created_tag(self, run_id: str, tag_id: str, name: str) -> None:
        self.cache.transaction(
            [("INSERT OR IGNORE INTO created_tags (run_id, tag_id, name) VALUES (?, ?, ?)", (run_id, tag_id, name))]
        )

    def intend(
        self, run_id: str, kind: str, item_id: str, writes: list[Write], fields: tuple[FieldWrite, ...] = ()
    ) -> None:
        """The tags (and performers, description) one mutation is about to put on an item, journaled before it.

        A kill after the mutation still leaves undo knowing the tags; :meth:`done` after it tells
        a tag the user removed from one that was never written.
        """
        now = time.time()
        rows = []
        for write in writes:
            v = write.verdict
            decision = (
                (v.confidence, round(v.score, 4), json.dumps(list(v.frames)), v.rule, self.provider, self.model)
                if v is not None
                else (None, None, None, None, self.provider, self.model)
            )
            rows.append(
                (
                    "INSERT OR REPLACE INTO writes (run_id, time, kind, item_id, tag_id, had, status, confidence, "
                    "score, frames, rule, provider, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, now, kind, item_id, write.tag_id, int(write.had), int(v is None), *decision),
                )
            )
        for one in fields:
            rows.append(
                (
                    "INSERT OR REPLACE INTO field_writes (run_id, time, kind, item_id, field, value, had, score, rule) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, now, kind, item_id, str(one.field), one.value, int(one.had), one.score, one.rule),
                )
            )
        if rows:
            self.cache.transaction(rows)

    def done(self, run_id: str, kind: str, item_id: str) -> None:
        now = time.time()
        self.cache.transaction(
            [
                (
                    f"UPDATE {table} SET done = ? WHERE run_id = ? AND kind = ? AND item_id = ? AND done IS NULL",  # noqa: S608
                    (now, run_id, kind, item_id),
                )
                for table in ("writes", "field_writes")
            ]
        )

    def dropped(self, kind: str, item_id: str, tag_ids: list[str]) -> None:
        """Tags re-apply itself took off the item: no longer the plugin's, and not a rejection."""
        if tag_ids:
            self.cache.transaction(
                [
                    (
                        f"UPDATE writes SET dropped = ? WHERE kind = ? AND item_id = ? "  # noqa: S608 - marks only
                        f"AND tag_id IN ({_marks(tag_ids)}) AND {_IN_FORCE}",
                        (time.time(), kind, item_id, *tag_ids),
                    )
                ]
            )

    def rejected(self, kind: str, item_id: str, now: ItemState) -> set[str]:
        """What the user took back on this item: journal says we wrote it, Stash says it is gone.

        A tag or performer removed, or our description changed or cleared. Newly found ones are
        recorded; returns every rejection key on the item (see :mod:`ai_tagger.decide.item`), so
        that no run writes one again.
        """
        gone = self.cache.query(
            f"SELECT tag_id, run_id, max(score) FROM writes WHERE kind = ? AND item_id = ? AND had = 0 "  # noqa: S608
            f"AND status = 0 AND done IS NOT NULL AND {_IN_FORCE} GROUP BY tag_id",
            (kind, item_id),
        )
        current = now.tag_ids
        self._record_rejections(kind, item_id, [(t, origin, score) for t, origin, score in gone if t not in current])
        fields = self.cache.query(
            f"SELECT field, value, run_id, max(score) FROM field_writes WHERE kind = ? AND item_id = ? "  # noqa: S608
            f"AND had = 0 AND done IS NOT NULL AND {_IN_FORCE} GROUP BY field, value",
            (kind, item_id),
        )
        taken_back = [
            (str(field), str(value), str(origin), score)
            for field, value, origin, score in fields
            if (field == Field.PERFORMER and value not in now.performer_ids)
            or (field == Field.DETAILS and value != now.details)
        ]
        self._record_field_rejections(kind, item_id, taken_back)
        return self.rejections(kind, item_id)

    def _record_field_rejections(self, kind: str, item_id: str, rows: list[tuple[str, str, str, float | None]]) -> None:
        """``(field, value, run id, score)`` the user took back, and those writes no longer in force."""
        now = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for field, value, origin, score in rows:
            rejection = PERFORMER + value if field == Field.PERFORMER else DESCRIPTION
            statements.append(
                (
                    "INSERT OR IGNORE INTO rejections (kind, item_id, tag_id, run_id, score, time) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, item_id, rejection, origin, score, now),
                )
            )
            statements.append(
                (
                    f"UPDATE field_writes SET rejected = ? WHERE kind = ? AND item_id = ? AND field = ? "  # noqa: S608
                    f"AND value = ? AND {_IN_FORCE}",
                    (now, kind, item_id, field, value),
                )
            )
        if statements:
            self.cache.transaction(statements)

    def _record_rejections(self, kind: str, item_id: str, rejected: list[tuple[str, str, float | None]]) -> None:
        """``(tag id, run id, score)`` rejected on the item, and the writes no longer in force, together."""
        now = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for tag_id, origin, score in rejected:
            statements.append(
                (
                    "INSERT OR IGNORE INTO rejections (kind, item_id, tag_id, run_id, score, time) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, item_id, tag_id, origin, score, now),
                )
            )
            statements.append(
                (
                    f"UPDATE writes SET rejected = ? WHERE kind = ? AND item_id = ? AND tag_id = ? AND {_IN_FORCE}",  # noqa: S608
                    (now, kind, item_id, tag_id),
                )
            )
        if statements:
            self.cache.transaction(statements)

    # ---- review ------------------------------------------------------------------------

    def applied_by_ai(self, kind: str, item_id: str) -> dict[str, dict[str, Any]]:
        """``tag id -> why``: content tags runs added to the item, still in force, the latest write of each."""
        rows = self.cache.query(
            "SELECT w.tag_id, w.confidence, w.score, w.frames, w.rule, w.provider, w.model, w.run_id, r.mode "  # noqa: S608
            "FROM writes w LEFT JOIN runs r ON r.id = w.run_id WHERE w.kind = ? AND w.item_id = ? AND w.had = 0 "
            "AND w.status = 0 AND w.done IS NOT NULL AND w.undone IS NULL AND w.dropped IS NULL AND w.rejected IS NULL "
            "ORDER BY w.time",
            (kind, item_id),
        )
        return {
            str(r[0]): {
                "confidence": r[1],
                "score": r[2],
                "frames": json.loads(r[3]) if r[3] else [],
                "rule": r[4],
                "provider": r[5],
                "model": r[6],
                "run": str(r[7]),
                "accepted_by_user": r[8] == REVIEW_DECISION,
            }
            for r in rows
        }

    def performers_by_ai(self, kind: str, item_id: str) -> dict[str, dict[str, Any]]:
        """``performer id -> why``: performers runs added to the item, still in force."""
        rows = self.cache.query(
            "SELECT f.value, f.score, f.rule, f.run_id, r.mode FROM field_writes f LEFT JOIN runs r ON r.id = f.run_id "  # noqa: S608
            "WHERE f.kind = ? AND f.item_id = ? AND f.field = ? AND f.had = 0 AND f.done IS NOT NULL AND "
            "f.undone IS NULL AND f.dropped IS NULL AND f.rejected IS NULL ORDER BY f.time",
            (kind, item_id, str(Field.PERFORMER)),
        )
        return {
            str(r[0]): {"score": r[1], "rule": r[2], "run": str(r[3]), "accepted_by_user": r[4] == REVIEW_DECISION}
            for r in rows
        }

    def rejections(self, kind: str, item_id: str) -> set[str]:
        """Every tag id (or ``new:`` name key) rejected on the item, without looking for new ones."""
        rows = self.cache.query("SELECT tag_id FROM rejections WHERE kind = ? AND item_id = ?", (kind, item_id))
        return {str(row[0]) for row in rows}

    def reject(self, kind: str, item_id: str, rejected: list[tuple[str, float | None]]) -> None:
        """The user's rejections from the review page (tag ids, ``new:`` keys, ``performer:<id>``): never
        (re-)applied to the item again."""
        tags = [(k, BY_THE_USER, score) for k, score in rejected if not k.startswith(PERFORMER)]
        people = [
            (str(Field.PERFORMER), k.removeprefix(PERFORMER), BY_THE_USER, score)
            for k, score in rejected
            if k.startswith(PERFORMER)
        ]
        self._record_rejections(kind, item_id, tags)
        self._record_field_rejections(kind, item_id, people)

    # ---- undo ---------------------------------------------------------------------------

    def runs(self, modes: Iterable[str], *, undone: bool = False) -> list[Run]:
        """Runs of these modes, newest first; only those not undone unless ``undone``."""
        modes = tuple(modes)
        where = "" if undone else " AND undone IS NULL"
        rows = self.cache.query(
            f"SELECT id, mode, started, ended FROM runs WHERE mode IN ({_marks(modes)}){where} "  # noqa: S608
            "ORDER BY seq DESC",
            modes,
        )
        return [Run(str(r[0]), str(r[1]), float(r[2]), None if r[3] is None else float(r[3])) for r in rows]

    def pending_items(self, run_ids: list[str], page: int = 100) -> Iterator[tuple[str, list[str]]]:
        """``(kind, item ids)`` with writes of the runs still to undo, a page of one kind at a time."""
        last = ("", "")
        while True:
            rows = self.cache.query(
                f"SELECT DISTINCT kind, item_id FROM ({_undo_rows(run_ids)}) "  # noqa: S608
                "WHERE (kind, item_id) > (?, ?) ORDER BY kind, item_id LIMIT ?",
                (*run_ids, *run_ids, *last, page),
            )
            if not rows:
                return
            for kind in dict.fromkeys(str(r[0]) for r in rows):
                yield kind, [str(r[1]) for r in rows if r[0] == kind]
            last = (str(rows[-1][0]), str(rows[-1][1]))

    def pending_count(self, run_ids: list[str]) -> int:
        rows = self.cache.query(
            f"SELECT count(DISTINCT kind || ':' || item_id) FROM ({_undo_rows(run_ids)})",  # noqa: S608
            (*run_ids, *run_ids),
        )
        return int(rows[0][0])

    def added(self, run_ids: list[str], kind: str, item_id: str) -> dict[str, bool]:
        """``tag id -> is a status tag`` for tags the runs put on the item that it did not have before."""
        rows = self.cache.query(
            f"SELECT tag_id, max(status) FROM writes WHERE run_id IN ({_marks(run_ids)}) AND kind = ? "  # noqa: S608
            "AND item_id = ? AND had = 0 AND undone IS NULL AND dropped IS NULL GROUP BY tag_id ORDER BY tag_id",
            (*run_ids, kind, item_id),
        )
        return {str(r[0]): bool(r[1]) for r in rows}

    def added_fields(self, run_ids: list[str], kind: str, item_id: str) -> list[tuple[Field, str]]:
        """``(field, value)`` the runs wrote to the item that it did not have before: performers, description."""
        rows = self.cache.query(
            f"SELECT DISTINCT field, value FROM field_writes WHERE run_id IN ({_marks(run_ids)}) AND kind = ? "  # noqa: S608
            "AND item_id = ? AND had = 0 AND undone IS NULL AND dropped IS NULL ORDER BY field, value",
            (*run_ids, kind, item_id),
        )
        return [(Field(str(r[0])), str(r[1])) for r in rows]

    def undone_item(self, run_ids: list[str], kind: str, item_id: str) -> None:
        now = time.time()
        self.cache.transaction(
            [
                (
                    f"UPDATE {table} SET undone = ? WHERE run_id IN ({_marks(run_ids)}) AND kind = ? "  # noqa: S608
                    "AND item_id = ? AND undone IS NULL",
                    (now, *run_ids, kind, item_id),
                )
                for table in ("writes", "field_writes")
            ]
        )

    def created_tags(self, run_ids: list[str]) -> list[tuple[str, str, str]]:
        """``(run id, tag id, name)`` created by the runs and not deleted yet, newest first (children first)."""
        rows = self.cache.query(
            f"SELECT run_id, tag_id, name FROM created_tags WHERE run_id IN ({_marks(run_ids)}) "  # noqa: S608
            "AND deleted IS NULL ORDER BY rowid DESC",
            tuple(run_ids),
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def tag_deleted(self, tag_id: str) -> None:
        self.cache.transaction([("UPDATE created_tags SET deleted = ? WHERE tag_id = ?", (time.time(), tag_id))])

    def run_undone(self, run_ids: list[str]) -> None:
        """Only once every item, marker and tag of the runs is done: a killed undo is simply re-run."""
        self.cache.transaction(
            [(f"UPDATE runs SET undone = ? WHERE id IN ({_marks(run_ids)})", (time.time(), *run_ids))]  # noqa: S608
        )

    # ---- report -------------------------------------------------------------------------

    def tag_stats(self) -> list[dict[str, Any]]:
        """Per tag: applications (content tags the plugin added), rejections, mean scores."""
        rows = self.cache.query(
            """
SELECT w.tag_id, count(*), sum(r.tag_id IS NOT NULL),
       avg(CASE WHEN r.tag_id IS NOT NULL THEN w.score END), avg(CASE WHEN r.tag_id IS NULL THEN w.score END)
FROM (SELECT kind, item_id, tag_id, max(score) AS score FROM writes WHERE had = 0 AND status = 0
      GROUP BY kind, item_id, tag_id) AS w
LEFT JOIN rejections AS r ON r.kind = w.kind AND r.item_id = w.item_id AND r.tag_id = w.tag_id
GROUP BY w.tag_id ORDER BY count(*) DESC, w.tag_id
"""
        )
        stats = []
        for tag_id, applied, rejected, mean_rejected, mean_kept in rows:
            applied, rejected = int(applied), int(rejected or 0)
            stats.append(
                {
                    "tag_id": str(tag_id),
                    "applied": applied,
                    "rejected": rejected,
                    "rejection_rate": round(rejected / applied, 3) if applied else 0.0,
                    "mean_score_rejected": None if mean_rejected is None else round(float(mean_rejected), 3),
                    "mean_score_kept": None if mean_kept is None else round(float(mean_kept), 3),
                }
            )
        return stats

    def performer_stats(self) -> list[dict[str, Any]]:
        """Per performer: how often the plugin added them, how often the user removed them, mean scores."""
        rows = self.cache.query(
            """
SELECT w.value, count(*), sum(r.tag_id IS NOT NULL),
       avg(CASE WHEN r.tag_id IS NOT NULL THEN w.score END), avg(CASE WHEN r.tag_id IS NULL THEN w.score END)
FROM (SELECT kind, item_id, value, max(score) AS score FROM field_writes WHERE field = 'performer' AND had = 0
      GROUP BY kind, item_id, value) AS w
LEFT JOIN rejections AS r ON r.kind = w.kind AND r.item_id = w.item_id AND r.tag_id = 'performer:' || w.value
GROUP BY w.value ORDER BY count(*) DESC, w.value
"""
        )
        return [
            {
                "performer_id": str(performer_id),
                "applied": int(applied),
                "rejected": int(rejected or 0),
                "mean_score_rejected": None if mean_rejected is None else round(float(mean_rejected), 3),
                "mean_score_kept": None if mean_kept is None else round(float(mean_kept), 3),
            }
            for performer_id, applied, rejected, mean_rejected, mean_kept in rows
        ]

    def run_stats(self) -> list[dict[str, Any]]:
        rows = self.cache.query(
            """
SELECT r.id, r.mode, r.started, r.ended, r.tokens, r.errors, r.undone,
       (SELECT count(DISTINCT kind || ':' || item_id) FROM writes w WHERE w.run_id = r.id),
       (SELECT count(*) FROM writes w WHERE w.run_id = r.id AND w.had = 0 AND w.status = 0)
FROM runs r ORDER BY r.seq DESC LIMIT 100
"""
        )
        return [
            {
                "run": str(r[0]),
                "mode": str(r[1]),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(r[2]))),
                "finished": r[3] is not None,
                "items": int(r[7]),
                "tags": int(r[8]),
                "tokens": int(r[4]),
                "errors": int(r[5]),
                "undone": r[6] is not None,
            }
            for r in rows
        ]

    def learned(self, above: float = 0.0) -> list[Learned]:
        """Tags rejected often enough to raise their threshold above ``above`` (``minConfidence``): the
        lowest score keeping 90 % of rejections out. The one place that says which thresholds moved."""
        learned = []
        for stat in self.tag_stats():
            applied, rejected = int(stat["applied"]), int(stat["rejected"])
            if applied < LEARN_MIN_APPLIED or rejected / applied < LEARN_MIN_RATE:
                continue
            scores = sorted(
                float(r[0])
                for r in self.cache.query(
                    "SELECT score FROM rejections WHERE tag_id = ? AND score IS NOT NULL", (stat["tag_id"],)
                )
            )
            if not scores:
                continue
            highest_out = scores[math.ceil(LEARN_KEEP_OUT * len(scores)) - 1]
            threshold = min(LEARN_CEILING, math.floor(highest_out * 100 + 1) / 100)
            if threshold > above:
                learned.append(Learned(str(stat["tag_id"]), threshold, applied, rejected))
        return learned
