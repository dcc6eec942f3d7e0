"""``dense``: a frame every 2 s and every 10 s of a 10-minute 1080p H.264 file, the plugin vs bare ffmpeg.

The plugin's :func:`~ai_tagger.media.frames.extract_dense` (keyframe-spacing probe included)
against the floor: the cheapest bare single-pass ``ffmpeg [-skip_frame nokey] -i f -vf
fps=1/N,scale -f image2pipe`` command producing the same frames, the same size. Target: <= 1.2x
that floor. Each figure is the best of its interleaved repeats: a shared machine only ever slows
a measurement. The file has a keyframe every 10 s, so every 10 s the floor decodes keyframes only
(its full-decode twin is reported too); every 2 s only a full decode gives those frames (a
keyframes-only pass repeats each keyframe five times; reported for comparison).
"""

from __future__ import annotations

import subprocess
import time

from benchmarks.frames import long_video
from benchmarks.harness import FFMPEG, Context, Result, media

INTERVALS = (2, 10)
MAX_SIDE = 768


def run(ctx: Context) -> Result:
    from ai_tagger.media.frames import dense_command, dense_plan, extract_dense, keyframe_spacing

    res = Result("dense")
    path = long_video(ctx)
    duration = media.probe_duration(path)
    repeats = ctx.pick(full=5, quick=3, tiny=1)
    spacing = keyframe_spacing(str(path), ffprobe=FFMPEG.replace("ffmpeg", "ffprobe"))
    details: dict[str, object] = {"file": str(path), "duration_s": duration, "keyframe_spacing_s": spacing}

    def bare(interval: float, count: int, keyframes_only: bool) -> tuple[float, int]:
        command = dense_command(
            str(path), interval=interval, count=count, keyframes_only=keyframes_only, ffmpeg=FFMPEG, max_side=MAX_SIDE
        )
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=True)
        return time.perf_counter() - started, done.stdout.count(b"\xff\xd9")

    for interval in INTERVALS:
        step, count = dense_plan(duration, interval, 600)
        samples: dict[str, list[float]] = {"plugin": [], "floor": [], "floor_keyframes": []}
        frames = 0
        for _ in range(repeats):  # interleaved, so noise hits all alike
            started = time.perf_counter()
            got = extract_dense(
                str(path), duration=duration, interval=interval, max_frames=600, ffmpeg=FFMPEG, max_side=MAX_SIDE
            )
            frames = len(got)
            samples["plugin"].append(time.perf_counter() - started)
            samples["floor"].append(bare(step, count, keyframes_only=False)[0])
            samples["floor_keyframes"].append(bare(step, count, keyframes_only=True)[0])
        med = {k: min(v) for k, v in samples.items()}
        same_frames = spacing is not None and spacing <= step
        floor = med["floor_keyframes"] if same_frames else med["floor"]
        ratio = med["plugin"] / floor
        keyframes_note = "(the floor)" if same_frames else "(not the same frames: keyframes are sparser)"
        res.add(f"plugin extract_dense every {interval} s ({frames} frames)", round(med["plugin"], 3), "s")
        res.add(f"bare single pass, full decode, every {interval} s", round(med["floor"], 3), "s")
        res.add(
            f"bare single pass, keyframes only, every {interval} s {keyframes_note}",
            round(med["floor_keyframes"], 3),
            "s",
        )
        res.add(f"plugin / floor, every {interval} s", round(ratio, 2), "x", "<= 1.2x", ratio <= 1.2)
        details[f"every_{interval}s"] = {"frames": frames, "samples_s": samples}
    res.details = details
    return res
