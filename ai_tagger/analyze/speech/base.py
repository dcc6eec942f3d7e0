"""The transcriber seam: a clip in, a transcript out; transcribers registered by name.

``asrModel`` picks one: ``local`` is the in-process model, any other name is a model the
gateway serves. Adding a way to transcribe is adding a class with :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from ai_tagger.analyze.gateway.base import Usage

if TYPE_CHECKING:
    from ai_tagger.media.audio import AudioClip
    from ai_tagger.settings import Settings

BUILTIN = ("ai_tagger.analyze.speech.gateway", "ai_tagger.analyze.speech.local")


class SpeechError(Exception):
    """This clip could not be transcribed; the scene is tagged from its frames alone.

    ``fatal``: no later clip will do better (the key or model was refused): stop trying this run."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class SpeechUnavailable(Exception):
    """Speech cannot work in this run at all (missing packages, a model that cannot load): the message says
    what to do. Raised before any item, so nothing is marked."""


@dataclass(frozen=True)
class Transcript:
    """What was said, the seconds of audio it came from, and what hearing it cost."""

    text: str
    seconds: float
    model: str
    usage: Usage = field(default_factory=Usage)
    calls: int = 1


class Transcriber(Protocol):
    name: ClassVar[str]
    model: str

    def preflight(self) -> None:
        """Before any item: load the model, or prove the gateway serves it."""

    def transcribe(self, clip: AudioClip) -> Transcript:
        """The clip's words; :class:`SpeechError` when this clip fails."""


T = TypeVar("T")
_REGISTRY: dict[str, Callable[[Settings], Transcriber]] = {}


def register(cls: type[T]) -> type[T]:
    """Register a transcriber class under its ``name``; its constructor takes the settings."""
    _REGISTRY[cls.name] = cls  # type: ignore[attr-defined,assignment]
    return cls


def create_transcriber(settings: Settings) -> Transcriber:
    """``asrModel: local`` -> the in-process model; any other name -> the gateway."""
    for module in BUILTIN:
        importlib.import_module(module)
    return _REGISTRY["local" if settings.local_asr else "gateway"](settings)
