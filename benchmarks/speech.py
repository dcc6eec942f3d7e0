"""Benchmark ``speech``: audio extraction against bare ffmpeg, offline transcription speed, token cost.

    python3 -m benchmarks --only speech [--quick]

* extraction / floor: :func:`ai_tagger.media.audio.extract_audio` against the bare ffmpeg
  command that decodes the same amount of audio to the same format (``-t max``, the file's
  start), median of several runs. Two cases: a video shorter than ``maxAudioSeconds`` (taken
  whole) and one longer (spread segments, one process). Target <= 1.2x.
* FLAC instead of raw PCM (informational): the time and bytes an upload in FLAC would cost.
* offline transcription: seconds of espeak-ng speech / seconds faster-whisper ``tiny.en``
  took (model loaded before), on this machine's cores. Target >= 8x real time.
* token cost per scene with descriptions on vs off (``writeDetails``): ``tag_scenes`` on the same
  720p scenes (6 frames) twice, tokens from the plugin's output. Target <= +15 %. And,
  informational, with speech on vs off: the transcript (this paragraph, from the test model's
  ``/audio/transcriptions``) added to each tag request.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.harness import (  # noqa: E402
    PLUGIN_ID,
    Context,
    Result,
    expect_tagged,
    make_videos,
    run_plugin,
    settings_for,
)
from tests import media  # noqa: E402
from tests.servers.model_server import FakeModel  # noqa: E402
from tests.servers.stash_server import FakeStash  # noqa: E402
from tests.speech_media import SENTENCE, speak, word_accuracy  # noqa: E402

NAME = "speech"
EXTRACTION_TARGET = 1.2
REALTIME_TARGET = 8.0
PARAGRAPH = (
    "Welcome back to the channel. Today we are walking along the beach near the old harbour. "
    "The water is calm and the sun is shining, so we will set up the camera on the sand. "
    "Later we will cook dinner outdoors and talk about the trip through the mountains."
)


def _talking(folder: Path, name: str, seconds: float) -> Path:
    """A ``seconds`` long 720p video whose sound is the paragraph, looped (made once, kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"{name}-{seconds:g}s.mp4"
    if video.exists():
        return video
    picture = media.make_long_video(folder / f"{name}-{seconds:g}s.video.mp4", minutes=seconds / 60,
                                    size=(1280, 720), fps=25)  # fmt: skip
    voice = speak(PARAGRAPH, folder / f"{name}.voice.wav")
    part = video.with_suffix(".part.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(picture), "-stream_loop", "-1",
                    "-i", str(voice), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "96k",
                    "-t", f"{seconds:.3f}", str(part)], check=True)  # fmt: skip
    part.rename(video)
    picture.unlink()
    return video


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _floor(video: Path, seconds: float, codec: str = "s16le") -> bytes:
    """Bare ffmpeg: the same amount of mono 16 kHz audio to a pipe, nothing else."""
    fmt = ["-f", "s16le"] if codec == "s16le" else ["-c:a", "flac", "-f", "flac"]
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-t", f"{seconds:g}", "-vn",
                           "-ac", "1", "-ar", "16000", *fmt, "pipe:1"], capture_output=True, check=True).stdout


def extraction(video: Path, duration: float, max_seconds: float, repeats: int) -> dict[str, float]:
    from ai_tagger.media.audio import extract_audio

    taken = min(duration, max_seconds)
    for _ in range(2):  # warm the page cache for both
        extract_audio(str(video), duration=duration, max_seconds=max_seconds, ffmpeg="ffmpeg")
        _floor(video, taken)
    ours = floor = 0.0
    for _ in range(repeats):  # interleaved: both see the same machine load
        ours += _median(lambda: extract_audio(str(video), duration=duration, max_seconds=max_seconds,
                                              ffmpeg="ffmpeg"), 1)  # fmt: skip
        floor += _median(lambda: _floor(video, taken), 1)
    flac_s = _median(lambda: _floor(video, taken, "flac"), max(1, repeats // 2))
    return {"ours_ms": ours / repeats * 1000, "floor_ms": floor / repeats * 1000, "ratio": ours / floor,
            "flac_ms": flac_s * 1000, "pcm_bytes": len(_floor(video, taken)),
            "flac_bytes": len(_floor(video, taken, "flac"))}  # fmt: skip


def transcription(folder: Path, repeats: int) -> dict[str, float | str]:
    from ai_tagger.analyze.speech.local import LocalTranscriber, load_model
    from ai_tagger.media.audio import extract_audio
    from ai_tagger.settings import Settings

    started = time.perf_counter()
    load_model()
    loaded = time.perf_counter() - started
    clip_video = folder / "paragraph.mp4"
    if not clip_video.exists():
        voice = speak(PARAGRAPH, folder / "paragraph.wav")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(voice), "-c:a", "aac", str(clip_video)],
                       check=True)  # fmt: skip
    clip = extract_audio(str(clip_video), duration=None, max_seconds=300, ffmpeg="ffmpeg")
    assert clip is not None
    transcriber = LocalTranscriber(Settings())
    transcriber.preflight()
    text = ""

    def once() -> None:
        nonlocal text
        text = transcriber.transcribe(clip).text

    took = _median(once, repeats)
    sentence_video = folder / "sentence.wav"
    speak(SENTENCE, sentence_video)
    sentence = extract_audio(str(sentence_video), duration=None, max_seconds=300, ffmpeg="ffmpeg")
    assert sentence is not None
    heard = transcriber.transcribe(sentence).text
    return {"audio_s": clip.seconds, "took_s": took, "realtime": clip.seconds / took, "load_s": loaded,
            "paragraph_accuracy": word_accuracy(PARAGRAPH, text), "sentence_accuracy": word_accuracy(SENTENCE, heard),
            "sentence_heard": heard}  # fmt: skip


def tokens_per_scene(videos: list[Path], **settings: object) -> float:
    """``tag_scenes`` on the videos with these settings: the run's tokens per scene."""
    with FakeModel(models=["vision-test", "whisper-1"], transcript=PARAGRAPH) as model, FakeStash() as stash:
        stash.set_plugin_settings(PLUGIN_ID, settings_for(model, **settings))
        for path in videos:
            stash.add_scene(path, duration=10.0, width=1280, height=720, frame_rate=10.0)
        done, _ = run_plugin(stash, {"mode": "tag_scenes"})
        output = expect_tagged(done, len(videos), f"tag_scenes with {settings}")
        return float(output["tokens"]["total"]) / len(videos)


def token_costs(ctx: Context) -> dict[str, float]:
    n = ctx.pick(full=4, quick=2, tiny=1)
    silent = make_videos(ctx.media / "tokens", n, size=(1280, 720))
    off = tokens_per_scene(silent)
    on = tokens_per_scene(silent, writeDetails=True)
    talking = []
    for path in silent:
        spoken = ctx.media / "speech" / f"spoken-{path.name}"
        if not spoken.exists():
            voice = speak(PARAGRAPH, ctx.media / "speech" / "paragraph.wav")
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-i", str(voice),
                            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(spoken)],
                           check=True)  # fmt: skip
        talking.append(spoken)
    quiet = tokens_per_scene(talking)
    heard = tokens_per_scene(talking, transcribeAudio=True, asrModel="whisper-1")
    return {"scenes": n, "descriptions_off": off, "descriptions_on": on, "descriptions_extra": on / off - 1,
            "speech_off": quiet, "speech_on": heard, "speech_extra": heard / quiet - 1}  # fmt: skip


def run(ctx: Context) -> Result:
    res = Result(NAME)
    folder = ctx.media / "speech"
    short_s, long_s, max_s = ctx.pick(full=(120.0, 1200.0, 300.0), quick=(60.0, 600.0, 300.0),
                                      tiny=(8.0, 40.0, 20.0))  # fmt: skip
    repeats = ctx.pick(full=9, quick=5, tiny=1)
    for label, seconds in (("shorter than maxAudioSeconds", short_s), ("longer: spread segments", long_s)):
        m = extraction(_talking(folder, "talk", seconds), seconds, max_s, repeats)
        res.details[f"extraction_{seconds:g}s"] = m
        taken = min(seconds, max_s)
        res.add(f"extraction, {seconds:g} s video ({label}), {taken:g} s of audio", round(m["ours_ms"], 1), "ms")
        res.add(f"  / bare ffmpeg floor ({m['floor_ms']:.1f} ms)", round(m["ratio"], 2), "x",
                f"<= {EXTRACTION_TARGET}x", m["ratio"] <= EXTRACTION_TARGET)  # fmt: skip
        res.add(f"  FLAC instead of PCM: time, bytes ({m['pcm_bytes'] // 1024} KiB as WAV)", round(m["flac_ms"], 1),
                f"ms, {m['flac_bytes'] // 1024} KiB")  # fmt: skip
    t = transcription(folder, ctx.pick(full=5, quick=3, tiny=1))
    res.details["transcription"] = t
    res.add(f"offline transcription (tiny.en int8, {t['audio_s']:.1f} s of speech)", round(float(t["realtime"]), 1),
            "x real time", f">= {REALTIME_TARGET:g}x", float(t["realtime"]) >= REALTIME_TARGET)  # fmt: skip
    res.add("  word accuracy: paragraph / test sentence",
            f"{float(t['paragraph_accuracy']):.0%} / {float(t['sentence_accuracy']):.0%}", "")  # fmt: skip
    res.add("  model load", round(float(t["load_s"]), 2), "s")
    c = token_costs(ctx)
    res.details["tokens"] = c
    res.add(f"tokens per scene, descriptions off / on ({c['descriptions_off']:.0f} / {c['descriptions_on']:.0f})",
            f"{c['descriptions_extra'] * 100:+.1f}", "%", "<= +15 %", c["descriptions_extra"] <= 0.15)  # fmt: skip
    res.add(f"tokens per scene, speech off / on ({c['speech_off']:.0f} / {c['speech_on']:.0f})",
            f"{c['speech_extra'] * 100:+.1f}", "%")  # fmt: skip
    res.notes.append("tokens are the test model's count (text / 4 + OpenAI's image formula), 6 frames of 1280x720 "
                     "per scene; a real model's description is longer than the test model's one sentence.")  # fmt: skip
    return res
