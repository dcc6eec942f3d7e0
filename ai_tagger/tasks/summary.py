"""What a run reports: one row per item and the totals, as the task output Stash shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ai_tagger.analyze.gateway.base import Usage
from ai_tagger.tasks.modes import TABLE
from ai_tagger.write.result import MAX_REPORTED_ITEMS, ItemResult, ItemStatus


@dataclass
class RunSummary:
    mode: str
    total: int = 0
    untagged: int = 0
    processed: int = 0
    tagged: int = 0
    review: int = 0
    errored: int = 0
    tags_applied: int = 0
    markers: int = 0
    markers_created: int = 0
    performers_applied: int = 0
    details_written: int = 0
    gateway_calls: int = 0
    cache_hits: int = 0
    usage: Usage = field(default_factory=Usage)
    created_tags: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    """The run's id in the provenance journal (a writing run), which undo names."""
    stopped: str | None = None
    """Why the run ended before its last item; ``failed`` tells a failure from a clean stop."""
    failed: bool = False

    def stop(self, reason: str, *, failed: bool) -> None:
        """End the run here: a failure (gateway down, Stash gone) or a clean stop (token budget)."""
        self.stopped, self.failed = reason, failed

    def add(self, result: ItemResult) -> None:
        self.processed += 1
        self.usage.add(result.usage)
        self.gateway_calls += result.calls
        self.cache_hits += result.cached
        if result.status == ItemStatus.ERRORED:
            self.errored += 1
        elif result.decision is not None:
            self.tagged += 1
            self.review += bool(result.decision.review)
            self.tags_applied += len(result.decision.applied)
            self.markers += len(result.markers)
            self.markers_created += result.markers_created
            self.performers_applied += sum(p.applied for p in result.performers)
            self.details_written += result.details_written
        if len(self.items) < MAX_REPORTED_ITEMS:
            self.items.append(result.report())

    def as_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {
            "mode": self.mode,
            "total": self.total,
            "processed": self.processed,
            "tagged": self.tagged,
            "review": self.review,
            "errored": self.errored,
            "tags_applied": self.tags_applied,
            "markers": self.markers,
            "markers_created": self.markers_created,
            "gateway_calls": self.gateway_calls,
            "cache_hits": self.cache_hits,
            "tokens": {
                "prompt": self.usage.prompt_tokens,
                "completion": self.usage.completion_tokens,
                "total": self.usage.total_tokens,
            },
            "created_tags": self.created_tags,
            "items": self.items,
        }
        for name in ("performers_applied", "details_written"):  # only when written, as older outputs had none
            if getattr(self, name):
                output[name] = getattr(self, name)
        if self.run_id:
            output["run"] = self.run_id
        if TABLE[self.mode].estimates:
            output["estimate"] = self.estimate()
        if self.stopped:
            output["stopped"] = self.stopped
        return output

    def estimate(self) -> dict[str, Any]:
        """What tagging every untagged item would cost, projected from the items previewed.

        Items previewed now are cached, so the real run pays only for the others.
        """
        paid = self.processed - self.cache_hits - self.errored
        per_item = self.usage.total_tokens / paid if paid > 0 else 0
        return {
            "untagged_items": self.untagged,
            "previewed_items": self.processed,
            "tokens_per_item": round(per_item),
            "run_tokens": round(per_item * self.untagged),
        }
