"""The face index's tables in the cache's SQLite file: performers' face embeddings and what was read.

``performer_faces`` holds each performer's embeddings keyed by performer id and the checksum of the
picture the face came from: their own image (``origin`` ``performer``) or a scene or image where the
user set exactly that one performer (``origin`` ``scene:<id>`` / ``image:<id>``, at most
:data:`MAX_LEARNED` per performer, the newest kept). ``face_sources`` remembers what each picture
was when last read (and, under ``seen:<kind>:<id>``, which items were already searched for faces
with which file and index) (its ``image_path``, which Stash changes with the image, and its checksum), so an
unchanged index is re-read without downloading or embedding anything. Standard library only; numpy
is used by :mod:`ai_tagger.analyze.faces.index` once the rows are read.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ai_tagger.store.cache import FACES_SCHEMA, Cache

__all__ = ["FACES_SCHEMA", "FaceStore", "Source"]

DIMENSIONS = 128
MAX_LEARNED = 8
"""Faces learned from the library per performer: enough angles and lighting to help, few enough
that one wrongly assigned performer cannot outvote the performer's own image."""
_PACK = struct.Struct(f"<{DIMENSIONS}f")
STATES = ("indexed", "silhouette", "no_face", "corrupt", "skipped")


@dataclass(frozen=True)
class Source:
    """What a picture was when last read: ``version`` (the image URL, with its timestamp), checksum, outcome."""

    origin: str
    performer_id: str
    version: str
    checksum: str | None
    state: str


def pack(embedding: Sequence[float]) -> bytes:
    return _PACK.pack(*embedding)


def unpack(blob: bytes) -> tuple[float, ...]:
    return _PACK.unpack(blob)


class FaceStore:
    """The only writer of ``performer_faces`` and ``face_sources``."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def sources(self) -> dict[str, Source]:
        rows = self._cache.query("SELECT origin, performer_id, version, checksum, state FROM face_sources")
        return {row[0]: Source(*row) for row in rows}

    def record(self, source: Source, embedding: Sequence[float] | None = None) -> None:
        """Remember what ``source`` was; with ``embedding``, its face replaces the one it gave before."""
        now = time.time()
        statements: list[tuple[str, Sequence[object]]] = [
            ("DELETE FROM performer_faces WHERE origin = ?", (source.origin,)),
            (
                "INSERT OR REPLACE INTO face_sources VALUES (?, ?, ?, ?, ?, ?)",
                (source.origin, source.performer_id, source.version, source.checksum, source.state, now),
            ),
        ]
        if embedding is not None and source.checksum:
            statements.append(
                (
                    "INSERT OR REPLACE INTO performer_faces VALUES (?, ?, ?, ?, ?)",
                    (source.performer_id, source.checksum, source.origin, pack(embedding), now),
                )
            )
            if source.origin.split(":", 1)[0] != "performer":
                statements.append(
                    (
                        "DELETE FROM performer_faces WHERE performer_id = ? AND origin != ? AND rowid IN ("
                        " SELECT rowid FROM performer_faces WHERE performer_id = ? AND origin NOT LIKE 'performer:%'"
                        " ORDER BY updated DESC LIMIT -1 OFFSET ?)",
                        (source.performer_id, f"performer:{source.performer_id}", source.performer_id, MAX_LEARNED),
                    )
                )
        self._cache.transaction(statements)

    def touch(self, source: Source) -> None:
        """The picture's URL changed but not its bytes: remember the new URL, keep its face."""
        self._cache.transaction(
            [("UPDATE face_sources SET version = ? WHERE origin = ?", (source.version, source.origin))]
        )

    def forget(self, performer_ids: Sequence[str]) -> None:
        """Drop performers that no longer exist in Stash (deleted, or merged into another)."""
        statements: list[tuple[str, Sequence[object]]] = []
        for performer_id in performer_ids:
            statements.append(("DELETE FROM performer_faces WHERE performer_id = ?", (performer_id,)))
            statements.append(("DELETE FROM face_sources WHERE performer_id = ?", (performer_id,)))
        if statements:
            self._cache.transaction(statements)

    def performer_ids(self) -> set[str]:
        rows = self._cache.query("SELECT DISTINCT performer_id FROM face_sources WHERE origin NOT LIKE 'seen:%'")
        return {row[0] for row in rows}

    def embeddings(self) -> Iterator[tuple[str, bytes]]:
        """``(performer id, packed embedding)`` for every face, grouped by performer."""
        rows = self._cache.query("SELECT performer_id, embedding FROM performer_faces ORDER BY performer_id")
        yield from ((str(pid), bytes(blob)) for pid, blob in rows)

    def profile(self, performer_id: str) -> tuple[float, ...] | None:
        """The face from the performer's own image, if indexed."""
        rows = self._cache.query(
            "SELECT embedding FROM performer_faces WHERE performer_id = ? AND origin = ?",
            (performer_id, f"performer:{performer_id}"),
        )
        return unpack(rows[0][0]) if rows else None

    def updated(self) -> float:
        """When the index last changed (0 when empty): a run reloads it when this moved."""
        rows = self._cache.query("SELECT max(updated) FROM face_sources WHERE origin NOT LIKE 'seen:%'")
        return float(rows[0][0] or 0.0) if rows else 0.0
