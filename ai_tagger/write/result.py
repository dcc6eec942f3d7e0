"""What one item's run produced: its status, decision, cost and what was written, as the report lists it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ai_tagger.analyze.gateway.base import Usage
from ai_tagger.decide.decision import Decision
from ai_tagger.decide.item import PerformerVerdict
from ai_tagger.errors import Stage

MAX_REPORTED_ITEMS = 500


class ItemStatus(str, Enum):
    """How one item ended in a run."""

    TAGGED = "tagged"
    PREVIEW = "preview"
    ERRORED = "errored"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass
class ItemResult:
    item_kind: str
    item_id: str
    status: ItemStatus
    decision: Decision | None = None
    error: str | None = None
    failed_stage: Stage | None = None
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    cached: bool = False
    markers: list[dict[str, Any]] = field(default_factory=list)
    """Scene markers the decision asks for: ``tag``, ``start``, ``end`` (seconds) and ``at`` (m:ss-m:ss)."""
    markers_created: int = 0
    """Of those, how many this run created (none where one overlapped, was rejected, or in a dry run)."""
    performers: list[PerformerVerdict] = field(default_factory=list)
    description: str | None = None
    """The model's description of the item (shown in a preview), written or not."""
    details_written: bool = False

    def report(self) -> dict[str, Any]:
        row: dict[str, Any] = {"kind": self.item_kind, "id": self.item_id, "status": str(self.status)}
        if self.decision is not None:
            row["tags"] = [v.label for v in self.decision.applied]
            row["review"] = [v.label for v in self.decision.review]
            row["candidates"] = [v.describe() for v in self.decision.verdicts]
            row["cached"] = self.cached
            row["tokens"] = self.usage.total_tokens
        if self.markers:
            row["markers"] = self.markers
        if self.performers:
            row["performers"] = [p.describe() for p in self.performers]
        if self.description:
            row["description"] = self.description
            row["details_written"] = self.details_written
        if self.error:
            row["error"] = self.error
        return row
