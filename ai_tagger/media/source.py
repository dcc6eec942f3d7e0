"""Turn a Stash item into the JPEG pictures the gateway sees.

The file is read from its path when this process can read it. Otherwise (Stash in Docker, a
network share, an image inside a zip) it is read through Stash's own HTTP URL for it, with the
run's credentials: no path mapping to configure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ai_tagger.media.errors import MediaError
from ai_tagger.media.frames import extract_frames
from ai_tagger.media.images import prepare_image
from ai_tagger.stash.models import Item

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class MediaOptions:
    ffmpeg: str
    frames_per_scene: int
    max_side: int
    headers: Mapping[str, str]


def _readable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def pictures(item: Item, options: MediaOptions, fetch: Fetch) -> list[bytes]:
    """JPEG bytes: ``frames_per_scene`` frames for a video, one picture for an image."""
    file = item.file
    if file is None:
        raise MediaError(f"{item.kind} has no file")
    in_zip = file.zip_file is not None
    local = not in_zip and _readable(file.path)
    if not local and not item.media_url:
        raise MediaError(f"file not readable and Stash gave no URL for it: {file.path}")
    if file.is_video:
        count = options.frames_per_scene if item.kind == "scene" else 1
        source = file.path if local else str(item.media_url)
        return extract_frames(
            source,
            duration=file.duration,
            count=count,
            ffmpeg=options.ffmpeg,
            max_side=options.max_side,
            headers=None if local else options.headers,
        )
    if local:
        with open(file.path, "rb") as handle:
            return [prepare_image(handle, max_side=options.max_side)]
    return [prepare_image(fetch(str(item.media_url)), max_side=options.max_side)]
