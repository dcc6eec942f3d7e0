"""Keyframes from videos with ffmpeg: input seeking, one short decode per timestamp.

``-ss`` before ``-i`` makes ffmpeg jump to the keyframe before each timestamp and decode only
from there, so a two-hour file costs the same as a two-minute one. Frames are scaled down by
ffmpeg and come back as JPEG bytes on a pipe: nothing is written to disk.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ai_tagger.media.errors import MediaError

FFMPEG_TIMEOUT = 60
EDGE = 0.05


def timestamps(duration: float, count: int) -> list[float]:
    """``count`` instants spread evenly over the video, skipping the first and last 5 %."""
    if duration <= 0:
        return [0.0]
    span = duration * (1 - 2 * EDGE)
    return [round(duration * EDGE + span * (i + 0.5) / count, 3) for i in range(count)]


def _input_args(source: str, headers: Mapping[str, str] | None) -> list[str]:
    if not headers or not source.startswith(("http://", "https://")):
        return ["-i", source]
    header_block = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return ["-headers", header_block, "-i", source]


def probe_duration(source: str, *, ffprobe: str, headers: Mapping[str, str] | None = None) -> float:
    """Duration in seconds, for files Stash has not probed."""
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json"]
    if headers and source.startswith(("http://", "https://")):
        command += ["-headers", "".join(f"{k}: {v}\r\n" for k, v in headers.items())]
    try:
        result = subprocess.run(command + [source], capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
        return float(json.loads(result.stdout or b"{}").get("format", {}).get("duration", 0) or 0)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise MediaError(f"cannot probe video: {exc.__class__.__name__}") from None


def extract_frame(
    source: str, at: float, *, ffmpeg: str, max_side: int, headers: Mapping[str, str] | None = None
) -> bytes:
    """One JPEG frame at ``at`` seconds, long side at most ``max_side`` pixels."""
    scale = f"scale='min({max_side},iw)':'min({max_side},ih)':force_original_aspect_ratio=decrease"
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-ss", f"{at:.3f}", *_input_args(source, headers),
        "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn",
        "-vf", scale, "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
    except FileNotFoundError:
        raise MediaError(f"ffmpeg not found at {ffmpeg!r}: install ffmpeg or set its path in Stash") from None
    except subprocess.TimeoutExpired:
        raise MediaError(f"ffmpeg took over {FFMPEG_TIMEOUT} s for one frame at {at:.1f} s") from None
    if result.returncode != 0 or not result.stdout.startswith(b"\xff\xd8"):
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}, no frame"
        raise MediaError(f"ffmpeg could not read a frame at {at:.1f} s: {reason}")
    return result.stdout


def extract_frames(
    source: str,
    *,
    duration: float | None,
    count: int,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
) -> list[bytes]:
    """``count`` frames spread over the video; a frame past the real end is skipped, not fatal."""
    if not duration:
        duration = probe_duration(source, ffprobe=_ffprobe_beside(ffmpeg), headers=headers)
    frames: list[bytes] = []
    failure: MediaError | None = None
    for at in timestamps(duration, count):
        try:
            frames.append(extract_frame(source, at, ffmpeg=ffmpeg, max_side=max_side, headers=headers))
        except MediaError as exc:
            failure = exc
    if not frames:
        raise failure or MediaError("no frame could be read")
    return frames


def _ffprobe_beside(ffmpeg: str) -> str:
    path = Path(ffmpeg)
    if path.parent != Path("."):
        return str(path.with_name(path.name.replace("ffmpeg", "ffprobe")))
    return "ffprobe"
