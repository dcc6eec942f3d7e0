"""Spoken test media: espeak-ng (Debian) says a sentence, ffmpeg muxes it under coloured video.

Why: speech recognition can only be tested on speech. espeak-ng's voice is synthetic but real
audio with real words, so the offline model's word accuracy on it is a meaningful number, and
the colours underneath keep the fake vision model's answers predictable (``tests.media``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.media import FFMPEG, ColourSpec, _run, make_video

SENTENCE = "The quick brown fox jumps over the lazy dog on a sunny beach near the water."
"""What the spoken clip says: common English words, and tag-like ones (beach, water)."""


def espeak() -> str | None:
    return shutil.which("espeak-ng")


def speak(text: str, path: str | Path, *, speed: int = 140) -> Path:
    """``text`` spoken by espeak-ng into a WAV file (22.05 kHz mono)."""
    program = espeak()
    if program is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng; .ci/setup installs it)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([program, "-s", str(speed), "-w", str(path), text], check=True, capture_output=True)
    return path


def make_talking_video(
    path: str | Path,
    colours: Sequence[ColourSpec],
    *,
    text: str = SENTENCE,
    seconds_per_colour: float = 2.0,
    repeat: int = 1,
) -> Path:
    """A video of solid colours (as :func:`tests.media.make_video`) whose sound is ``text`` spoken
    ``repeat`` times over the video's length (AAC, as most real files)."""
    path = Path(path)
    silent = make_video(path.with_name(path.stem + ".silent.mp4"), colours, seconds_per_colour=seconds_per_colour)
    voice = speak(text, path.with_name(path.stem + ".voice.wav"))
    seconds = len(colours) * seconds_per_colour
    _run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(silent),
          "-stream_loop", str(max(0, repeat - 1)), "-i", str(voice), "-map", "0:v", "-map", "1:a",
          "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-af", "apad", "-t", f"{seconds:.3f}", str(path)])
    silent.unlink()
    voice.unlink()
    return path


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (what word accuracy compares)."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_accuracy(reference: str, hypothesis: str) -> float:
    """1 - word error rate (substitutions, deletions and insertions by edit distance), at least 0."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 1.0 if not hyp else 0.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
            previous = current
    return max(0.0, 1 - row[-1] / len(ref))
