"""``frames``: 8 frames from a 10-minute 1080p H.264 file, the plugin vs bare ffmpeg.

Compared with a bare ``ffmpeg -ss T -i f -frames:v 1`` loop (``-f null`` and mjpeg pipe) and a
naive full decode (``-vf fps=8/600``). Target: <= 1.2x the bare ``-f null`` loop.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.harness import FFMPEG, Context, Result, media, time_command

COUNT = 8


def long_video(ctx: Context) -> Path:
    minutes, size = ctx.pick(full=(10, (1920, 1080)), quick=(10, (1920, 1080)), tiny=(0.5, (320, 240)))
    path = ctx.media / f"long-{size[1]}p-{minutes:g}min.mp4"
    if not path.exists():
        tmp = path.with_suffix(".part.mp4")
        media.make_long_video(tmp, minutes=minutes, size=size)
        tmp.rename(path)
    return path


def run(ctx: Context) -> Result:
    from ai_tagger.media.frames import extract_frames, timestamps

    res = Result("frames")
    path = long_video(ctx)
    duration = media.probe_duration(path)
    repeats = ctx.pick(full=5, quick=3, tiny=1)
    points = timestamps(duration, COUNT)

    def plugin() -> float:
        started = time.perf_counter()
        got = extract_frames(str(path), duration=duration, count=COUNT, ffmpeg=FFMPEG, max_side=768)
        elapsed = time.perf_counter() - started
        if len(got) != COUNT:
            raise RuntimeError(f"plugin extracted {len(got)} of {COUNT} frames")
        return elapsed

    def bare(jpeg: bool) -> float:
        started = time.perf_counter()
        for at in points:
            output = ["-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"] if jpeg else ["-f", "null", "-"]
            time_command(
                [FFMPEG, "-nostdin", "-loglevel", "error", "-ss", f"{at:.3f}", "-i", str(path), "-frames:v", "1"]
                + output
            )
        return time.perf_counter() - started

    samples: dict[str, list[float]] = {"plugin": [], "bare_null": [], "bare_jpeg": []}
    plugin()  # warm the page cache
    for _ in range(repeats):  # interleaved, so noise hits all three alike
        samples["plugin"].append(plugin())
        samples["bare_null"].append(bare(False))
        samples["bare_jpeg"].append(bare(True))
    med = {k: statistics.median(v) for k, v in samples.items()}
    naive_limit = None if ctx.size != "quick" else 60
    naive_cmd = [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path)]
    if naive_limit:
        naive_cmd += ["-t", str(naive_limit)]
    naive_cmd += ["-vf", f"fps={COUNT}/{duration:.3f}", "-f", "null", "-"]
    naive = time_command(naive_cmd)
    if naive_limit:
        naive *= duration / naive_limit
    ratio_null = med["plugin"] / med["bare_null"]
    res.add(f"plugin extract_frames, {COUNT} frames from {path.stem}", round(med["plugin"], 3), "s")
    res.add("bare ffmpeg -ss loop (-f null), same timestamps", round(med["bare_null"], 3), "s")
    res.add("bare ffmpeg -ss loop (mjpeg pipe)", round(med["bare_jpeg"], 3), "s")
    res.add("plugin / bare loop (-f null)", round(ratio_null, 2), "x", "<= 1.2x", ratio_null <= 1.2)
    res.add("plugin / bare loop (mjpeg pipe)", round(med["plugin"] / med["bare_jpeg"], 2), "x")
    res.add(
        "naive full decode (fps filter)" + (" [extrapolated from 60 s]" if naive_limit else ""), round(naive, 2), "s"
    )
    res.add("plugin / naive full decode", round(med["plugin"] / naive, 3), "x")
    res.add("per frame (plugin)", round(med["plugin"] / COUNT * 1000), "ms")
    res.details = {
        "file": str(path),
        "duration_s": duration,
        "timestamps": points,
        "repeats": repeats,
        "samples_s": samples,
        "naive_s": naive,
        "naive_extrapolated": bool(naive_limit),
    }
    return res
