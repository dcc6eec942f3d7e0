"""A scene's sound as mono 16 kHz audio for speech recognition, from one ffmpeg process.

Whisper-class models work on 16 kHz mono, so ffmpeg resamples and downmixes while it decodes
and the upload is the smallest that loses nothing they hear. ffmpeg writes raw 16-bit PCM to a
pipe and the WAV header is written here: a WAV piped out of ffmpeg carries placeholder sizes,
which some servers refuse. (FLAC saved under a tenth of the bytes on decoded AAC speech and costs an
encoder pass: see the ``speech`` benchmark.) Nothing touches the disk.

At most ``max_seconds`` are taken. A longer video gives several segments spread over its
length, each an input seeked with ``-ss`` before ``-i`` (only that part is read), concatenated
by one filter graph: the gist of a long scene rather than its first minutes.

Whether there is sound at all costs nothing extra: the mapping ``0:a:0`` fails at once when the
file has no audio stream, and :func:`extract_audio` returns ``None`` (a silent video is never sent).
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Mapping
from dataclasses import dataclass

from ai_tagger.errors import MediaError
from ai_tagger.media.frames import _ffmpeg, _input_args

SAMPLE_RATE = 16000
SEGMENT_SECONDS = 60.0
"""Length of each spread segment of a long video: whole sentences, and few inputs (each one parses the
file's index again)."""
BYTES_PER_SECOND = SAMPLE_RATE * 2
NO_AUDIO_MARKERS = ("matches no streams", "does not contain any stream", "Output file is empty")


@dataclass(frozen=True)
class AudioClip:
    """WAV bytes (mono, 16 kHz, 16-bit) and the spans of the video they hold."""

    wav: bytes
    seconds: float
    spans: tuple[tuple[float, float], ...]

    filename = "audio.wav"
    mime = "audio/wav"

    @property
    def pcm(self) -> bytes:
        """The samples alone (for an in-process model)."""
        with wave.open(io.BytesIO(self.wav)) as reader:
            return reader.readframes(reader.getnframes())


def spans(duration: float | None, max_seconds: float, segment: float = SEGMENT_SECONDS) -> list[tuple[float, float]]:
    """``(start, length)`` of each part to take: the whole file when it fits, else segments spread evenly.

    An unknown duration takes the first ``max_seconds``.
    """
    if not duration or duration <= max_seconds:
        return [(0.0, float(max_seconds))]
    count = max(1, math.ceil(max_seconds / segment))
    length = max_seconds / count
    if count == 1:
        return [(round((duration - length) / 2, 3), length)]
    step = (duration - length) / (count - 1)
    return [(round(i * step, 3), length) for i in range(count)]


def audio_command(
    source: str, parts: list[tuple[float, float]], *, ffmpeg: str, headers: Mapping[str, str] | None = None
) -> list[str]:
    """The one ffmpeg command that writes the parts' audio, concatenated, as raw PCM to stdout."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if len(parts) == 1:
        start, length = parts[0]
        if start:
            command += ["-ss", f"{start:.3f}"]
        command += [*_input_args(source, headers), "-t", f"{length:.3f}", "-map", "0:a:0"]
    else:
        for start, length in parts:
            command += ["-ss", f"{start:.3f}", "-t", f"{length:.3f}", *_input_args(source, headers)]
        inputs = "".join(f"[{i}:a:0]" for i in range(len(parts)))
        command += ["-filter_complex", f"{inputs}concat=n={len(parts)}:v=0:a=1[a]", "-map", "[a]"]
    return command + ["-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"]


def wav_bytes(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm)
    return out.getvalue()


def extract_audio(
    source: str,
    *,
    duration: float | None,
    max_seconds: float,
    ffmpeg: str,
    headers: Mapping[str, str] | None = None,
) -> AudioClip | None:
    """The video's sound, at most ``max_seconds``; ``None`` when it has no audio stream (or no sound at all).

    A file ffmpeg cannot read is a :class:`MediaError`.
    """
    parts = spans(duration, max_seconds)
    timeout = 60 + max_seconds / 5
    result = _ffmpeg(audio_command(source, parts, ffmpeg=ffmpeg, headers=headers), "the audio", timeout)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()
        if any(marker in detail for marker in NO_AUDIO_MARKERS):
            return None
        lines = detail.splitlines()
        raise MediaError(f"ffmpeg could not read the audio: {lines[-1] if lines else f'exit {result.returncode}'}")
    pcm = result.stdout[: len(result.stdout) // 2 * 2]
    if not pcm:
        return None
    return AudioClip(wav_bytes(pcm), len(pcm) / BYTES_PER_SECOND, tuple(parts))
