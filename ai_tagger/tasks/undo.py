"""Taking back what tagging runs added: ``undo_last`` (the latest run) and ``remove_ai`` (every run).

Driven by the provenance journal, never by tag names: per item, the tags the runs added that the
item did not have before, and that it still has now (a tag the user removed, merged or deleted
is simply not there), go in one ``REMOVE`` mutation with the performers the runs added and the
description they wrote (cleared only while it is still exactly the plugin's text); the user's
own tags, performers and text, including ones added since, are never named. Then the markers
the runs created (issue 11's ``markers`` table) and the tags they created, once nothing uses
them. Each step is journaled as it completes, and a run is marked undone only after its last
step, so a killed undo is finished by running it again.
A dry run lists what would go and changes nothing, not even the journal.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ai_tagger.log import Log
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import ItemState, ItemUpdate
from ai_tagger.store.cache import Cache
from ai_tagger.store.journal import STATUS_BY_NAME, Field, Journal
from ai_tagger.tasks.modes import UNDOABLE, Mode
from ai_tagger.write.result import MAX_REPORTED_ITEMS

PAGE = 100
"""Items read from Stash in one query, as the journal pages them."""


@dataclass
class UndoSummary:
    mode: str
    dry_run: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    items: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    untagged_again: int = 0
    listed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_output(self) -> dict[str, Any]:
        verb = "would_remove" if self.dry_run else "removed"
        return {
            "mode": self.mode,
            "dry_run": self.dry_run,
            "runs": self.runs,
            "items": {"scene": self.items["scene"], "image": self.items["image"]},
            verb: {
                "tags": self.removed["tags"],
                "status_tags": self.removed["status_tags"],
                "markers": self.removed["markers"],
                "created_tags": self.removed["created_tags"],
                # Only when there were any, so the output of a tags-only library stays as it was.
                **{k: self.removed[k] for k in ("performers", "details") if self.removed[k]},
            },
            "untagged_again": self.untagged_again,
            "notes": self.notes[:MAX_REPORTED_ITEMS],
            "listed" if self.dry_run else "items_changed": self.listed,
        }


class Undo:
    def __init__(
        self, mode: Mode, *, client: StashClient, journal: Journal, cache: Cache, log: Log, dry_run: bool
    ) -> None:
        self.mode = mode
        self.client = client
        self.journal = journal
        self.cache = cache
        self.log = log
        self.dry_run = dry_run
        self.summary = UndoSummary(mode.name, dry_run)
        self.names: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def run(self) -> UndoSummary:
        runs = self.journal.runs(UNDOABLE)
        if not self.mode.undo_all:
            runs = runs[:1]
        summary = self.summary
        summary.runs = [{"run": r.id, "mode": r.mode, "finished": r.ended is not None} for r in runs]
        if not runs:
            self.log.info(f"{self.mode.name}: no tagging run left to undo")
            return summary
        run_ids = [r.id for r in runs]
        self.names = {tag.id: tag.name for tag in self.client.all_tags()}
        self.ids = {name: tag_id for tag_id, name in self.names.items()}
        what = "every run" if self.mode.undo_all else f"run {runs[0].id} ({runs[0].mode})"
        self.log.info(f"{self.mode.name}: {'listing what would be removed from' if self.dry_run else 'undoing'} {what}")
        self._items(run_ids)
        self._markers(None if self.mode.undo_all else run_ids)
        self._created_tags(run_ids)
        if not self.dry_run:
            self.journal.run_undone(run_ids)
        verb = "would remove" if self.dry_run else "removed"
        self.log.info(
            f"{self.mode.name}: {verb} {summary.removed['tags']} tag(s), {summary.removed['status_tags']} status "
            f"tag(s) from {summary.items['scene']} scene(s) and {summary.items['image']} image(s), "
            f"{summary.removed['markers']} marker(s), {summary.removed['created_tags']} created tag(s)"
        )
        return summary

    def _resolve(self, tag_id: str) -> str:
        if tag_id.startswith(STATUS_BY_NAME):
            return self.ids.get(tag_id.removeprefix(STATUS_BY_NAME), tag_id)
        return tag_id

    def _name(self, tag_id: str) -> str:
        return self.names.get(tag_id, f"tag {tag_id}")

    def _items(self, run_ids: list[str]) -> None:
        total = self.journal.pending_count(run_ids) or 1
        seen = 0
        for kind, ids in self.journal.pending_items(run_ids, PAGE):
            current = self.client.current(kind, ids)
            for item_id in ids:
                self._item(run_ids, kind, item_id, current.get(item_id))
            seen += len(ids)
            self.log.progress(min(seen / total, 1.0) * 0.9)

    def _item(self, run_ids: list[str], kind: str, item_id: str, now: ItemState | None) -> None:
        added = {self._resolve(t): status for t, status in self.journal.added(run_ids, kind, item_id).items()}
        if now is None:
            self.summary.notes.append(f"{kind} {item_id}: deleted in Stash since the run; skipped")
        else:
            tags = now.tag_ids
            remove = [tag_id for tag_id in added if tag_id in tags]
            fields = self.journal.added_fields(run_ids, kind, item_id)
            performers = [v for f, v in fields if f == Field.PERFORMER and v in now.performer_ids]
            ours = any(f == Field.DETAILS and v == now.details for f, v in fields)
            update = ItemUpdate(remove_tags=tuple(remove), remove_performers=tuple(performers),
                                details="" if ours else None)  # fmt: skip
            if update:
                self.summary.items[kind] += 1
                status = sum(added[t] for t in remove)
                self.summary.removed["status_tags"] += status
                self.summary.removed["tags"] += len(remove) - status
                self.summary.removed["performers"] += len(performers)
                self.summary.removed["details"] += ours
                self.summary.untagged_again += bool(remove) and not tags - set(remove)
                if len(self.summary.listed) < MAX_REPORTED_ITEMS:
                    row: dict[str, Any] = {"kind": kind, "id": item_id, "tags": [self._name(t) for t in remove]}
                    if performers:
                        row["performers"] = performers
                    if ours:
                        row["details"] = True
                    self.summary.listed.append(row)
                if not self.dry_run:
                    self.client.update_item(kind, item_id, update)
        if not self.dry_run:
            self.journal.undone_item(run_ids, kind, item_id)

    def _markers(self, run_ids: list[str] | None) -> None:
        by_scene: dict[str, list[str]] = {}
        for scene_id, marker_id in self.cache.created_marker_ids(run_ids):
            by_scene.setdefault(scene_id, []).append(marker_id)
        scene_ids = list(by_scene)
        current: dict[str, ItemState] = {}
        for start in range(0, len(scene_ids), PAGE):  # one query a page of scenes, not one per scene
            current.update(self.client.current("scene", scene_ids[start : start + PAGE]))
        for scene_id, marker_ids in by_scene.items():
            scene = current.get(scene_id)
            existing = [m for m in marker_ids if scene is not None and m in scene.marker_ids]
            self.summary.removed["markers"] += len(existing)
            if self.dry_run:
                continue
            if existing:
                self.client.destroy_markers(existing)
            for marker_id in marker_ids:  # one deleted by hand or with its scene: nothing to do
                self.cache.marker_removed(marker_id)

    def _created_tags(self, run_ids: list[str]) -> None:
        """Tags the runs created, newest first (children before the parent), once nothing uses them."""
        for _, tag_id, name in self.journal.created_tags(run_ids):
            usage = self.client.tag_usage([tag_id]).get(tag_id)
            if usage is None:
                if not self.dry_run:
                    self.journal.tag_deleted(tag_id)
                continue
            if self.dry_run:
                if len(self.summary.listed) < MAX_REPORTED_ITEMS:
                    self.summary.listed.append({"created_tag": name, "deleted_if_unused": True})
                continue
            if usage > 0:
                self.summary.notes.append(f"tag {name!r}: created by the run but still used ({usage}); kept")
                continue
            self.client.destroy_tag(tag_id)
            self.journal.tag_deleted(tag_id)
            self.summary.removed["created_tags"] += 1
