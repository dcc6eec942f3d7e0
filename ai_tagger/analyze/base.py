"""The analyzer seam: each analyzer is a small unit that looks at one item and returns a finding.

An analyzer is registered by name (``@register_analyzer("faces", order=30)`` on a factory that
gets the run's :class:`AnalyzerContext` and returns the analyzer, or None when its setting is
off). Modules in ``analyze/analyzers/`` are imported on first use, so adding an analyzer is
adding a module. Analyzers run in ``order`` on the same :class:`~ai_tagger.media.source.ItemMedia`
(frames extracted once), each seeing what the earlier ones found; the findings then go to one
pure decision (:func:`ai_tagger.decide.item.decide_item`) and one write.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ai_tagger.analyze.gateway.base import Provider, Usage
from ai_tagger.log import Log
from ai_tagger.media.source import ItemMedia
from ai_tagger.settings import Settings
from ai_tagger.stash.models import Item

if TYPE_CHECKING:
    from ai_tagger.stash.client import StashClient
    from ai_tagger.stash.vocabulary import Vocabulary
    from ai_tagger.store.cache import Cache

F = TypeVar("F")


@dataclass(frozen=True)
class DescriptionFinding:
    """A short plain-text description of the item (``writeDetails``)."""

    text: str
    usage: Usage = field(default_factory=Usage)
    calls: int = 0


@dataclass(frozen=True)
class TranscriptFinding:
    """What is said in the item (issue 22's speech analyzer fills this; it runs before the tag analyzer,
    which sends ``text`` with the tag request as quoted context)."""

    text: str
    usage: Usage = field(default_factory=Usage)
    calls: int = 0


@dataclass(frozen=True)
class PerformerMatch:
    """One known performer the item shows; ``confidence`` is a 0..1 fraction."""

    performer_id: str
    name: str
    confidence: float
    frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class PerformerFinding:
    """Performers recognised in the item (issue 21's analyzer fills this)."""

    matches: tuple[PerformerMatch, ...] = ()
    usage: Usage = field(default_factory=Usage)
    calls: int = 0


class Findings:
    """What the analyzers found for one item, one finding per type (the tag answer is a ``TagAnswer``)."""

    def __init__(self, *found: object) -> None:
        self._by_type: dict[type, object] = {}
        for finding in found:
            self.add(finding)

    def add(self, finding: object) -> None:
        self._by_type[type(finding)] = finding

    def get(self, kind: type[F]) -> F | None:
        found = self._by_type.get(kind)
        return found if isinstance(found, kind) else None

    def __iter__(self) -> Iterator[object]:
        return iter(self._by_type.values())


class Analyzer(Protocol):
    """One kind of answer about an item. ``analyze`` returns a finding, or None for nothing found.

    Raising :class:`~ai_tagger.errors.ItemError` marks the item ``AI_Errored``; a
    :class:`~ai_tagger.errors.RunError` stops the run. An analyzer must not call a model when
    ``context.fresh`` is False (re-apply): it answers from its cache or from ``found``, or not at all.
    """

    name: ClassVar[str]

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> object | None: ...


@dataclass(frozen=True)
class AnalyzerContext:
    """What an analyzer factory may use: the run's settings, clients, vocabulary and cache."""

    settings: Settings
    log: Log
    client: StashClient
    vocabulary: Vocabulary
    provider: Provider | None
    cache: Cache | None
    fresh: bool = True
    """False when re-applying from the cache: no media is read and no model is called."""
    ffmpeg: str = "ffmpeg"


Factory = Callable[[AnalyzerContext], Analyzer | None]
_REGISTRY: dict[str, tuple[int, Factory]] = {}


def register_analyzer(name: str, *, order: int) -> Callable[[Factory], Factory]:
    """Register an analyzer factory; analyzers run by ascending ``order`` (tags: 20)."""

    def decorator(factory: Factory) -> Factory:
        _REGISTRY[name] = (order, factory)
        return factory

    return decorator


def _load_builtin() -> None:
    from ai_tagger.analyze import analyzers

    for module in pkgutil.iter_modules(analyzers.__path__):
        importlib.import_module(f"{analyzers.__name__}.{module.name}")


def analyzer_names() -> list[str]:
    _load_builtin()
    return [name for name, _ in sorted(_REGISTRY.items(), key=lambda kv: (kv[1][0], kv[0]))]


def build_analyzers(context: AnalyzerContext) -> list[Analyzer]:
    """The run's analyzers in order, each made once; a factory returning None (feature off) is skipped."""
    built = []
    for name in analyzer_names():
        analyzer = _REGISTRY[name][1](context)
        if analyzer is not None:
            built.append(analyzer)
    return built


def run_analyzers(analyzers: list[Analyzer], item: Item, media: ItemMedia, found: Findings) -> Findings:
    """Every analyzer on the item in order, each seeing the findings before it."""
    for analyzer in analyzers:
        finding = analyzer.analyze(item, media, found)
        if finding is not None:
            found.add(finding)
    return found


def usage_of(found: Findings) -> tuple[Usage, int]:
    """Tokens and model calls spent on the item, over every finding that says."""
    usage, calls = Usage(), 0
    for finding in found:
        spent: Any = getattr(finding, "usage", None)
        if isinstance(spent, Usage):
            usage.add(spent)
        calls += int(getattr(finding, "calls", 0) or 0)
    return usage, calls
