"""The provider seam: what every gateway provider takes and gives back, and the registry.

A provider turns prepared pictures (plus context) into candidate tags with confidences. It is
a class with a ``name`` registered with :func:`register`, built from a :class:`GatewayConfig`;
modules in ``analyze/providers/`` are imported on first lookup, so adding a provider is adding
one file there.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ai_tagger.configured import missing_settings
from ai_tagger.errors import GatewayFatal, SettingsError

if TYPE_CHECKING:
    from ai_tagger.settings import Settings

__all__ = [
    "Candidate",
    "GatewayConfig",
    "Note",
    "Provider",
    "TagAnswer",
    "TagRequest",
    "Usage",
    "create_provider",
    "provider_names",
    "register",
]


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
    describe: bool = False
    """Also ask for a short description of the item (``writeDetails``), in the same request."""

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
    """A model's answer for one item, fresh from a provider or read back from the cache.

    Providers fill the first four fields; the run adds where the answer came from
    (``frame_count`` pictures it saw, the cache ``key``, ``cached`` when no call was made, the
    frames' ``times``).
    """

    candidates: list[Candidate]
    usage: Usage = field(default_factory=Usage)
    calls: int = 1
    notes: list[Note] = field(default_factory=list)
    frame_count: int = 0
    key: str | None = None
    cached: bool = False
    times: tuple[float, ...] = ()
    """Each frame's time in the video, in seconds (frame N is ``times[N - 1]``); empty when unknown."""
    description: str | None = None
    """The model's short description of the item, when the request asked for one."""


@dataclass(frozen=True)
class GatewayConfig:
    """What a provider gets: the gateway settings it needs, and nothing secret in its repr.

    Built from :class:`~ai_tagger.settings.Settings` by :meth:`from_settings`; a provider that
    needs another setting gets a field added here, with its line in ``from_settings``.
    """

    provider: str
    url: str | None
    model: str | None
    api_key: str | None = field(default=None, repr=False)
    auth_scheme: str = "Bearer"
    timeout: float = 120
    concurrency: int = 4
    answer_tokens: int = 1024
    """The most tokens one answer may take (``maxAnswerTokens``, else sized from ``maxTagsPerItem``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        return cls(
            provider=settings.provider,
            url=settings.gateway_url,
            model=settings.model,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            auth_scheme=settings.auth_scheme,
            timeout=settings.request_timeout,
            concurrency=settings.concurrency,
            answer_tokens=settings.answer_tokens,
        )

    @classmethod
    def of(cls, value: GatewayConfig | Settings) -> GatewayConfig:
        """The config itself, or one made from settings (a provider built by hand, as tests do)."""
        return value if isinstance(value, GatewayConfig) else cls.from_settings(value)

    def require(self) -> None:
        """Fail with what to fill in when the gateway is not set up."""
        missing = missing_settings(self.provider, self.url, self.model)
        if missing:
            raise SettingsError(
                "AI Tagger is not configured: set " + " and ".join(missing) + " in Settings > Plugins > AI Tagger"
            )

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: <authScheme> <apiKey>`` ('none' sends the raw key), or nothing without a key."""
        if not self.api_key:
            return {}
        scheme = self.auth_scheme.strip()
        return {"Authorization": self.api_key if scheme.lower() in ("", "none") else f"{scheme} {self.api_key}"}


class Provider(Protocol):
    """A gateway protocol. ``name`` is the ``provider`` setting's value that selects it."""

    name: ClassVar[str]

    def preflight(self) -> None:
        """One cheap call proving the gateway answers, accepts the key and knows the model."""

    def describe(self, request: TagRequest) -> TagAnswer:
        """Candidate tags for one item's pictures."""


P = TypeVar("P")
_REGISTRY: dict[str, Callable[[Any], Provider]] = {}


@overload
def register(name: str) -> Callable[[type[P]], type[P]]: ...


@overload
def register(name: type[P]) -> type[P]: ...


def register(name: str | type[P]) -> Callable[[type[P]], type[P]] | type[P]:
    """Register a provider class under its ``name``: ``@register`` or ``@register("name")``.

    The constructor takes ``config: GatewayConfig``: only the settings a provider needs.
    """

    def decorator(cls: type[P]) -> type[P]:
        if isinstance(name, str):
            cls.name = name  # type: ignore[attr-defined]
        key = getattr(cls, "name", None)
        if not isinstance(key, str) or not key:
            raise TypeError(f"{cls.__name__} needs a 'name' to be registered as a provider")
        _REGISTRY[key] = cls  # type: ignore[assignment]
        return cls

    return decorator if isinstance(name, str) else decorator(name)


def _load_builtin() -> None:
    from ai_tagger.analyze import providers

    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{module.name}")


def provider_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_provider(settings: Settings) -> Provider:
    names = provider_names()
    if settings.provider not in _REGISTRY:
        raise GatewayFatal(f"unknown provider {settings.provider!r}: choose one of {', '.join(names)}")
    factory = _REGISTRY[settings.provider]
    return factory(GatewayConfig.from_settings(settings))
