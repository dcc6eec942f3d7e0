"""The task ``index_performers``: learn every performer's face from their image and from the library.

Each performer's image is fetched through Stash with the run's session (never a file path). What
it was when last read (its URL, which Stash changes with the image, then its checksum) decides
whether it is downloaded and embedded again, so an unchanged library re-indexes with one query.
Then faces are learned from the library: a scene (its screenshot) or image where the user set
exactly one performer and exactly one face is seen adds that face to the performer (bounded,
:data:`~ai_tagger.store.faces.MAX_LEARNED`), unless it is clearly someone else than the face of
their own image. Every skipped performer or item gets one log line naming it; the task goes on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ai_tagger.analyze.faces.engine import Embedder, Face, FaceEngine, FacesUnavailable, PictureError, face_boxes
from ai_tagger.analyze.faces.index import FaceIndex
from ai_tagger.deps import TASK_NAME
from ai_tagger.errors import RunError, StashError
from ai_tagger.log import Log
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import CastItem, Performer
from ai_tagger.store.cache import Cache
from ai_tagger.store.faces import FaceStore, Source

SAME_PERSON = 0.6
"""dlib's own limit: faces further apart than this are different people. A face learned from the
library must be within it of the performer's own face, so a mislabelled item teaches nothing."""

Boxes = Callable[[bytes], "list[tuple[int, int, int, int]] | None"]


class FacesMissing(RunError):
    """The face packages cannot be imported: nothing was read or marked."""


def load_engine(settings: Settings) -> Embedder:
    """The face engine (the sidecar's with ``faceServerUrl``), or :class:`FacesMissing` naming the
    task and the command that install it."""
    if settings.face_server_url:
        from ai_tagger.analyze.faces.remote import RemoteFaceEngine

        return RemoteFaceEngine(settings.face_server_url)
    try:
        return FaceEngine.load()
    except FacesUnavailable as exc:
        raise FacesMissing(
            f"{exc} (or run the task \"{TASK_NAME}\" with Recognize performers on); nothing was changed"
        ) from None


def nudenet_boxes(log: Log, settings: Settings | None = None) -> Boxes | None:
    """NudeNet's face boxes when the local model is installed: it finds faces (a head bent down)
    that dlib's HOG detector misses. None when it is not: dlib's detector alone is used."""
    from ai_tagger.analyze.local.detector import Detector, DetectorUnavailable
    from ai_tagger.analyze.local.detector import PictureError as DetectorPictureError

    if settings is not None and settings.face_server_url:
        return None  # the face server finds the faces itself

    try:
        detector = Detector.shared()
    except DetectorUnavailable:
        log.debug("the local model is not installed: faces are found with dlib's detector only")
        return None

    def boxes(picture: bytes) -> list[tuple[int, int, int, int]] | None:
        try:
            return face_boxes(detector.detect([picture])[0])
        except DetectorPictureError:
            return None

    return boxes


def find_faces(engine: Embedder, boxes: Boxes | None, picture: bytes) -> list[Face]:
    """Faces by NudeNet's boxes, else by dlib's detector: a still picture is worth both looks."""
    found = engine.faces(picture, boxes(picture) or None) if boxes else []
    return found or engine.faces(picture)


@dataclass
class IndexSummary:
    performers: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    learned: int = 0

    def as_output(self) -> dict[str, Any]:
        return {"performers": self.performers, **dict(sorted(self.counts.items())), "learned": self.learned}


class PerformerIndexer:
    def __init__(self, client: StashClient, cache: Cache, log: Log, engine: Embedder, boxes: Boxes | None) -> None:
        self.client = client
        self.store = FaceStore(cache)
        self.log = log
        self.engine = engine
        self.boxes = boxes
        self.summary = IndexSummary()
        self.names: dict[str, str] = {}

    def run(self, *, learn: bool = True) -> IndexSummary:
        performers = list(self.client.performers())
        self.names = {p.id: p.name for p in performers}
        self.summary.performers = len(performers)
        sources = self.store.sources()
        gone = sorted(self.store.performer_ids() - set(self.names))
        if gone:
            self.store.forget(gone)
            self.log.info(f"forgot the faces of {len(gone)} performer(s) no longer in Stash")
        for number, performer in enumerate(performers, 1):
            self.summary.counts[self._index(performer, sources.get(f"performer:{performer.id}"))] += 1
            self.log.progress(number / max(1, len(performers)) * (0.5 if learn else 1.0))
        if learn:
            for kind in ("scene", "image"):
                for item in self.client.cast(kind, 1):
                    self._learn(item, sources)
        self.log.progress(1.0)
        counts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(self.summary.counts.items()))
        self.log.info(
            f"face index: {len(performers)} performer(s) ({counts or 'none'}); "
            f"{self.summary.learned} face(s) learned from the library"
        )
        return self.summary

    def _named(self, performer_id: str) -> str:
        return f"performer {self.names.get(performer_id, '?')!r} (id {performer_id})"

    def _index(self, performer: Performer, before: Source | None) -> str:
        origin, named = f"performer:{performer.id}", self._named(performer.id)
        version = performer.image_path or ""
        if before is not None and before.version == version:
            return "unchanged"
        if not performer.has_image:
            self.log.info(f"{named}: no image (Stash shows a silhouette); skipped")
            self.store.record(Source(origin, performer.id, version, None, "silhouette"))
            return "silhouette"
        try:
            picture = self.client.download(version)
        except StashError as exc:
            self.log.warning(f"{named}: cannot fetch the image ({exc}); skipped, tried again next time")
            return "failed"
        checksum = hashlib.sha256(picture).hexdigest()
        if before is not None and before.checksum == checksum:
            self.store.touch(Source(origin, performer.id, version, checksum, before.state))
            return "unchanged"
        try:
            faces = find_faces(self.engine, self.boxes, picture)
        except PictureError as exc:
            self.log.warning(f"{named}: the image is not a picture the plugin can read ({exc}); skipped")
            self.store.record(Source(origin, performer.id, version, checksum, "corrupt"))
            return "corrupt"
        if not faces:
            self.log.info(f"{named}: no face found in the image; skipped")
            self.store.record(Source(origin, performer.id, version, checksum, "no_face"))
            return "no_face"
        if len(faces) > 1:
            self.log.info(f"{named}: {len(faces)} faces in the image; kept the largest")
        self.store.record(Source(origin, performer.id, version, checksum, "indexed"), faces[0].embedding)
        return "indexed" if len(faces) == 1 else "several_faces"

    def _learn(self, item: CastItem, sources: dict[str, Source]) -> None:
        if len(item.performers) != 1 or not item.picture:
            return
        performer_id = item.performers[0].id
        origin = f"{item.kind}:{item.id}"
        version = f"{performer_id}|{item.picture}"
        before = sources.get(origin)
        if before is not None and before.version == version:
            return
        where = f"{item.kind} {item.id}"
        try:
            picture = self.client.download(item.picture)
            faces = find_faces(self.engine, self.boxes, picture)
        except (StashError, PictureError) as exc:
            self.log.info(f"{where}: cannot learn {self._named(performer_id)}'s face from it ({exc})")
            return
        checksum = hashlib.sha256(picture).hexdigest()
        if len(faces) != 1:
            self.store.record(Source(origin, performer_id, version, checksum, "skipped"))
            return
        own = self.store.profile(performer_id)
        if own is not None and _distance(own, faces[0].embedding) > SAME_PERSON:
            self.log.info(f"{where}: the face seen is not {self._named(performer_id)}'s; not learned")
            self.store.record(Source(origin, performer_id, version, checksum, "skipped"))
            return
        self.store.record(Source(origin, performer_id, version, checksum, "indexed"), faces[0].embedding)
        self.summary.learned += 1


def _distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5)


def load_index(cache: Cache) -> FaceIndex:
    return FaceIndex.build(FaceStore(cache).embeddings())


def index_performers(client: StashClient, cache: Cache, settings: Settings, log: Log) -> dict[str, Any]:
    """The task: refresh the face index from Stash; the output counts performers by outcome."""
    engine = load_engine(settings)
    summary = PerformerIndexer(client, cache, log, engine, nudenet_boxes(log, settings)).run()
    return summary.as_output()
