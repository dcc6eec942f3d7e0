"""Benchmark ``faces``: performers recognised by face (``recognizePerformers``).

    python3 -m benchmarks --only faces [--quick]

Four figures:

* embed rate: faces embedded per second (5-point landmarks + 128-d ResNet, dlib) on the
  astronaut photograph, given her face box (as NudeNet's boxes give it), and with dlib's HOG
  detector finding it first;
* match: one face against an index of 10,000 performers (target <= 1 ms), and the index's
  size and the process's resident growth once built (target <= 60 MB);
* unchanged re-index: ``PerformerIndexer.run`` over 1,000 performers whose images did not change
  (target <= 2 s): one query, no download, no embedding;
* on/off: ``tag_scenes`` with ``provider: local`` on the same scenes with ``recognizePerformers``
  on and off, the plugin run as Stash runs it; scenes/s of each (wall minus the wall of a run
  with nothing to do) and on / off (target >= 60 %).
"""

from __future__ import annotations

import hashlib
import io
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.harness import Context, Result  # noqa: E402
from tests import faces, media  # noqa: E402
from tests.conftest import PLUGIN_ID, run_plugin  # noqa: E402
from tests.servers.stash_server import FakeStash  # noqa: E402

NAME = "faces"
ASTRONAUT_BOX = (172, 82, 102, 97)
"""NudeNet's face box on the astronaut photograph."""


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def embed_rate(repeats: int) -> dict[str, float]:
    from ai_tagger.analyze.faces.engine import FaceEngine

    started = time.perf_counter()
    engine = FaceEngine.load()
    load_s = time.perf_counter() - started
    picture = faces.photo_jpeg("astronaut")
    engine.faces(picture, [ASTRONAUT_BOX])
    started = time.perf_counter()
    for _ in range(repeats):
        engine.faces(picture, [ASTRONAUT_BOX])
    boxed = repeats / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(repeats):
        engine.faces(picture)
    detected = repeats / (time.perf_counter() - started)
    return {"faces_per_s_given_box": boxed, "faces_per_s_with_hog": detected, "model_load_s": load_s}


def match_time(performers: int, queries: int) -> dict[str, float]:
    """Mean ms per match against ``performers`` (a fifth of them with a second, learned face)."""
    import gc

    import numpy

    from ai_tagger.analyze.faces.index import FaceIndex
    from ai_tagger.store.faces import pack

    rng = numpy.random.default_rng(21)
    before = _rss_kb()
    rows: list[tuple[str, bytes]] = []
    for number in range(performers):
        for _ in range(2 if number % 5 == 0 else 1):
            rows.append((f"{number:06d}", pack(rng.normal(0, 0.09, 128).tolist())))
    index = FaceIndex.build(rows)
    faces_count = len(rows)
    del rows
    gc.collect()
    grown_mb = (_rss_kb() - before) / 1024
    probes = [rng.normal(0, 0.09, 128).astype(numpy.float32) for _ in range(queries)]
    index.match(probes[0], 0.55)
    started = time.perf_counter()
    for probe in probes:
        index.match(probe, 0.55)
    per_match_ms = (time.perf_counter() - started) / queries * 1000
    return {"match_ms": per_match_ms, "index_mb": index.nbytes / 2**20, "rss_growth_mb": max(grown_mb, 0.0),
            "faces": faces_count}  # fmt: skip


def reindex_unchanged(performers: int, tmp: Path) -> dict[str, float]:
    """Seconds of an unchanged re-index of ``performers`` performers (their faces already stored)."""
    from ai_tagger.analyze.faces.indexer import PerformerIndexer
    from ai_tagger.log import Log
    from ai_tagger.stash.client import StashClient
    from ai_tagger.stash.models import ServerConnection
    from ai_tagger.store.cache import Cache
    from ai_tagger.store.faces import FaceStore, Source

    picture = faces.photo_jpeg("astronaut")
    checksum = hashlib.sha256(picture).hexdigest()
    rng = random.Random(21)
    with FakeStash() as stash:
        ids = [stash.add_performer(f"Performer {n}", picture) for n in range(performers)]
        client = StashClient(ServerConnection.model_validate(stash.server_connection()))
        cache = Cache(tmp / "reindex.sqlite3")
        store = FaceStore(cache)
        for performer in client.performers():
            vector = [rng.gauss(0, 0.09) for _ in range(128)]
            store.record(Source(f"performer:{performer.id}", performer.id, performer.image_path or "", checksum,
                                "indexed"), vector)  # fmt: skip
        requests_before = sum(stash.media_requests.values())
        indexer = PerformerIndexer(client, cache, Log(io.StringIO()), engine=None, boxes=None)  # type: ignore[arg-type]
        started = time.perf_counter()
        summary = indexer.run()
        seconds = time.perf_counter() - started
        downloads = sum(stash.media_requests.values()) - requests_before
        cache.close()
    assert summary.counts["unchanged"] == len(ids), summary
    return {"reindex_s": seconds, "downloads": downloads}


def _library(stash: FakeStash, folder: Path, scenes: int, recognize: bool) -> None:
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "recognizePerformers": recognize,
                                          "framesPerScene": 6})  # fmt: skip
    stash.add_performer("Eileen", faces.photo_jpeg("astronaut"))
    stash.add_performer("Cameraman", faces.photo_jpeg("camera"))
    videos = []
    for name in ("astronaut", "camera", "chelsea", "coffee"):
        video = folder / f"faces-{name}.mp4"
        if not video.exists():
            still = faces.save(faces.altered(name) if name in faces.PEOPLE else media.photo(name),
                               folder / f"faces-{name}.jpg")  # fmt: skip
            media.make_still_video(video, still, seconds=10, fps=25)
        videos.append(video)
    for number in range(scenes):
        stash.add_scene(videos[number % len(videos)])


def on_off(scenes: int, folder: Path) -> dict[str, float]:
    """Scenes/s of ``tag_scenes`` (provider local) with recognition on and off."""
    rates: dict[str, float] = {}
    for recognize in (False, True):
        with FakeStash() as stash:
            _library(stash, folder, scenes, recognize)
            if recognize:
                run_plugin(stash, {"mode": "index_performers"}, timeout=600)
            run = run_plugin(stash, {"mode": "tag_scenes"}, timeout=3600)
            assert run.error is None, run.stderr[-2000:]
            idle = run_plugin(stash, {"mode": "tag_scenes"}, timeout=600)
            rates["on" if recognize else "off"] = scenes / max(run.wall - idle.wall, 1e-6)
    return {"off_scenes_per_s": rates["off"], "on_scenes_per_s": rates["on"], "ratio": rates["on"] / rates["off"]}


def run(ctx: Context) -> Result:
    """The benchmark (``python3 -m benchmarks --only faces``): sizes from ``ctx``, a ``Result`` out."""
    res = Result(NAME)
    details: dict[str, Any] = {}
    embed = embed_rate(ctx.pick(full=30, quick=10, tiny=2))
    details.update(embed)
    res.add("faces embedded, box given (NudeNet's)", round(embed["faces_per_s_given_box"], 1), "faces/s")
    res.add("faces found (dlib HOG) and embedded", round(embed["faces_per_s_with_hog"], 1), "faces/s")
    performers = ctx.pick(full=10_000, quick=10_000, tiny=500)
    matched = match_time(performers, ctx.pick(full=2000, quick=500, tiny=50))
    details.update(matched)
    res.add(f"match one face, {performers:,} performers", round(matched["match_ms"], 3), "ms", "<= 1 ms",
            matched["match_ms"] <= 1.0)  # fmt: skip
    res.add(f"index resident growth, {performers:,} performers", round(matched["rss_growth_mb"], 1), "MB",
            "<= 60 MB", matched["rss_growth_mb"] <= 60)  # fmt: skip
    res.add("index matrix", round(matched["index_mb"], 2), "MB")
    indexed = ctx.pick(full=1000, quick=1000, tiny=50)
    reindex = reindex_unchanged(indexed, ctx.media)
    details.update(reindex)
    res.add(f"unchanged re-index, {indexed:,} performers", round(reindex["reindex_s"], 3), "s", "<= 2 s",
            reindex["reindex_s"] <= 2.0)  # fmt: skip
    res.add("images downloaded by the unchanged re-index", reindex["downloads"], "requests", "0",
            reindex["downloads"] == 0)  # fmt: skip
    both = on_off(ctx.pick(full=24, quick=8, tiny=2), ctx.media)
    details.update(both)
    res.add("tag_scenes local, recognition off", round(both["off_scenes_per_s"], 2), "scenes/s")
    res.add("tag_scenes local, recognition on", round(both["on_scenes_per_s"], 2), "scenes/s")
    res.add("on / off throughput", round(both["ratio"] * 100), "%", ">= 60 %", both["ratio"] >= 0.6)
    res.details = details
    res.notes.append("on/off: scenes / (wall - wall of a run with nothing to do), 6 frames per scene, "
                     "videos of altered sample photographs (two faces, a cat, a cup).")  # fmt: skip
    return res
