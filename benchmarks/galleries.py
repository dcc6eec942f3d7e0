"""``galleries``: model calls, pictures and tokens per gallery, with and without cached members.

Four runs on the bundled servers, each from a fresh cache: galleries of ``IMAGES`` photo-sized
images tagged from scratch; the same after ``tag_images`` tagged every member (all members
cached); after half the members were tagged; and, for scale, one scene at the default
``framesPerScene`` (6). The claim the docs make, "a 200-image set costs as much as one scene",
is the ratio of the first to the last. Figures are the plugin's own ``tokens`` and
``gateway_calls`` output and what FakeModel received; no timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import (
    COLOURS,
    PLUGIN_ID,
    Context,
    Result,
    expect_tagged,
    make_videos,
    run_plugin,
    servers,
    settings_for,
)
from tests import media
from tests.servers.stash_server import FakeStash

SIZE = (1200, 900)


def _photos(folder: Path, n: int) -> list[Path]:
    """n photo-sized JPEGs in runs of one colour (a set is mostly one thing), made once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"p{i:05d}.jpg"
        if not path.exists():
            media.make_image(path, COLOURS[(i * len(COLOURS)) // max(n, 1)], size=SIZE)
        paths.append(path)
    return paths


def _galleries(stash: FakeStash, photos: list[Path], count: int) -> list[str]:
    """``count`` galleries over the same photos, each member its own image (own fingerprint).

    Every gallery's first half gets lower image ids than any second half, so ``tag_images``
    with a limit of half the images tags the first half of each gallery (a gallery's order is
    its paths', whatever the ids)."""
    half = len(photos) // 2
    ids: dict[int, list[str]] = {g: [] for g in range(count)}
    for part in (range(half), range(half, len(photos))):
        for g in range(count):
            ids[g] += [
                stash.add_image(photos[i], width=SIZE[0], height=SIZE[1], fingerprints={"md5": f"g{g}-{i}"})
                for i in part
            ]
    return [stash.add_gallery(image_ids=ids[g], title=f"Set {g}") for g in range(count)]


def _gallery_run(photos: list[Path], count: int, cached_share: float) -> dict[str, Any]:
    with servers() as (stash, model, probe):
        stash.set_plugin_settings(PLUGIN_ID, settings_for(model))
        _galleries(stash, photos, count)
        if cached_share:
            tagged = count * round(len(photos) * cached_share)
            done, _ = run_plugin(stash, {"mode": "tag_images", "limit": tagged}, probe=probe)
            expect_tagged(done, tagged, "tag_images before the galleries")
        calls, pictures = model.completion_count, model.images_received
        done, _ = run_plugin(stash, {"mode": "tag_galleries"}, probe=probe)
        output = expect_tagged(done, count, f"tag_galleries ({cached_share:.0%} cached)")
        return {
            "calls_per_gallery": output["gateway_calls"] / count,
            "tokens_per_gallery": output["tokens"]["total"] / count,
            "prompt_tokens_per_gallery": output["tokens"]["prompt"] / count,
            "pictures_per_gallery": (model.images_received - pictures) / count,
            "model_requests": model.completion_count - calls,
        }


def _scene_run(video: Path) -> dict[str, Any]:
    with servers() as (stash, model, probe):
        stash.set_plugin_settings(PLUGIN_ID, settings_for(model))
        stash.add_scene(video, duration=10.0, width=SIZE[0], height=SIZE[1], frame_rate=10.0)
        done, _ = run_plugin(stash, {"mode": "tag_scenes"}, probe=probe)
        output = expect_tagged(done, 1, "tag_scenes")
        return {
            "calls": output["gateway_calls"],
            "tokens": output["tokens"]["total"],
            "pictures": model.images_received,
        }


def run(ctx: Context) -> Result:
    res = Result("galleries")
    images = ctx.pick(full=200, quick=60, tiny=8)
    count = ctx.pick(full=3, quick=2, tiny=1)
    photos = _photos(ctx.media / f"gallery-photos-{images}", images)
    rows = {
        "uncached": _gallery_run(photos, count, 0.0),
        "half cached": _gallery_run(photos, count, 0.5),
        "all cached": _gallery_run(photos, count, 1.0),
    }
    [video] = make_videos(ctx.media / "gallery-scene", 1, size=SIZE)
    scene = _scene_run(video)
    for name, row in rows.items():
        res.add(
            f"{images}-image gallery, {name}: calls / pictures / tokens per gallery",
            f"{row['calls_per_gallery']:.2f} / {row['pictures_per_gallery']:.1f} / {row['tokens_per_gallery']:.0f}",
            "calls / pictures / tokens",
        )
    res.add(
        "one scene (framesPerScene 6): calls / pictures / tokens",
        f"{scene['calls']} / {scene['pictures']} / {scene['tokens']}",
        "calls / pictures / tokens",
    )
    ratio = rows["uncached"]["tokens_per_gallery"] / scene["tokens"] if scene["tokens"] else float("nan")
    res.add(f"tokens of a {images}-image gallery / tokens of one scene", round(ratio, 2), "x", "<= 1.1", ratio <= 1.1)
    res.add(
        "model calls per gallery with every sampled member cached",
        rows["all cached"]["calls_per_gallery"],
        "calls",
        "0",
        rows["all cached"]["calls_per_gallery"] == 0,
    )
    res.details = {"images_per_gallery_in_stash": images, "galleries": count, "by_case": rows, "scene": scene}
    res.notes.append(
        "imagesPerGallery 6 (default): a gallery sends at most 6 pictures in one request, like a scene's 6 frames; "
        "'half cached': the first half of every gallery was tagged as images first, so the sampled members "
        "in that half cost nothing and the rest go in one request."
    )
    return res
