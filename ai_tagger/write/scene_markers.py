"""Writing scene markers: planned in the cache before the scene's tag write, created after it.

The scene's one ``ADD`` mutation makes it "tagged", so a later run no longer picks it up. Its
markers are therefore recorded as ``planned`` before that write and created after it; a kill in
between leaves planned rows that the next writing run (or ``reapply``) finishes. A marker is
only created for a tag the scene has in Stash, never where the scene already has a marker with
the same primary tag overlapping it (anyone's), and never where the user deleted one of ours:
a created marker missing from Stash becomes ``rejected`` and its moment is not marked again.
Only markers the plugin created (rows in the ``markers`` table) are ever removed. The ledger is
the journal's SQLite file, which a run opens even with ``disableCache`` (that setting only stops
reusing model answers), so kill recovery holds there too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ai_tagger.decide.markers import Span
from ai_tagger.log import Log
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import SceneMarker, SceneMarks, TagRef
from ai_tagger.store.cache import Cache, MarkerRow

TagName = Callable[[str], str]


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour), as the Stash player shows times."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(span: Span) -> str:
    return f"{span.verdict.label} {clock(span.seconds)}-{clock(span.end_seconds)}"


def _as_marker(row: MarkerRow, marker_id: str = "") -> SceneMarker:
    return SceneMarker(
        id=marker_id, seconds=row.seconds, end_seconds=row.end_seconds, primary_tag=TagRef(id=row.tag_id)
    )


def _overlap(row: MarkerRow, tag_id: str, seconds: float, end_seconds: float | None) -> bool:
    return _as_marker(row).overlaps(tag_id, seconds, end_seconds)


class MarkerWriter:
    """Plans, creates and removes the plugin's scene markers; shared by all workers of a run."""

    def __init__(
        self, *, client: StashClient, cache: Cache, log: Log, tag_name: TagName, with_end: bool = True,
        run_id: str | None = None,
    ) -> None:  # fmt: skip
        self.client = client
        self.cache = cache
        self.log = log
        self.tag_name = tag_name
        self.with_end = with_end
        self.run_id = run_id

    def reserve(self, scene_id: str, spans: Sequence[tuple[str, Span]]) -> None:
        """Record ``(tag id, span)`` pairs as planned, replacing what an unfinished run planned here."""
        for row in self.cache.markers(scene_id):
            if row.state == "planned":
                self.cache.drop_marker(row.row)
        for tag_id, span in spans:
            end = span.end_seconds if self.with_end and span.end_seconds > span.seconds else None
            self.cache.plan_marker(scene_id, tag_id, span.seconds, end, self.run_id)

    def finish(self, scene_id: str) -> int:
        """Create the scene's planned markers that are still wanted; return how many were created."""
        rows = self.cache.markers(scene_id)
        planned = [row for row in rows if row.state == "planned"]
        if not planned:
            return 0
        marks = self.client.scene_marks(scene_id, with_end=self.with_end)
        if marks is None:
            for row in planned:
                self.cache.drop_marker(row.row)
            return 0
        rejected = self._reconcile(rows, marks)
        created = 0
        for row in planned:
            if (
                row.tag_id not in marks.tag_ids
                or any(_overlap(old, row.tag_id, row.seconds, row.end_seconds) for old in rejected)
                or any(m.overlaps(row.tag_id, row.seconds, row.end_seconds) for m in marks.markers)
            ):
                self.cache.drop_marker(row.row)
                continue
            marker_id = self.client.create_marker(
                scene_id, row.tag_id, self.tag_name(row.tag_id), row.seconds, row.end_seconds
            )
            self.cache.mark_created(row.row, marker_id)
            marks.markers.append(_as_marker(row, marker_id))
            created += 1
        return created

    def remove_stale(self, scene_id: str, applied_ids: Sequence[str]) -> int:
        """Delete the plugin's markers whose tag the scene no longer gets; return how many."""
        stale = [r for r in self.cache.markers(scene_id) if r.state == "created" and r.tag_id not in applied_ids]
        if not stale:
            return 0
        marks = self.client.scene_marks(scene_id, with_end=self.with_end)
        present = {m.id for m in marks.markers} if marks else set()
        gone = [r for r in stale if r.marker_id in present]
        self.client.destroy_markers([str(r.marker_id) for r in gone])
        for row in stale:
            self.cache.set_marker_state(row.row, "removed" if row in gone else "rejected")
        return len(gone)

    def finish_pending(self) -> int:
        """Finish every scene a killed run left with planned markers; return how many were created."""
        created = sum(self.finish(scene_id) for scene_id in self.cache.planned_scenes())
        if created:
            self.log.info(f"created {created} scene marker(s) an interrupted run had planned")
        return created

    def _reconcile(self, rows: Sequence[MarkerRow], marks: SceneMarks) -> list[MarkerRow]:
        """Created markers the user deleted become ``rejected``; return every rejected row."""
        present = {m.id for m in marks.markers}
        rejected = [row for row in rows if row.state == "rejected"]
        for row in rows:
            if row.state == "created" and row.marker_id not in present:
                self.cache.set_marker_state(row.row, "rejected")
                rejected.append(row)
        return rejected
