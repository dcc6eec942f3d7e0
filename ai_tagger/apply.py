"""Applying a decision to one item: policy -> the user's rejections -> tag ids -> one write -> journal.

Each item ends in exactly one ``ADD`` mutation carrying its tags and its status tags together,
so a kill at any instant leaves the item either untouched or done. The provenance journal
records each tag before the mutation (with whether the item already had it and the decision
behind it), so undo can take back exactly what a run added. A tag the plugin added that is
gone from the item now was removed by the user: it is recorded as a rejection and never
re-applied to that item. Re-applying adds what now passes, then removes only tags this plugin
added and no longer decides (never the user's own tags), and keeps ``AI_Review`` in step.
"""

from __future__ import annotations

import dataclasses

from ai_tagger.cache import Cache, JournalEntry
from ai_tagger.decide.decision import REJECTED, REVIEW, Decision, Policy, Verdict, decide
from ai_tagger.decide.markers import Span, plan
from ai_tagger.errors import ItemError
from ai_tagger.gateway.base import TagAnswer
from ai_tagger.journal import Journal, Write, rejection_keys
from ai_tagger.log import Log
from ai_tagger.markers import MarkerWriter, clock, describe
from ai_tagger.report import ItemResult
from ai_tagger.settings import STATUS_ERRORED, STATUS_REVIEW, STATUS_TAGGED
from ai_tagger.stash.client import StashClient
from ai_tagger.tagbook import TagBook

ON_ITEM = "on the item"
"""A review suggestion the item already has: not pending any more."""


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

    def _spans(self, kind: str, decision: Decision, answer: TagAnswer) -> list[Span]:
        """The markers the decision asks for: scenes whose answer kept its frames' times."""
        if kind != "scene" or not answer.times:
            return []
        return plan(decision, answer.times, self.marker_tags, self.policy.rules)

    def _reserve(self, item_id: str, spans: list[Span]) -> None:
        """Tag ids for the spans (their tags exist by now), recorded as planned before the tag write."""
        self.markers.reserve(item_id, [(self.book.ids_for([span.verdict])[0], span) for span in spans])

    def decide(self, kind: str, item_id: str, answer: TagAnswer, current: set[str]) -> Decision:
        """The policy's decision, less the tags the user removed from this item before."""
        decision = decide(answer.candidates, answer.frame_count, self.book.vocabulary, self.policy)
        if self.journal is None:
            return decision
        rejected = self.journal.rejected(kind, item_id, current)
        verdicts = []
        for v in decision.verdicts:
            if (v.applied or v.outcome == REVIEW) and rejection_keys(v) & rejected:
                v = _rejected(v)
            elif v.outcome == REVIEW and v.tag is not None and v.tag.id in current:
                v = dataclasses.replace(v, outcome=ON_ITEM, rule="the item has this tag (accepted on review)")
            verdicts.append(v)
        return Decision(verdicts)

    def apply(self, kind: str, item_id: str, label: str, answer: TagAnswer, current: set[str]) -> ItemResult:
        """Decide on a fresh or cached answer and write the item once; ``current``: its tag ids now."""
        decision = self.decide(kind, item_id, answer, current)
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
        if kind == "scene":
            self._reserve(item_id, spans)
        writes = self._write(kind, item_id, decision, current)
        if spans:
            result.markers_created = self.markers.finish(item_id)
        self._journal(kind, item_id, answer.key, _owned(writes, []), decision, answer.times)
        result.status = "tagged"
        return result

    def reapply(self, entry: JournalEntry, answer: TagAnswer) -> ItemResult:
        """Re-decide a processed item from its cached answer; drop only our own stale tags."""
        current = self.client.current_tags(entry.kind, entry.id)
        if current is None:
            self.log.info(f"{entry.kind} {entry.id}: deleted in Stash since it was tagged; skipped")
            return ItemResult(entry.kind, entry.id, "skipped", error="deleted in Stash")
        decision = self.decide(entry.kind, entry.id, answer, current)
        spans = self._spans(entry.kind, decision, answer)
        status = "preview" if self.dry_run else "tagged"
        result = ItemResult(entry.kind, entry.id, status, decision, cached=True, markers=_report(spans))
        if self.dry_run:
            return result
        if entry.kind == "scene":
            self._reserve(entry.id, spans)
        writes = self._write(entry.kind, entry.id, decision, current)
        applied = {w.tag_id for w in writes if w.verdict is not None}
        dropped = [tag_id for tag_id in entry.applied if tag_id not in applied and tag_id in current]
        if entry.review and not decision.review:
            review = self.book.status_tag(STATUS_REVIEW).id
            dropped += [review] if review in current else []
        if dropped:
            self.client.remove_tags(entry.kind, entry.id, dropped)
            if self.journal is not None:
                self.journal.dropped(entry.kind, entry.id, dropped)
        if entry.kind == "scene":
            self.markers.remove_stale(entry.id, sorted(applied))
            result.markers_created = self.markers.finish(entry.id)
        self._journal(entry.kind, entry.id, entry.answer_key, _owned(writes, entry.applied), decision, answer.times)
        return result

    def failed(self, kind: str, item_id: str, label: str, error: ItemError, current: set[str]) -> ItemResult:
        """Mark the item ``AI_Errored`` (unless a dry run) and report why."""
        self.log.error(f"{label}: {error}")
        if not self.dry_run:
            errored = self.book.status_tag(STATUS_ERRORED).id
            self._send(kind, item_id, [Write(errored, errored in current)])
        return ItemResult(kind, item_id, "errored", error=str(error), failed_stage=error.stage)

    def _write(self, kind: str, item_id: str, decision: Decision, current: set[str]) -> list[Write]:
        """The decision's tags and status tags in one ``ADD``, journaled around it."""
        writes: dict[str, Write] = {}
        for verdict in decision.applied:
            for tag_id in self.book.ids_for([verdict]):
                writes.setdefault(tag_id, Write(tag_id, tag_id in current, verdict))
        names = [STATUS_TAGGED, STATUS_REVIEW] if decision.review else [STATUS_TAGGED]
        for name in names:
            tag_id = self.book.status_tag(name).id
            writes.setdefault(tag_id, Write(tag_id, tag_id in current))
        self._send(kind, item_id, list(writes.values()))
        return list(writes.values())

    def _send(self, kind: str, item_id: str, writes: list[Write]) -> None:
        if self.journal is not None and self.run_id is not None:
            self.journal.intend(self.run_id, kind, item_id, writes)
        self.client.add_tags(kind, item_id, [w.tag_id for w in writes])
        if self.journal is not None and self.run_id is not None:
            self.journal.done(self.run_id, kind, item_id)

    def _journal(
        self,
        kind: str,
        item_id: str,
        answer_key: str | None,
        applied: list[str],
        decision: Decision,
        times: tuple[float, ...] = (),
    ) -> None:
        review = [suggestion(v, times) for v in decision.review]
        self.cache.record(JournalEntry(kind, item_id, answer_key, "tagged", applied, review))


def suggestion(verdict: Verdict, times: tuple[float, ...] = ()) -> dict[str, object]:
    """A review-tier verdict as the review page lists it (kept in the cache's ``items.review``), with the
    time in seconds each of its frames shows when the answer kept them (keyframes are not evenly spaced)."""
    described = verdict.describe()
    seconds = [times[f - 1] for f in verdict.frames if 0 < f <= len(times)]
    seconds = seconds if len(seconds) == len(verdict.frames) else []
    return {
        "tag": verdict.label,
        "tag_id": verdict.tag.id if verdict.tag else None,
        "score": round(verdict.score, 3),
        "confidence": described["confidence"],
        "frames": described["frames"],
        **({"times": seconds} if seconds else {}),
        "rule": verdict.rule,
    }


def _report(spans: list[Span]) -> list[dict[str, object]]:
    """Markers as the report lists them: tag, start and end in seconds, and ``m:ss-m:ss``."""
    return [{**s.describe(), "at": f"{clock(s.seconds)}-{clock(s.end_seconds)}"} for s in spans]


def _rejected(verdict: Verdict) -> Verdict:
    return dataclasses.replace(verdict, outcome=REJECTED, rule="removed by the user from this item")


def _owned(writes: list[Write], before: list[str]) -> list[str]:
    """Content tags that are the plugin's on the item: added now, or added by an earlier run."""
    return [w.tag_id for w in writes if w.verdict is not None and (not w.had or w.tag_id in before)]
