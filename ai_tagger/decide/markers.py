"""Which scene markers a decision asks for: a pure step from verdicts and frame times to spans.

A marker covers the frames that show an applied tag: frames whose times are at most ``max_gap``
seconds apart join into one marker (default twice the sampling interval, so one frame that
misses the tag does not split it); a marker shorter than ``min_duration`` is dropped. Tags get
markers when ``markerTags`` names them (``*``: every applied tag) or their entry in the rules
file's ``markers:`` section switches them on; ``Tag: off`` there switches a tag off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ai_tagger.decide.decision import Decision, Verdict
from ai_tagger.decide.rules import Rules
from ai_tagger.stash.names import key

EPSILON = 1e-6


@dataclass(frozen=True)
class Span:
    """One marker a decision asks for: the applied verdict it belongs to and its start and end."""

    verdict: Verdict
    seconds: float
    end_seconds: float

    def describe(self) -> dict[str, object]:
        return {"tag": self.verdict.label, "start": self.seconds, "end": self.end_seconds}


@dataclass(frozen=True)
class MarkerChoice:
    """``markerTags`` parsed: every applied tag (``*``) or these names' keys."""

    every: bool
    names: frozenset[str]

    @classmethod
    def parse(cls, setting: str) -> MarkerChoice:
        parts = [part.strip() for part in setting.split(",") if part.strip()]
        return cls("*" in parts, frozenset(key(part) for part in parts if part != "*"))

    def wants(self, names: Iterable[str], rules: Rules) -> tuple[bool, float | None, float | None]:
        """Whether a tag with these names gets markers, with its own ``max_gap`` and ``min_duration``."""
        listed = self.every or any(key(name) in self.names for name in names)
        found = rules.marker_rule(names)
        if found is None:
            return listed, None, None
        rule, explicit = found
        return (listed or explicit) and rule.enabled, rule.max_gap, rule.min_duration


def spacing(times: Sequence[float]) -> float:
    """The sampling interval of these frame times (0 with fewer than two frames)."""
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0


def spans(
    frames: Iterable[int], times: Sequence[float], *, max_gap: float, min_duration: float
) -> list[tuple[float, float]]:
    """``(start, end)`` of each run of frames (1-based numbers into ``times``) at most ``max_gap`` s apart."""
    shown = sorted({times[f - 1] for f in frames if 1 <= f <= len(times)})
    runs: list[list[float]] = []
    for at in shown:
        if runs and at - runs[-1][1] <= max_gap + EPSILON:
            runs[-1][1] = at
        else:
            runs.append([at, at])
    return [(start, end) for start, end in runs if end - start >= min_duration - EPSILON]


def _names(verdict: Verdict) -> list[str]:
    names = [verdict.label, verdict.name]
    return names + list(verdict.tag.aliases) if verdict.tag else names


def plan(decision: Decision, times: Sequence[float], marker_tags: str, rules: Rules) -> list[Span]:
    """The markers this decision asks for, in the order of its applied verdicts; none without frame times."""
    choice = MarkerChoice.parse(marker_tags)
    if len(times) < 1 or not (choice.every or choice.names or rules.markers):
        return []
    step = spacing(times)
    found: list[Span] = []
    for verdict in decision.applied:
        wanted, max_gap, min_duration = choice.wants(_names(verdict), rules)
        if not wanted:
            continue
        gap = 2 * step if max_gap is None else max_gap
        for start, end in spans(verdict.frames, times, max_gap=gap, min_duration=min_duration or 0.0):
            found.append(Span(verdict, start, end))
    return found
