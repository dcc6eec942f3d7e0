"""The task ``identify_performers``: performers recognised by face on items that have none.

No gateway and no tags: each scene's frames (the same frame plan as tagging) or image is read,
faces are matched against the face index (refreshed first), and the same pure decision as the
tagging pass (:func:`~ai_tagger.decide.item.decide_performers`) says which performers to add.
They go in one ``performer_ids`` ``ADD`` per item, journaled before it is sent, so ``undo_last``
takes back exactly them and a performer the user removed is never added again. An item already
searched with the same file and the same index is not read again: a rerun reads and writes nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ai_tagger.analyze.faces.recognizer import Recognizer
from ai_tagger.decide.decision import APPLY, REVIEW, Policy
from ai_tagger.decide.item import Inputs, PerformerVerdict, decide_performers
from ai_tagger.errors import ItemError, MediaError, StashError
from ai_tagger.media.source import ItemMedia, MediaOptions
from ai_tagger.stash.models import Item, ItemState, ItemUpdate
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.faces import FaceStore, Source
from ai_tagger.store.journal import Field, FieldWrite
from ai_tagger.tasks.context import RunContext

MAX_LISTED = 200


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
    def __init__(self, context: RunContext) -> None:
        client, cache, settings, log = context.client, context.cache, context.settings, context.log
        self.client = client
        self.journal = context.journal
        self.log = log
        self.dry_run = context.dry_run
        self.store = FaceStore(cache)
        self.recognizer = Recognizer.open(client, cache, settings, log)
        self.policy = Policy.from_settings(settings)
        self.vocabulary = Vocabulary([])
        self.stamp = f"{self.store.updated():.6f}|{settings.performer_threshold:g}|{settings.min_frames}"
        self.seen = {o: s for o, s in self.store.sources().items() if o.startswith("seen:")}
        self.media = MediaOptions.from_settings(settings, ffmpeg=context.ffmpeg, headers=client.auth_headers)
        self._slots = threading.BoundedSemaphore(1)
        self.summary = IdentifySummary(dry_run=context.dry_run)

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
            f"performer(s) {'would be ' if self.dry_run else ''}added, {c['suggested']} below the threshold "
            f"(review), {c['unchanged']} unchanged item(s) skipped"
        )
        return self.summary

    def _fetch(self, url: str) -> bytes:
        try:
            return self.client.download(url)
        except StashError as exc:
            raise MediaError(str(exc)) from None

    def _item(self, item: Item, run_id: str | None) -> int:
        origin = f"seen:{item.kind}:{item.id}"
        version = f"{item.file.fingerprint if item.file else ''}|{self.stamp}"
        before = self.seen.get(origin)
        if before is not None and before.version == version:
            self.summary.counts["unchanged"] += 1
            return 0
        try:
            pictures = ItemMedia(item, self.media, self._fetch, self._slots).shots().pictures
        except ItemError as exc:
            self.log.warning(f"{item.label}: cannot read its pictures ({exc}); skipped")
            self.summary.counts["errors"] += 1
            return 1
        self.summary.counts[f"{item.kind}s"] += 1
        now = ItemState(performer_ids=set(item.performer_ids))
        rejected = self.journal.rejected(item.kind, item.id, now) if not self.dry_run else set()
        inputs = Inputs(
            policy=self.policy,
            vocabulary=self.vocabulary,
            current_performers=frozenset(item.performer_ids),
            rejected=frozenset(rejected),
        )
        verdicts = decide_performers(self.recognizer.finding(item.kind, pictures), inputs)
        self._write(item, verdicts, run_id)
        if not self.dry_run:
            self.store.record(Source(origin, "", version, None, "seen"))
        return 1

    def _write(self, item: Item, verdicts: list[PerformerVerdict], run_id: str | None) -> None:
        applied = [v for v in verdicts if v.outcome == APPLY]
        for verdict in verdicts:
            if verdict.outcome == REVIEW:
                self.summary.counts["suggested"] += 1
                self.log.info(f"{item.label}: maybe {verdict.name} ({verdict.confidence:.0%}); not added")
        if not applied:
            return
        self.summary.counts["added"] += len(applied)
        if len(self.summary.listed) < MAX_LISTED:
            self.summary.listed.append(
                {"kind": item.kind, "id": item.id, "performers": [v.describe() for v in applied]}
            )
        shown = ", ".join(f"{v.name} ({v.confidence:.0%})" for v in applied)
        if self.dry_run or run_id is None:
            self.log.info(f"{item.label}: would add {shown}")
            return
        fields = tuple(
            FieldWrite(Field.PERFORMER, v.performer_id, had=False, score=v.confidence, rule=v.rule) for v in applied
        )
        self.journal.intend(run_id, item.kind, item.id, [], fields)
        self.client.update_item(item.kind, item.id, ItemUpdate(add_performers=tuple(v.performer_id for v in applied)))
        self.journal.done(run_id, item.kind, item.id)
        self.log.info(f"{item.label}: added {shown}")


def identify_performers(context: RunContext) -> dict[str, Any]:
    """The task: recognise performers on every item without one (``limit`` items at most)."""
    started = time.perf_counter()
    output = Identify(context).run(context.limit).as_output()
    output["seconds"] = round(time.perf_counter() - started, 2)
    return output
