"""Writing one item's decision: the user's rejections in -> one pure decision -> one write -> journal.

Each item ends in exactly one mutation carrying its tags, performers, description and status
tags together, so a kill at any instant leaves the item either untouched or done. The
provenance journal records each of them before the mutation (with whether the item already had
it and the decision behind it), so undo can take back exactly what a run added. What the
plugin added that is gone from the item now (a tag or performer removed, its description
changed) was taken back by the user: it is recorded as a rejection and never written to that
item again. Re-applying adds what now passes, removes only tags this plugin added and no
longer decides (never the user's own tags), and keeps ``AI_Review`` in step.
"""

from __future__ import annotations

from collections.abc import Sequence

from ai_tagger.analyze.base import Findings, usage_of
from ai_tagger.analyze.gateway.base import TagAnswer
from ai_tagger.decide.decision import REVIEW, Decision, Policy, Verdict
from ai_tagger.decide.item import Inputs, ItemDecision, PerformerVerdict, SuggestionKind, decide_item
from ai_tagger.decide.markers import Span, plan
from ai_tagger.errors import ItemError
from ai_tagger.log import Log
from ai_tagger.settings import STATUS_ERRORED, STATUS_REVIEW, STATUS_TAGGED
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import ItemState, ItemUpdate
from ai_tagger.store.cache import Cache, ItemRecord
from ai_tagger.store.journal import Field, FieldWrite, Journal, Write
from ai_tagger.write.result import ItemResult, ItemStatus
from ai_tagger.write.scene_markers import MarkerWriter, clock, describe
from ai_tagger.write.tagbook import TagBook


class Applier:
    """Decides and writes single items; shared by all workers of a run. ``dry_run`` writes nothing."""

    def __init__(
        self,
        *,
        client: StashClient,
        book: TagBook,
        policy: Policy,
        log: Log,
        cache: Cache,
        dry_run: bool,
        marker_tags: str = "",
        marker_end: bool = True,
        journal: Journal | None = None,
        run_id: str | None = None,
    ) -> None:
        self.client = client
        self.book = book
        self.policy = policy
        self.log = log
        self.cache = cache
        self.dry_run = dry_run
        self.journal = journal
        self.run_id = run_id
        self.marker_tags = marker_tags
        self.markers = MarkerWriter(
            client=client,
            cache=cache,
            log=log,
            tag_name=lambda tag_id: self.book.vocabulary.tags[tag_id].name,
            with_end=marker_end,
            run_id=run_id,
        )

    def _spans(self, kind: str, decision: Decision, answer: TagAnswer | None) -> list[Span]:
        """The markers the decision asks for: scenes whose answer kept its frames' times."""
        if kind != "scene" or answer is None or not answer.times:
            return []
        return plan(decision, answer.times, self.marker_tags, self.policy.rules)

    def _reserve(self, item_id: str, spans: list[Span]) -> None:
        """Tag ids for the spans (their tags exist by now), recorded as planned before the tag write."""
        self.markers.reserve(item_id, [(self.book.ids_for([span.verdict])[0], span) for span in spans])

    def inputs(self, kind: str, item_id: str, now: ItemState) -> Inputs:
        """The decision's inputs; the user's rejections found since the last run are journaled here."""
        rejected = self.journal.rejected(kind, item_id, now) if self.journal is not None else set()
        return Inputs(
            policy=self.policy,
            vocabulary=self.book.vocabulary,
            current_tags=frozenset(now.tag_ids),
            current_performers=frozenset(now.performer_ids),
            details=now.details,
            rejected=frozenset(rejected),
        )

    def apply(self, kind: str, item_id: str, label: str, findings: Findings, now: ItemState) -> ItemResult:
        """Decide on fresh or cached findings and write the item once; ``now``: what it holds in Stash."""
        decision = decide_item(findings, self.inputs(kind, item_id, now))
        answer = findings.get(TagAnswer)
        spans = self._spans(kind, decision.tags, answer)
        usage, calls = usage_of(findings)
        result = ItemResult(
            kind, item_id, ItemStatus.PREVIEW, decision.tags, usage=usage, calls=calls,
            cached=answer is not None and answer.cached, markers=_report(spans), performers=decision.performers,
            description=decision.description,
        )  # fmt: skip
        self._say(label, decision, spans, answer, usage.total_tokens)
        if self.dry_run:
            return result
        if kind == "scene":
            self._reserve(item_id, spans)
        writes, fields = self._plan(decision, now)
        self._send(kind, item_id, writes, fields)
        if spans:
            result.markers_created = self.markers.finish(item_id)
        result.details_written = decision.details is not None
        self._journal(kind, item_id, answer.key if answer else None, _owned(writes, []), decision)
        result.status = ItemStatus.TAGGED
        return result

    def _say(
        self, label: str, decision: ItemDecision, spans: list[Span], answer: TagAnswer | None, tokens: int
    ) -> None:
        verb = "would tag " if self.dry_run else ""
        tags = decision.tags
        note = f"{label}: {verb}{', '.join(v.label for v in tags.applied) or 'no tag passed'}"
        if tags.review:
            note += f"; for review: {', '.join(v.label for v in tags.review)}"
        performers = [p.name for p in decision.performers if p.applied]
        if performers:
            note += f"; performers: {', '.join(performers)}"
        if decision.details is not None:
            note += "; description written" if not self.dry_run else "; would write the description"
        if spans:
            note += f"; markers: {', '.join(describe(span) for span in spans)}"
        if tokens:
            note += f" ({tokens} tokens)"
        elif answer is not None and answer.cached:
            note += " (cached answer)"
        self.log.debug(note)

    def reapply(self, entry: ItemRecord, findings: Findings) -> ItemResult:
        """Re-decide a processed item from its cached findings; drop only our own stale tags."""
        now = self.client.current(entry.kind, [entry.id]).get(entry.id)
        if now is None:
            self.log.info(f"{entry.kind} {entry.id}: deleted in Stash since it was tagged; skipped")
            return ItemResult(entry.kind, entry.id, ItemStatus.SKIPPED, error="deleted in Stash")
        decision = decide_item(findings, self.inputs(entry.kind, entry.id, now))
        answer = findings.get(TagAnswer)
        spans = self._spans(entry.kind, decision.tags, answer)
        status = ItemStatus.PREVIEW if self.dry_run else ItemStatus.TAGGED
        result = ItemResult(
            entry.kind, entry.id, status, decision.tags, cached=True, markers=_report(spans),
            performers=decision.performers, description=decision.description,
        )  # fmt: skip
        if self.dry_run:
            return result
        if entry.kind == "scene":
            self._reserve(entry.id, spans)
        writes, fields = self._plan(decision, now)
        applied = {w.tag_id for w in writes if w.verdict is not None}
        current = now.tag_ids
        dropped = [tag_id for tag_id in entry.applied if tag_id not in applied and tag_id in current]
        if entry.review and not decision.review:
            review = self.book.status_tag(STATUS_REVIEW).id
            dropped += [review] if review in current else []
        self._send(entry.kind, entry.id, writes, fields, remove=dropped)
        if dropped and self.journal is not None:
            self.journal.dropped(entry.kind, entry.id, dropped)
        result.details_written = decision.details is not None
        if entry.kind == "scene":
            self.markers.remove_stale(entry.id, sorted(applied))
            result.markers_created = self.markers.finish(entry.id)
        self._journal(entry.kind, entry.id, entry.answer_key, _owned(writes, entry.applied), decision)
        return result

    def failed(self, kind: str, item_id: str, label: str, error: ItemError, current: set[str]) -> ItemResult:
        """Mark the item ``AI_Errored`` (unless a dry run) and report why."""
        self.log.error(f"{label}: {error}")
        if not self.dry_run:
            errored = self.book.status_tag(STATUS_ERRORED).id
            self._send(kind, item_id, [Write(errored, errored in current)], ())
        return ItemResult(kind, item_id, ItemStatus.ERRORED, error=str(error), failed_stage=error.stage)

    def _plan(self, decision: ItemDecision, now: ItemState) -> tuple[list[Write], tuple[FieldWrite, ...]]:
        """The tags (with the status tags), performers and description the decision writes."""
        writes: dict[str, Write] = {}
        for verdict in decision.tags.applied:
            for tag_id in self.book.ids_for([verdict]):
                writes.setdefault(tag_id, Write(tag_id, tag_id in now.tag_ids, verdict))
        names = [STATUS_TAGGED, STATUS_REVIEW] if decision.review else [STATUS_TAGGED]
        for name in names:
            tag_id = self.book.status_tag(name).id
            writes.setdefault(tag_id, Write(tag_id, tag_id in now.tag_ids))
        fields = [
            FieldWrite(Field.PERFORMER, p.performer_id, p.performer_id in now.performer_ids, p.confidence, p.rule)
            for p in decision.performers
            if p.applied
        ]
        if decision.details is not None:
            fields.append(FieldWrite(Field.DETAILS, decision.details))
        return list(writes.values()), tuple(fields)

    def _send(
        self, kind: str, item_id: str, writes: list[Write], fields: tuple[FieldWrite, ...], remove: Sequence[str] = ()
    ) -> None:
        """The one mutation, journaled before (intent) and after (done)."""
        journal, run_id = self.journal, self.run_id
        if journal is not None and run_id is not None:
            journal.intend(run_id, kind, item_id, writes, fields)
        details = [f.value for f in fields if f.field == Field.DETAILS]
        update = ItemUpdate(
            add_tags=tuple(w.tag_id for w in writes),
            remove_tags=tuple(remove),
            add_performers=tuple(f.value for f in fields if f.field == Field.PERFORMER),
            details=details[0] if details else None,
        )
        self.client.update_item(kind, item_id, update)
        if journal is not None and run_id is not None:
            journal.done(run_id, kind, item_id)

    def _journal(
        self, kind: str, item_id: str, answer_key: str | None, applied: list[str], decision: ItemDecision
    ) -> None:
        review = [suggestion(v) for v in decision.tags.review]
        review += [performer_suggestion(p) for p in decision.performers if p.outcome == REVIEW]
        self.cache.record(ItemRecord(kind, item_id, answer_key, str(ItemStatus.TAGGED), applied, review))


def suggestion(verdict: Verdict) -> dict[str, object]:
    """A review-tier verdict as the review page lists it (kept in the cache's ``items.review``)."""
    described = verdict.describe()
    return {
        "kind": str(SuggestionKind.TAG),
        "tag": verdict.label,
        "tag_id": verdict.tag.id if verdict.tag else None,
        "score": round(verdict.score, 3),
        "confidence": described["confidence"],
        "frames": described["frames"],
        "rule": verdict.rule,
    }


def performer_suggestion(verdict: PerformerVerdict) -> dict[str, object]:
    """A performer for review, kept with the tag suggestions under ``kind: performer``."""
    return {
        "kind": str(SuggestionKind.PERFORMER),
        "performer_id": verdict.performer_id,
        "name": verdict.name,
        "score": round(verdict.confidence, 3),
        "confidence": round(verdict.confidence, 3),
        "frames": list(verdict.frames),
        "rule": verdict.rule,
    }


def _report(spans: list[Span]) -> list[dict[str, object]]:
    """Markers as the report lists them: tag, start and end in seconds, and ``m:ss-m:ss``."""
    return [{**s.describe(), "at": f"{clock(s.seconds)}-{clock(s.end_seconds)}"} for s in spans]


def _owned(writes: list[Write], before: list[str]) -> list[str]:
    """Content tags that are the plugin's on the item: added now, or added by an earlier run."""
    return [w.tag_id for w in writes if w.verdict is not None and (not w.had or w.tag_id in before)]
