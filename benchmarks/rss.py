"""``rss``: peak RSS of the plugin process over a large library (1 frame, tiny video, latency 0).

20,000 scenes plus a 1,000-scene run (``--rss-scenes`` changes the large one; ``--rss-cached``
gives every scene one fingerprint so the result cache answers all but the first). Target:
<= 200 MB.
"""

from __future__ import annotations

from benchmarks.harness import PLUGIN_ID, Context, Result, expect_tagged, media, run_plugin, servers, settings_for


def run(ctx: Context) -> Result:
    res = Result("rss")
    tiny = ctx.media / "tiny-64x64-1s.mp4"
    if not tiny.exists():
        media.make_video(tiny, ["red"], seconds_per_colour=1, size=(64, 64))
    big = ctx.rss_scenes or ctx.pick(full=20_000, quick=2000, tiny=4)
    small = ctx.pick(full=min(1000, big), quick=min(200, big), tiny=min(2, big))
    sizes = tuple(sorted({small, big}))
    runs = {}
    for n in sizes:
        with servers(latency=0.0) as (stash, model, probe):
            stash.set_plugin_settings(PLUGIN_ID, settings_for(model, framesPerScene=1))
            stash.seed_scenes(n, tiny)
            if ctx.rss_cached:  # one file everywhere: the first answer serves all, no ffmpeg after it
                with stash.lock:
                    for scene in stash.scenes.values():
                        scene["file"]["fingerprints"] = [{"type": "oshash", "value": "0" * 16}]
            marks = tuple(m for m in (100, 1000, 5000, 10_000, 15_000, n) if m <= n)
            done, vmhwm = run_plugin(stash, {"mode": "tag_scenes"}, watch_rss=True, probe=probe, rss_marks=marks)
            expect_tagged(done, n, f"{n} scenes")
            runs[n] = {
                "scenes": n,
                "peak_rss_mb": (done.peak_rss_kb or 0) / 1024,
                "wall_s": done.wall,
                "scenes_per_s": n / done.wall,
                "vmhwm_mb_at_writes": {k: round(v / 1024, 1) for k, v in sorted(vmhwm.items())},
            }
    for n, row in runs.items():
        largest = n == max(sizes)
        how = " (one file, answers from the result cache)" if ctx.rss_cached else ""
        res.add(
            f"peak RSS, {n:,} scenes{how}",
            round(row["peak_rss_mb"], 1),
            "MB",
            "<= 200 MB" if largest else "",
            row["peak_rss_mb"] <= 200 if largest else None,
        )
        res.add(f"run time, {n:,} scenes", f"{row['wall_s']:.0f} ({row['scenes_per_s']:.1f} scenes/s)", "s")
    res.details = {"runs": runs, "frames_per_scene": 1, "video": "64x64, 1 s", "latency_s": 0}
    res.notes.append(
        "RSS is the plugin process's VmHWM (polled every 50 ms from /proc), not its ffmpeg "
        "children; FakeStash/FakeModel live in the benchmark process. vmhwm_mb_at_writes shows the "
        "peak so far when the N-th item was written (flat = constant memory)."
    )
    return res
