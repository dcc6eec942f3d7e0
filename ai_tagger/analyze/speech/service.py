"""A run's speech: each scene with sound heard once (cached by file), failures degrading to frames alone.

Only scenes are heard; images and scenes without an audio stream never reach a transcriber.
A transcript is cached by the file's fingerprint, the speech model and ``maxAudioSeconds``. A
failed transcription is a warning and the scene is tagged from its frames; after
:data:`BREAKER` failures in a row, or one that no retry can fix (the key or model refused),
speech is switched off for the rest of the run, said once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ai_tagger.analyze.speech.base import (
    SpeechError,
    SpeechUnavailable,
    Transcriber,
    Transcript,
    create_transcriber,
)
from ai_tagger.errors import MediaError, SettingsError
from ai_tagger.log import Log
from ai_tagger.media.source import ItemMedia
from ai_tagger.settings import Settings
from ai_tagger.stash.models import Item
from ai_tagger.store.transcripts import TranscriptStore, transcript_key

BREAKER = 5
TRANSCRIPT_TOKENS = 300
"""At most this many tokens of transcript go into a tag request (about 4 characters a token)."""
READERS = ("openai",)
"""Providers whose tag request can read a transcript; the others (labels, local) only see pictures."""


@dataclass(frozen=True)
class Heard:
    """One scene's speech: its transcript (None: no sound, or it failed) and whether it cost nothing now."""

    transcript: Transcript | None
    cached: bool = False
    warning: str | None = None


def trim(text: str, budget_tokens: int = TRANSCRIPT_TOKENS) -> str:
    """The transcript's words that fit the token budget (about 4 characters a token), ``...`` when cut."""
    words = text.split()
    kept: list[str] = []
    size = 0
    for word in words:
        size += len(word) + 1
        if size > budget_tokens * 4:
            break
        kept.append(word)
    return " ".join(kept) + (" ..." if len(kept) < len(words) else "")


def used(settings: Settings) -> bool:
    """Speech is transcribed in this run: on, and the provider's tag request can read it."""
    return settings.speech and settings.provider in READERS


def preflight(settings: Settings) -> None:
    """Before any item and before the run is journaled: the offline model loads (once per process).

    :class:`~ai_tagger.errors.SettingsError` (the run ends, nothing marked) with the install command
    when its packages are missing. A gateway ``asrModel`` is checked by the provider's preflight."""
    if used(settings) and settings.local_asr:
        from ai_tagger.analyze.speech.local import load_model

        try:
            load_model()
        except SpeechUnavailable as exc:
            raise SettingsError(str(exc)) from None


class Speech:
    """Shared by every worker of a run."""

    def __init__(
        self,
        settings: Settings,
        *,
        log: Log,
        store: TranscriptStore | None,
        transcriber: Transcriber | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.store = store
        self.transcriber = transcriber or create_transcriber(settings)
        self._guard = threading.Lock()
        self._failures = 0
        self.off: str | None = None

    def hear(self, item: Item, media: ItemMedia) -> Heard:
        """The scene's transcript, from the cache or freshly heard; never raises for one item's trouble."""
        file = item.file
        if item.kind != "scene" or file is None or not file.is_video or self.off:
            return Heard(None)
        model = self.transcriber.model
        fingerprint = file.fingerprint()
        key = transcript_key(fingerprint, model, self.settings.max_audio_seconds)
        stored = self.store.get(key) if self.store is not None else None
        if stored is not None:
            if stored.text is None:
                return Heard(None, cached=True)
            return Heard(Transcript(stored.text, stored.seconds, model, calls=0), cached=True)
        try:
            clip = media.audio(self.settings.max_audio_seconds)
        except MediaError as exc:
            return self._failed(item, f"cannot read its sound ({exc})", fatal=False)
        if clip is None:
            if self.store is not None:
                self.store.put(key, fingerprint, model, None, 0.0)
            return Heard(None)
        try:
            transcript = self.transcriber.transcribe(clip)
        except SpeechError as exc:
            return self._failed(item, str(exc), fatal=exc.fatal)
        with self._guard:
            self._failures = 0
        if self.store is not None:
            self.store.put(key, fingerprint, model, transcript.text, transcript.seconds, transcript.usage)
        return Heard(transcript)

    def _failed(self, item: Item, reason: str, *, fatal: bool) -> Heard:
        warning = f"{item.label}: speech not transcribed ({reason}); tagging from its frames alone"
        self.log.warning(warning)
        with self._guard:
            self._failures += 1
            trip = not self.off and (fatal or self._failures >= BREAKER)
            if trip:
                self.off = "the speech model refused the request" if fatal else f"{BREAKER} failures in a row"
        if trip:
            self.log.warning(f"speech transcription is off for the rest of this run: {self.off}")
        return Heard(None, warning=warning)
