"""Applying a decision to one item: policy -> tag ids -> one write -> journal.

Each item ends in exactly one ``ADD`` mutation carrying its tags and its status tags together,
so a kill at any instant leaves the item either untouched or done. Re-applying adds what now
passes, then removes only tags this plugin applied before and no longer decides (never the
user's own tags), and keeps ``AI_Review`` in step.
"""

from __future__ import annotations

from ai_tagger.cache import Cache, JournalEntry
from ai_tagger.decide.decision import Decision, Policy, decide
from ai_tagger.decide.markers import Span, plan
from ai_tagger.errors import ItemError
from ai_tagger.gateway.base import TagAnswer
from ai_tagger.log import Log
from ai_tagger.markers import MarkerWriter, clock, describe
from ai_tagger.report import ItemResult
from ai_tagger.settings import STATUS_ERRORED, STATUS_REVIEW, STATUS_TAGGED
from ai_tagger.stash.client import StashClient
from ai_tagger.tagbook import TagBook


class Applier:
    """Decides and writes single items; shared by all workers of a run. ``dry_run`` writes nothing."""

    def __init__(
        self,
        *,
        client: StashClient,
        book: TagBook,
        policy: Policy,
        log: Log,
        cache: Cache | None,
        dry_run: bool,
        marker_tags: str = "",
        marker_end: bool = True,
    ) -> None:
        self.client = client
        self.book = book
        self.policy = policy
        self.log = log
        self.cache = cache
        self.dry_run = dry_run
        self.marker_tags = marker_tags
        self.markers = MarkerWriter(
            client=client,
            # Without the cache (disableCache) markers are still written, from a ledger in memory.
            cache=cache if cache is not None else Cache(None),
            log=log,
            tag_name=lambda tag_id: self.book.vocabulary.tags[tag_id].name,
            with_end=marker_end,
        )

    def _spans(self, kind: str, decision: Decision, answer: TagAnswer) -> list[Span]:
        """The markers the decision asks for: scenes whose answer kept its frames' times."""
        if kind != "scene" or not answer.times:
            return []
        return plan(decision, answer.times, self.marker_tags, self.policy.rules)

    def _reserve(self, item_id: str, spans: list[Span]) -> None:
        """Tag ids for the spans (their tags exist by now), recorded as planned before the tag write."""
        self.markers.reserve(item_id, [(self.book.ids_for([span.verdict])[0], span) for span in spans])

    def decide(self, answer: TagAnswer) -> Decision:
        return decide(answer.candidates, answer.frame_count, self.book.vocabulary, self.policy)

    def apply(self, kind: str, item_id: str, label: str, answer: TagAnswer) -> ItemResult:
        """Decide on a fresh or cached answer and write the item once."""
        decision = self.decide(answer)
        spans = self._spans(kind, decision, answer)
        result = ItemResult(
            kind, item_id, "preview", decision, usage=answer.usage, calls=answer.calls, cached=answer.cached,
            markers=_report(spans),
        )  # fmt: skip
        verb = "would tag " if self.dry_run else ""
        note = f"{label}: {verb}{', '.join(v.label for v in decision.applied) or 'no tag passed'}"
        if decision.review:
            note += f"; for review: {', '.join(v.label for v in decision.review)}"
        if spans:
            note += f"; markers: {', '.join(describe(span) for span in spans)}"
        if answer.usage.total_tokens:
            note += f" ({answer.usage.total_tokens} tokens)"
        elif answer.cached:
            note += " (cached answer)"
        self.log.debug(note)
        if self.dry_run:
            return result
        applied = self.book.ids_for(decision.applied)
        if kind == "scene":
            self._reserve(item_id, spans)
        self.client.add_tags(kind, item_id, applied + self._status_ids(decision))
        if spans:
            result.markers_created = self.markers.finish(item_id)
        self._journal(kind, item_id, answer.key, applied, decision)
        result.status = "tagged"
        return result

    def reapply(self, entry: JournalEntry, answer: TagAnswer) -> ItemResult:
        """Re-decide a processed item from its cached answer; drop only our own stale tags."""
        decision = self.decide(answer)
        spans = self._spans(entry.kind, decision, answer)
        status = "preview" if self.dry_run else "tagged"
        result = ItemResult(entry.kind, entry.id, status, decision, cached=True, markers=_report(spans))
        if self.dry_run:
            return result
        applied = self.book.ids_for(decision.applied)
        if entry.kind == "scene":
            self._reserve(entry.id, spans)
        self.client.add_tags(entry.kind, entry.id, applied + self._status_ids(decision))
        dropped = [tag_id for tag_id in entry.applied if tag_id not in applied]
        if entry.review and not decision.review:
            dropped.append(self.book.status_tag(STATUS_REVIEW).id)
        if dropped:
            self.client.remove_tags(entry.kind, entry.id, dropped)
        if entry.kind == "scene":
            self.markers.remove_stale(entry.id, applied)
            result.markers_created = self.markers.finish(entry.id)
        self._journal(entry.kind, entry.id, entry.answer_key, applied, decision)
        return result

    def failed(self, kind: str, item_id: str, label: str, error: ItemError) -> ItemResult:
        """Mark the item ``AI_Errored`` (unless a dry run) and report why."""
        self.log.error(f"{label}: {error}")
        if not self.dry_run:
            self.client.add_tags(kind, item_id, [self.book.status_tag(STATUS_ERRORED).id])
        return ItemResult(kind, item_id, "errored", error=str(error), failed_stage=error.stage)

    def _status_ids(self, decision: Decision) -> list[str]:
        """``AI_Tagged``, and ``AI_Review`` when the decision left suggestions for review."""
        names = [STATUS_TAGGED, STATUS_REVIEW] if decision.review else [STATUS_TAGGED]
        return [self.book.status_tag(name).id for name in names]

    def _journal(
        self, kind: str, item_id: str, answer_key: str | None, applied: list[str], decision: Decision
    ) -> None:
        if self.cache is not None:
            review = [{"tag": v.label, "score": round(v.score, 3)} for v in decision.review]
            self.cache.record(JournalEntry(kind, item_id, answer_key, "tagged", applied, review))


def _report(spans: list[Span]) -> list[dict[str, object]]:
    """Markers as the report lists them: tag, start and end in seconds, and ``m:ss-m:ss``."""
    return [{**s.describe(), "at": f"{clock(s.seconds)}-{clock(s.end_seconds)}"} for s in spans]
