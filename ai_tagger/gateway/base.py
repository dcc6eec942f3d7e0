"""The provider seam: what every gateway provider takes and gives back, and the registry.

A provider turns prepared pictures (plus context) into candidate tags with confidences. It is
registered by name with :func:`register`; modules in ``gateway/providers/`` are imported on
first lookup, so adding a provider is adding one file there.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from ai_tagger.settings import Settings


class GatewayError(Exception):
    """One item's request failed (after retries); other items may still succeed."""


class GatewayFatal(GatewayError):
    """The gateway cannot work at all (unreachable, key refused, unknown model): stop the run."""


class Candidate(BaseModel):
    """One tag the model proposes for an item.

    ``confidence`` is a 0..1 fraction, or ``None`` when the model named the tag without one
    (an *unscored* candidate: the decision step sends it to review or trusts it by setting).

    ``opt_in`` marks a name the provider reports only when the rules file's ``allow`` list
    names it (the local model's covered-body-part classes); it travels through the cache, so
    re-applying later decides it the same way.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    confidence: float | None = Field(ge=0, le=1)
    frames: tuple[int, ...] = ()
    opt_in: bool = False

    @property
    def unscored(self) -> bool:
        return self.confidence is None

    @field_validator("name", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("confidence", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> object:
        """Models write 0.85, 85, "85" or "85%" for the same thing; read each as 0.85.

        A number in [0, 1] is a fraction, a percent string or a whole number in 2..100 is a
        percentage; anything else (1.7, -0.1, 250) is left as it is, so validation rejects it
        rather than guessing (1.7 is not 1.7 %).
        """
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        if isinstance(value, str):
            text = value.strip()
            percent = text.endswith("%")
            try:
                number = float(text.removesuffix("%").strip())
            except ValueError:
                return value
            if percent:
                return number / 100
            value = number
        if isinstance(value, (int, float)) and 2 <= value <= 100 and float(value).is_integer():
            return value / 100
        return value

    @field_validator("frames", mode="before")
    @classmethod
    def _frames(cls, value: object) -> object:
        return () if value is None else value


@dataclass(frozen=True)
class TagRequest:
    """Everything a provider may use to describe one item.

    ``grid`` is set when ``pictures`` is one contact sheet of ``frame_count`` cells; the
    frames a candidate cites are then cell numbers. ``allowed_names``, when given, is the
    closed list of names the answer may use.
    """

    kind: str
    pictures: Sequence[bytes]
    frame_count: int = 0
    grid: tuple[int, int] | None = None
    vocabulary: Sequence[str] = ()
    allowed_names: Sequence[str] = ()
    context: str = ""
    detail: str = "auto"

    def __post_init__(self) -> None:
        if not self.frame_count:
            object.__setattr__(self, "frame_count", len(self.pictures))


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass(frozen=True)
class Note:
    """Something the provider noticed about one answer, for the run's log (``level`` is a Log method)."""

    level: Literal["debug", "info", "warning"]
    text: str


@dataclass
class TagAnswer:
    candidates: list[Candidate]
    usage: Usage = field(default_factory=Usage)
    calls: int = 1
    notes: list[Note] = field(default_factory=list)


class Provider(Protocol):
    name: ClassVar[str]

    def preflight(self) -> None:
        """One cheap call proving the gateway answers, accepts the key and knows the model."""

    def describe(self, request: TagRequest) -> TagAnswer:
        """Candidate tags for one item's pictures."""


ProviderFactory = Callable[["Settings"], Provider]
_REGISTRY: dict[str, ProviderFactory] = {}


def register(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def decorator(factory: ProviderFactory) -> ProviderFactory:
        _REGISTRY[name] = factory
        return factory

    return decorator


def _load_builtin() -> None:
    from ai_tagger.gateway import providers

    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{module.name}")


def provider_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_provider(settings: Settings) -> Provider:
    names = provider_names()
    if settings.provider not in _REGISTRY:
        raise GatewayFatal(f"unknown provider {settings.provider!r}: choose one of {', '.join(names)}")
    return _REGISTRY[settings.provider](settings)
