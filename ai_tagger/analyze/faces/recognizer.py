"""Recognise performers in an item's pictures: faces found, embedded and matched against the index.

One :class:`Recognizer` per run: the engine's models and the index load once. It refreshes the
index first (one query when nothing changed, only changed performers' images read again), so a
performer added or re-photographed in Stash is known before the first item. Pictures are the
same frames the tagging pass extracted; faces come from NudeNet's boxes when they are given (the
local provider already ran it) or the local detector is installed, else dlib's HOG detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ai_tagger.analyze.base import PerformerFinding, PerformerMatch
from ai_tagger.analyze.faces.engine import Embedder, FaceMemo, PictureError, face_boxes
from ai_tagger.analyze.faces.index import FaceIndex, Match
from ai_tagger.log import Log
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.store.cache import Cache


@dataclass
class Recognizer:
    engine: Embedder
    index: FaceIndex
    boxes: Any
    settings: Settings
    names: dict[str, str]

    @classmethod
    def open(cls, client: StashClient, cache: Cache, settings: Settings, log: Log) -> Recognizer:
        """Load the models, refresh the face index from Stash and load it (:class:`FacesMissing` if
        the packages are absent: nothing was written)."""
        from ai_tagger.analyze.faces.indexer import PerformerIndexer, load_engine, load_index, nudenet_boxes

        engine = load_engine(settings)
        boxes = nudenet_boxes(log, settings)
        indexer = PerformerIndexer(client, cache, log, engine, boxes)
        indexer.run(learn=False)
        index = load_index(cache)
        if not len(index):
            log.warning(
                "no performer has a face in the index: give performers an image with their face "
                "(the task Index performer faces says which were skipped and why)"
            )
        return cls(engine, index, boxes, settings, dict(indexer.names))

    @property
    def floor(self) -> float:
        review = self.settings.performer_review
        return self.settings.performer_match if review is None else min(review, self.settings.performer_match)

    def matches(
        self, pictures: Sequence[bytes], detections: Sequence[Sequence[dict[str, Any]]] | None = None
    ) -> list[list[Match]]:
        """Each picture's faces matched to performers (past the ambiguity margin and the lowest floor)."""
        found: list[list[Match]] = []
        memo = FaceMemo()
        for number, picture in enumerate(pictures):
            if detections is not None:
                boxes: list[tuple[int, int, int, int]] | None = face_boxes(detections[number])
            else:
                boxes = self.boxes(picture) if self.boxes else None
            try:
                faces = self.engine.faces(picture, boxes, memo)
            except PictureError:
                faces = []
            frame = [m for m in (self.index.match(face.embedding, self.floor) for face in faces) if m is not None]
            found.append(frame)
        return found

    def finding(
        self,
        kind: str,
        pictures: Sequence[bytes],
        detections: Sequence[Sequence[dict[str, Any]]] | None = None,
    ) -> PerformerFinding:
        """The performers seen in the item's pictures, for the item's decision."""
        return PerformerFinding(per_performer(self.matches(pictures, detections), self.names, self.needed(kind)))

    def needed(self, kind: str) -> int:
        """Frames a performer must be matched in: ``minFrames`` for a scene, one for an image."""
        return 1 if kind == "image" else max(1, self.settings.min_frames)


def per_performer(
    frames: Sequence[Sequence[Match]], names: dict[str, str], needed: int
) -> tuple[PerformerMatch, ...]:
    """One match per performer seen in at least ``needed`` frames. Its confidence is its score in
    its ``needed``-th best frame: at or above a threshold exactly when that many frames are."""
    scores: dict[str, dict[int, float]] = {}
    for number, matches in enumerate(frames, 1):
        for match in matches:
            seen = scores.setdefault(match.performer_id, {})
            seen[number] = max(seen.get(number, 0.0), match.score)
    found = []
    for performer_id, by_frame in scores.items():
        if len(by_frame) < needed:
            continue
        confidence = sorted(by_frame.values(), reverse=True)[needed - 1]
        name = names.get(performer_id, f"performer {performer_id}")
        found.append(PerformerMatch(performer_id, name, round(confidence, 4), tuple(sorted(by_frame))))
    return tuple(sorted(found, key=lambda m: (-m.confidence, m.performer_id)))
