"""``tokens``: prompt tokens and request bytes per scene, ``frameLayout`` x ``imageDetail``.

Tokens are the plugin's own ``tokens`` output; bytes are each ``POST /chat/completions`` body
as FakeModel read it. Informational: no target.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.harness import (
    FFMPEG,
    PLUGIN_ID,
    Context,
    Result,
    expect_tagged,
    make_videos,
    run_plugin,
    servers,
    settings_for,
)

FRAMES = 6
SIZE, DURATION = (1280, 720), 10.0


def run(ctx: Context) -> Result:
    from ai_tagger.media.frames import extract_frames

    res = Result("tokens")
    n = ctx.pick(full=4, quick=2, tiny=1)
    videos = make_videos(ctx.media / "tokens", n, size=SIZE)
    jpeg = [extract_frames(str(v), duration=DURATION, count=FRAMES, ffmpeg=FFMPEG, max_side=768) for v in videos]
    jpeg_bytes = sum(len(f) for fs in jpeg for f in fs) / n
    details = ctx.pick(full=("low", "high", "auto"), quick=("low", "high", "auto"), tiny=("low",))
    rows: dict[str, dict[str, Any]] = {}
    for layout in ("separate", "grid"):
        for detail in details:
            with servers() as (stash, model, probe):
                settings = settings_for(model, frameLayout=layout, imageDetail=detail, framesPerScene=FRAMES)
                stash.set_plugin_settings(PLUGIN_ID, settings)
                for path in videos:
                    stash.add_scene(path, duration=DURATION, width=SIZE[0], height=SIZE[1], frame_rate=10.0)
                done, _ = run_plugin(stash, {"mode": "tag_scenes"}, probe=probe)
                output = expect_tagged(done, n, f"{layout}/{detail}")
                requests = [r for r in model.requests if r.get("status") == 200]
                images_per_request = statistics.mean(r["n_images"] for r in requests)
                sent_details = sorted({str(d) for r in requests for d in r["detail"]})
                rows[f"{layout}/{detail}"] = {
                    "prompt_tokens_per_scene": output["tokens"]["prompt"] / n,
                    "total_tokens_per_scene": output["tokens"]["total"] / n,
                    "request_bytes_per_scene": sum(c[2] for c in probe.calls) / n,
                    "requests_per_scene": len(requests) / n,
                    "images_per_request": images_per_request,
                    "image_sizes": sorted({tuple(s) for r in requests for s in r["image_sizes"]}),
                    "detail_sent": sent_details,
                    "grid_used": images_per_request < FRAMES,
                    "detail_honoured": detail == "auto" or sent_details == [detail],
                }
    grid_supported = any(r["grid_used"] for k, r in rows.items() if k.startswith("grid/"))
    for key, row in rows.items():
        layout, detail = key.split("/")
        if layout == "grid" and not grid_supported:
            res.add(f"{key}: prompt tokens / request bytes per scene", "n/a (grid not implemented)", "")
            continue
        flag = "" if row["detail_honoured"] else " [imageDetail not sent]"
        res.add(
            f"{key}: prompt tokens / request bytes per scene{flag}",
            f"{row['prompt_tokens_per_scene']:.0f} / {row['request_bytes_per_scene'] / 1024:.1f}",
            "tokens / KiB",
        )
    res.add("JPEG bytes of the frames per scene (extract_frames, separate)", round(jpeg_bytes / 1024, 1), "KiB")
    res.details = {
        "scenes": n,
        "frames_per_scene": FRAMES,
        "video_size": SIZE,
        "by_setting": rows,
        "grid_supported": grid_supported,
        "jpeg_bytes_per_scene": jpeg_bytes,
    }
    if not grid_supported:
        res.notes.append(
            "frameLayout=grid: every request still carried one image per frame -> grid is not "
            "implemented in the plugin yet; reported n/a."
        )
    if not all(r["detail_honoured"] for r in rows.values()):
        res.notes.append(
            "imageDetail low/high: FakeModel saw no 'detail' on the images (it then counts them at "
            "high detail), so the setting has no effect yet."
        )
    res.notes.append(
        "request bytes = Content length of each POST /chat/completions body as FakeModel read it "
        "(base64 JSON, prompt and vocabulary included)."
    )
    return res
