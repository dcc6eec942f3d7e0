"""``keyframes``: spread sampling's keyframe mode vs exact mode vs the keyframe-only floor, and what it buys.

    python3 -m benchmarks --only keyframes [--quick]

On the same files in one run (10-minute 1080p H.264 of moving test patterns, one with a
keyframe every 10 s and one every 0.5 s):

* extraction CPU per frame (ffmpeg's and this process's, from ``getrusage``) of
  :func:`~ai_tagger.media.frames.extract_spread` in keyframe mode and in exact mode (``exactFrames``),
  and the floor: a bare single ``ffmpeg -skip_frame nokey`` pass decoding, scaling and encoding
  every keyframe, per frame. Target: keyframe mode <= 1.3x the floor.
* the CPU budget of one scene by stage: extraction, the detector's JPEG decode and resize, its
  inference, and the rest of the plugin (Stash GraphQL, SQLite, decisions, process start),
  which is the end-to-end CPU per scene less the stages measured alone;
* local end-to-end scenes/s (``provider: local``, the plugin run as Stash runs it, start-up
  taken off as in ``local``) in keyframe mode vs exact mode. Target: >= 3x on the long-GOP file.
* projected hours for a 20,000-scene library at the measured rate, and in CPU core-hours
  (divide by a machine's cores).

CPU is measured rather than wall time where it can be: on a shared machine other jobs slow the
wall clock, not the CPU a process spends. Every figure is the best of its interleaved repeats.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import FFMPEG, Context, Result, media
from tests.conftest import PLUGIN_ID, run_plugin
from tests.servers.stash_server import FakeStash

NAME = "keyframes"
FRAMES = 6
MAX_SIDE = 768
GOPS = (("long-GOP", 10.0), ("short-GOP", 0.5))
LIBRARY = 20_000
FLOOR_TARGET = 1.3
SPEEDUP_TARGET = 3.0


def cpu() -> float:
    """CPU seconds of this process and its finished children (ffmpeg, the plugin and its ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def children_cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def gop_video(ctx: Context, gop_s: float) -> Path:
    """A moving test pattern with a keyframe every ``gop_s`` seconds, made once per size.

    One clip of whole GOPs is encoded and stream-copied end to end (as ``make_long_video`` does),
    so a 10-minute 1080p file takes seconds to make and real pictures to decode.
    """
    minutes, (width, height), fps = ctx.pick(
        full=(10, (1920, 1080), 25), quick=(10, (1920, 1080), 25), tiny=(1, (320, 240), 10)
    )
    path = ctx.media / f"gop{gop_s:g}s-{height}p-{minutes:g}min.mp4"
    if path.exists():
        return path
    gop = max(1, round(gop_s * fps))
    clip_frames = gop * max(1, round(10 * fps / gop))
    with tempfile.TemporaryDirectory(prefix="gop-video-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        subprocess.run(
            [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=s={width}x{height}:r={fps}", "-frames:v", str(clip_frames), "-c:v", "libx264",
             "-preset", "veryfast", "-crf", "30", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
             "-pix_fmt", "yuv420p", str(clip)],
            check=True,
        )  # fmt: skip
        repeats = max(1, round(minutes * 60 * fps / clip_frames))
        listing = Path(tmp) / "list.txt"
        listing.write_text(f"file '{clip.as_posix()}'\n" * repeats)
        part = path.with_suffix(".part.mp4")
        subprocess.run(
            [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
             "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(part)],
            check=True,
        )  # fmt: skip
        part.rename(path)
    return path


def _floor(path: Path, limit_s: float) -> tuple[float, int]:
    """CPU seconds and frames of a bare keyframes-only pass (decode, scale, JPEG) over ``limit_s`` seconds."""
    from ai_tagger.media.frames import _scale

    command = [
        FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-skip_frame", "nokey", "-threads", "1",
        "-t", f"{limit_s:.3f}", "-i", str(path), "-map", "0:v:0", "-vf", _scale(MAX_SIDE), "-fps_mode", "passthrough",
        "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1",
    ]  # fmt: skip
    before = children_cpu()
    done = subprocess.run(command, capture_output=True, check=True)
    return children_cpu() - before, done.stdout.count(b"\xff\xd9")


def ffmpeg_start(repeats: int) -> float:
    """CPU seconds of starting ffmpeg with nothing to do: what every scene pays once, whatever it decodes."""
    spent = []
    for _ in range(max(3, repeats)):
        before = children_cpu()
        subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-version"], capture_output=True, check=True)
        spent.append(children_cpu() - before)
    return min(spent)


def extraction(path: Path, duration: float, repeats: int) -> dict[str, Any]:
    """Best CPU per frame of keyframe mode, exact mode and the floor, interleaved; and one scene's frames."""
    from ai_tagger.media.frames import extract_spread

    samples: dict[str, list[float]] = {"keyframe": [], "exact": [], "floor": []}
    timed: dict[str, list[tuple[float, bytes]]] = {}
    limit = min(duration, 120 * max(1.0, duration / 600))
    for _ in range(repeats):
        for mode in ("keyframe", "exact"):
            before = cpu()
            timed[mode] = extract_spread(
                str(path), duration=duration, count=FRAMES, ffmpeg=FFMPEG, max_side=MAX_SIDE, exact=mode == "exact"
            )
            samples[mode].append((cpu() - before) / len(timed[mode]))
        spent, frames = _floor(path, limit)
        samples["floor"].append(spent / max(frames, 1))
    return {"ms_per_frame": {k: min(v) * 1000 for k, v in samples.items()},
            "samples_ms": {k: [round(x * 1000, 1) for x in v] for k, v in samples.items()},
            "times": {k: [at for at, _ in v] for k, v in timed.items()}, "frames": timed}  # fmt: skip


def detector_stages(pictures: list[bytes], repeats: int) -> dict[str, float] | None:
    """CPU ms per scene of the detector's decode+resize, inference and post-processing; None without it."""
    from ai_tagger.analyze.local.detector import Detector, DetectorUnavailable

    try:
        detector = Detector.load()
    except DetectorUnavailable:
        return None
    detector.detect(pictures)

    def best(work: Any) -> float:
        spent = []
        for _ in range(repeats):
            before = cpu()
            work()
            spent.append(cpu() - before)
        return min(spent) * 1000

    prepared = [detector._prepare(i, p) for i, p in enumerate(pictures, 1)]
    batch = detector._np.vstack([blob for blob, _ in prepared])
    output = detector._session.run(None, {detector._input: batch})[0]
    return {
        "decode_resize": best(lambda: [detector._prepare(i, p) for i, p in enumerate(pictures, 1)]),
        "inference": best(lambda: detector._session.run(None, {detector._input: batch})),
        "postprocess": best(lambda: [detector._postprocess(output[i : i + 1], m) for i, (_, m) in enumerate(prepared)]),
    }


def end_to_end(path: Path, duration: float, scenes: int, exact: bool) -> dict[str, float]:
    """Scenes/s and CPU per scene of ``tag_scenes`` with the local model, start-up (an empty run) taken off."""
    with FakeStash() as stash:
        stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "framesPerScene": FRAMES, "minConfidence": 50,
                                              "exactFrames": exact})  # fmt: skip
        stash.seed_scenes(scenes, path, duration=duration)
        before, started = children_cpu(), time.perf_counter()
        run = run_plugin(stash, {"mode": "tag_scenes"}, timeout=3600)
        wall, spent = time.perf_counter() - started, children_cpu() - before
        if run.error or (run.output or {}).get("processed") != scenes:
            raise RuntimeError(f"local run failed: {run.error or run.output}")
        before, started = children_cpu(), time.perf_counter()
        empty = run_plugin(stash, {"mode": "tag_scenes"})
        startup, startup_cpu = time.perf_counter() - started, children_cpu() - before
        if empty.error:
            raise RuntimeError(f"empty run failed: {empty.error}")
    return {"scenes_per_s": scenes / max(wall - startup, 1e-9),
            "cpu_ms_per_scene": max(spent - startup_cpu, 0.0) / scenes * 1000}  # fmt: skip


def run(ctx: Context) -> Result:
    res = Result(NAME)
    repeats = ctx.pick(full=5, quick=3, tiny=1)
    scenes = ctx.pick(full=8, quick=4, tiny=2)
    rounds = ctx.pick(full=2, quick=1, tiny=1)
    details: dict[str, Any] = {"frames_per_scene": FRAMES, "max_side": MAX_SIDE, "cores": os.cpu_count()}
    budget: dict[str, dict[str, float]] = {}
    start_ms = ffmpeg_start(repeats) * 1000
    res.add("ffmpeg start-up (one per scene)", round(start_ms, 1), "ms CPU")
    details["ffmpeg_start_ms"] = start_ms
    for label, gop_s in GOPS:
        path = gop_video(ctx, gop_s)
        duration = media.probe_duration(path)
        measured = extraction(path, duration, repeats)
        ms = measured["ms_per_frame"]
        ratio = ms["keyframe"] / ms["floor"]
        res.add(f"{label}: extraction CPU per frame, keyframe mode", round(ms["keyframe"], 1), "ms")
        res.add(f"{label}: extraction CPU per frame, exact mode", round(ms["exact"], 1), "ms")
        res.add(f"{label}: extraction CPU per frame, keyframe-only floor", round(ms["floor"], 1), "ms")
        res.add(f"{label}: keyframe / floor", round(ratio, 2), "x", f"<= {FLOOR_TARGET}x", ratio <= FLOOR_TARGET)
        decoding = (ms["keyframe"] - start_ms / FRAMES) / ms["floor"]
        res.add(f"{label}: keyframe less ffmpeg's start-up / floor", round(decoding, 2), "x")
        res.add(f"{label}: exact / keyframe", round(ms["exact"] / ms["keyframe"], 1), "x")
        entry: dict[str, Any] = {"file": str(path), "duration_s": duration, **{k: v for k, v in measured.items()
                                                                                 if k != "frames"}}  # fmt: skip
        stages = detector_stages([frame for _, frame in measured["frames"]["keyframe"]], repeats * 3)
        if stages is not None and ctx.size == "tiny" and label != GOPS[0][0]:
            details[label] = entry  # the test run: one file end to end is enough to show it works
            continue
        if stages is None:
            res.notes.append(f"{label}: the local model is not installed: no detector stages or end-to-end figures")
            details[label] = entry
            continue
        rates: dict[str, list[dict[str, float]]] = {"keyframe": [], "exact": []}
        for _ in range(rounds):  # interleaved
            for mode in rates:
                rates[mode].append(end_to_end(path, duration, scenes, exact=mode == "exact"))
        best = {mode: max(r, key=lambda x: x["scenes_per_s"]) for mode, r in rates.items()}
        least_cpu = {mode: min(x["cpu_ms_per_scene"] for x in r) for mode, r in rates.items()}
        speedup = best["keyframe"]["scenes_per_s"] / best["exact"]["scenes_per_s"]
        for mode in ("exact", "keyframe"):
            extract_ms = ms[mode] * FRAMES
            rest = max(least_cpu[mode] - extract_ms - sum(stages.values()), 0.0)
            budget[f"{label} {mode}"] = {"extraction": extract_ms, **stages, "plugin_rest": rest,
                                         "total": least_cpu[mode]}  # fmt: skip
            rate = best[mode]["scenes_per_s"]
            res.add(f"{label}: local end to end, {mode} mode", round(rate, 3), "scenes/s")
            res.add(f"{label}: CPU per scene, {mode} mode", round(least_cpu[mode]), "ms")
            res.add(f"{label}: {LIBRARY:,} scenes at that rate, {mode} mode", round(LIBRARY / rate / 3600, 1), "h")
            res.add(f"{label}: {LIBRARY:,} scenes, {mode} mode, CPU", round(LIBRARY * least_cpu[mode] / 3.6e6, 1),
                    "core-h")  # fmt: skip
        target = f">= {SPEEDUP_TARGET:g}x" if label == "long-GOP" else ""
        res.add(f"{label}: end to end keyframe / exact", round(speedup, 2), "x", target,
                speedup >= SPEEDUP_TARGET if target else None)  # fmt: skip
        res.add(f"{label}: CPU per scene exact / keyframe", round(least_cpu["exact"] / least_cpu["keyframe"], 2), "x")
        entry["end_to_end"] = rates
        entry["detector_ms_per_scene"] = stages
        details[label] = entry
    details["cpu_budget_ms_per_scene"] = {k: {s: round(v, 1) for s, v in b.items()} for k, b in budget.items()}
    for key, stages_ms in budget.items():
        parts = ", ".join(f"{stage} {value:.0f}" for stage, value in stages_ms.items())
        res.notes.append(f"CPU ms per scene, {key}: {parts}")
    res.notes.append(f"{FRAMES} frames per scene at most {MAX_SIDE} px; best of interleaved repeats; the plugin's "
                     "rest is end-to-end CPU less the stages measured alone.")  # fmt: skip
    res.details = details
    return res
