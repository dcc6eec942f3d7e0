"""Turn a Stash item into the JPEG pictures the gateway sees.

The file is read from its path when this process can read it. Otherwise (Stash in Docker, a
network share, an image inside a zip) it is read through Stash's own HTTP URL for it, with the
run's credentials: no path mapping to configure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ai_tagger.errors import MediaError
from ai_tagger.media.audio import AudioClip, extract_audio
from ai_tagger.media.frames import extract_dense, extract_spread, require_ffmpeg
from ai_tagger.media.images import prepare_image
from ai_tagger.stash.models import Item

if TYPE_CHECKING:
    from ai_tagger.settings import Settings

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class MediaOptions:
    ffmpeg: str
    frames_per_scene: int
    max_side: int
    headers: Mapping[str, str]
    frame_interval: float = 0
    """Seconds between a scene's frames (dense sampling); 0 spreads ``frames_per_scene`` instead."""
    max_frames: int = 600
    exact_frames: bool = False
    """Spread frames at their exact times instead of the keyframe nearest each (``exactFrames``)."""

    @classmethod
    def from_settings(cls, settings: Settings, *, ffmpeg: str, headers: Mapping[str, str]) -> MediaOptions:
        """The frame plan the user's settings ask for: tagging and recognition read the same frames."""
        return cls(
            ffmpeg=ffmpeg,
            frames_per_scene=settings.frames_per_scene,
            max_side=settings.max_image_side,
            headers=headers,
            frame_interval=settings.frame_interval,
            max_frames=settings.max_frames_per_scene,
            exact_frames=settings.exact_frames,
        )


@dataclass(frozen=True)
class Shots:
    """An item's pictures and, for a scene, each picture's time in seconds (empty when not known)."""

    pictures: list[bytes]
    times: tuple[float, ...] = ()


def _readable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def shots(item: Item, options: MediaOptions, fetch: Fetch) -> Shots:
    """JPEG bytes with their times: frames every ``frame_interval`` s or ``frames_per_scene`` spread frames
    for a scene, one picture for an image."""
    file = item.file
    if file is None:
        raise MediaError(f"{item.kind} has no file")
    if file.is_video:
        require_ffmpeg(options.ffmpeg)  # before anything about this file: a missing ffmpeg is the run's error
    in_zip = file.zip_file is not None
    local = not in_zip and _readable(file.path)
    if not local and not item.media_url:
        raise MediaError(f"file not readable and Stash gave no URL for it: {file.path}")
    if file.is_video:
        source = file.path if local else str(item.media_url)
        headers = None if local else options.headers
        if item.kind == "scene" and options.frame_interval > 0:
            timed = extract_dense(
                source,
                duration=file.duration,
                interval=options.frame_interval,
                max_frames=options.max_frames,
                ffmpeg=options.ffmpeg,
                max_side=options.max_side,
                headers=headers,
            )
            return Shots([frame for _, frame in timed], tuple(at for at, _ in timed))
        scene = item.kind == "scene"
        timed = extract_spread(
            source, duration=file.duration, count=options.frames_per_scene if scene else 1, ffmpeg=options.ffmpeg,
            max_side=options.max_side, headers=headers, exact=options.exact_frames or not scene,
        )  # fmt: skip
        return Shots([frame for _, frame in timed], tuple(at for at, _ in timed) if len(timed) > 1 else ())
    if local:
        with open(file.path, "rb") as handle:
            return Shots([prepare_image(handle, max_side=options.max_side)])
    return Shots([prepare_image(fetch(str(item.media_url)), max_side=options.max_side)])


class ItemMedia:
    """One item's media, extracted at most once and shared by every analyzer of the item.

    Frames are extracted on first use (under ``slots``, the run's CPU bound for ffmpeg), so an
    item answered from the cache extracts nothing. One worker handles one item, so no lock.
    """

    def __init__(self, item: Item, options: MediaOptions, fetch: Fetch, slots: AbstractContextManager[Any]) -> None:
        self.item = item
        self.options = options
        self.fetch = fetch
        self._slots = slots
        self._shots: Shots | None = None
        self._audio: dict[float, AudioClip | None] = {}

    def shots(self) -> Shots:
        if self._shots is None:
            with self._slots:
                self._shots = shots(self.item, self.options, self.fetch)
        return self._shots

    def audio(self, max_seconds: float) -> AudioClip | None:
        """A scene's sound (:func:`~ai_tagger.media.audio.extract_audio`), once; None for an image or a
        video without an audio stream."""
        if max_seconds not in self._audio:
            self._audio[max_seconds] = self._extract_audio(max_seconds)
        return self._audio[max_seconds]

    def _extract_audio(self, max_seconds: float) -> AudioClip | None:
        file = self.item.file
        if self.item.kind != "scene" or file is None or not file.is_video:
            return None
        local = file.zip_file is None and _readable(file.path)
        if not local and not self.item.media_url:
            raise MediaError(f"file not readable and Stash gave no URL for it: {file.path}")
        with self._slots:
            return extract_audio(
                file.path if local else str(self.item.media_url),
                duration=file.duration,
                max_seconds=max_seconds,
                ffmpeg=self.options.ffmpeg,
                headers=None if local else self.options.headers,
            )
