"""The task ``identify_performers``: performers recognised by face on items that have none.

No gateway and no tags: each scene's frames (the same frame plan as tagging) or image is read,
faces are matched against the face index (refreshed first), and performers that pass the
decision are added with one ``performer_ids`` ``ADD`` per item, journaled before it is sent, so
``undo_last`` takes back exactly them. An item already looked at with the same file and the same
index is not read again: a rerun costs one query per page and writes nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ai_tagger.analyze.faces.recognizer import Recognizer
from ai_tagger.decide.performers import PerformerDecision
from ai_tagger.errors import ItemError, StashError
from ai_tagger.log import Log
from ai_tagger.media.errors import MediaError
from ai_tagger.media.source import MediaOptions, shots
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import Item
from ai_tagger.store.cache import Cache
from ai_tagger.store.faces import PERFORMER, FaceStore, Source
from ai_tagger.store.journal import Journal, Write

MAX_LISTED = 200


def performer_write(performer_id: str) -> Write:
    return Write(f"{PERFORMER}{performer_id}", had=False)


@dataclass
class IdentifySummary:
    counts: Counter[str] = field(default_factory=Counter)
    listed: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def as_output(self) -> dict[str, Any]:
        return {
            "items": {kind: self.counts[f"{kind}s"] for kind in ("scene", "image")},
            "performers_added": self.counts["added"],
            "suggested": self.counts["suggested"],
            "unchanged": self.counts["unchanged"],
            "errors": self.counts["errors"],
            "dry_run": self.dry_run,
            "items_listed": self.listed,
        }


class Identify:
    def __init__(
        self,
        *,
        client: StashClient,
        cache: Cache,
        journal: Journal,
        settings: Settings,
        log: Log,
        ffmpeg: str,
        dry_run: bool,
    ) -> None:
        self.client = client
        self.journal = journal
        self.settings = settings
        self.log = log
        self.dry_run = dry_run
        self.store = FaceStore(cache)
        self.recognizer = Recognizer.open(client, cache, settings, log)
        self.stamp = f"{self.store.updated():.6f}|{settings.performer_threshold:g}|{settings.min_frames}"
        self.seen = {o: s for o, s in self.store.sources().items() if o.startswith("seen:")}
        self.media = MediaOptions(
            ffmpeg=ffmpeg,
            frames_per_scene=settings.frames_per_scene,
            max_side=max(settings.max_image_side, 768),
            headers=client.auth_headers,
            frame_interval=settings.frame_interval,
            max_frames=settings.max_frames_per_scene,
        )
        self.summary = IdentifySummary(dry_run=dry_run)

    def run(self, limit: int | None) -> IdentifySummary:
        run_id = None if self.dry_run else self.journal.begin("identify_performers")
        done = 0
        try:
            for kind in ("scene", "image"):
                for item in self.client.without_performers(kind):
                    if limit is not None and done >= limit:
                        break
                    done += self._item(item, run_id)
        finally:
            if run_id is not None:
                self.journal.end(run_id, tokens=0, errors=self.summary.counts["errors"])
        self.log.progress(1.0)
        c = self.summary.counts
        self.log.info(
            f"identify performers: {c['scenes']} scene(s) and {c['images']} image(s) read, {c['added']} "
            f"performer(s) {'would be ' if self.dry_run else ''}added, {c['suggested']} suggested for review, "
            f"{c['unchanged']} unchanged item(s) skipped"
        )
        return self.summary

    def _item(self, item: Item, run_id: str | None) -> int:
        origin = f"seen:{item.kind}:{item.id}"
        version = f"{item.file.fingerprint if item.file else ''}|{self.stamp}"
        before = self.seen.get(origin)
        if before is not None and before.version == version:
            self.summary.counts["unchanged"] += 1
            return 0
        try:
            pictures = shots(item, self.media, self.client.download).pictures
        except (MediaError, ItemError, StashError) as exc:
            self.log.warning(f"{item.label}: cannot read its pictures ({exc}); skipped")
            self.summary.counts["errors"] += 1
            return 1
        self.summary.counts[f"{item.kind}s"] += 1
        decision = self.recognizer.decide(item.kind, pictures)
        self._write(item, decision, run_id)
        if not self.dry_run:
            self.store.record(Source(origin, "", version, None, "seen"))
        return 1

    def _write(self, item: Item, decision: PerformerDecision, run_id: str | None) -> None:
        names = self.recognizer.names
        added = [v.performer_id for v in decision.applied]
        for verdict in decision.review:
            self.log.info(
                f"{item.label}: maybe {names.get(verdict.performer_id, verdict.performer_id)} "
                f"({verdict.score:.0%}); below Performer match, not added"
            )
        self.summary.counts["suggested"] += len(decision.review)
        if not added:
            return
        self.summary.counts["added"] += len(added)
        if len(self.summary.listed) < MAX_LISTED:
            self.summary.listed.append(
                {
                    "kind": item.kind,
                    "id": item.id,
                    "performers": [names.get(p, p) for p in added],
                    "scores": [v.score for v in decision.applied],
                }
            )
        shown = ", ".join(f"{names.get(v.performer_id, v.performer_id)} ({v.score:.0%})" for v in decision.applied)
        if self.dry_run or run_id is None:
            self.log.info(f"{item.label}: would add {shown}")
            return
        self.journal.intend(run_id, item.kind, item.id, [performer_write(p) for p in added])
        self.client.add_performers(item.kind, item.id, added, [])
        self.journal.done(run_id, item.kind, item.id)
        self.log.info(f"{item.label}: added {shown}")


def identify_performers(
    *,
    client: StashClient,
    cache: Cache,
    journal: Journal,
    settings: Settings,
    log: Log,
    ffmpeg: str,
    limit: int | None,
    dry_run: bool,
) -> dict[str, Any]:
    started = time.perf_counter()
    identify = Identify(
        client=client, cache=cache, journal=journal, settings=settings, log=log, ffmpeg=ffmpeg, dry_run=dry_run
    )
    output = identify.run(limit).as_output()
    output["seconds"] = round(time.perf_counter() - started, 2)
    return output
