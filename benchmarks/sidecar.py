"""Benchmark ``sidecar``: ``tag_scenes`` through the local-model sidecar vs the model in process.

    python3 -m benchmarks --only sidecar [--quick]

The same scenes as the ``local`` benchmark (10 s videos of scikit-image's photographs, 6 frames
each), tagged end to end twice per round on the same machine: ``provider: local`` (the detector
in the plugin's process) and ``provider: labels`` pointed at ``python3 -m ai_tagger.serve`` on
127.0.0.1 (default ``--workers``, started once, model loaded before the first round). Rates are
scenes / (wall - wall of a run with nothing to do), best of the interleaved rounds. The sidecar
adds base64, JSON and HTTP per scene and shares the CPU with the plugin and ffmpeg, as it would
on one machine. Target: sidecar >= 90 % of in process. Also reported: the sidecar's RSS.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.harness import Context, Result  # noqa: E402
from benchmarks.local_model import _plugin_rate, _videos  # noqa: E402
from tests.sidecar import sidecar  # noqa: E402

TARGET = 0.9
NAME = "sidecar"


def measure(*, scenes: int, media_dir: Path, rounds: int = 1) -> dict[str, Any]:
    """Every figure as plain numbers: scenes/s in process and through the sidecar, their ratio."""
    videos = _videos(media_dir / "local-model")
    samples: dict[str, list[dict[str, Any]]] = {"local": [], "sidecar": []}
    with tempfile.TemporaryDirectory() as folder, sidecar(Path(folder) / "serve.log") as server:
        labels = {"provider": "labels", "gatewayUrl": server.url, "model": "nudenet-320n"}
        for _ in range(rounds):
            samples["local"].append(_plugin_rate(videos, scenes))
            samples["sidecar"].append(_plugin_rate(videos, scenes, labels))
        rss_mb, peak_mb = server.rss_kb() / 1024, server.rss_kb("VmHWM") / 1024
        busy = server.log().count("status=503")
    local = max(samples["local"], key=lambda run: run["scenes_per_s"])
    served = max(samples["sidecar"], key=lambda run: run["scenes_per_s"])
    if local["scenes_with_a_face"] != served["scenes_with_a_face"]:
        raise RuntimeError(f"the sidecar tagged other scenes than provider local: {served} vs {local}")
    return {
        "scenes": scenes,
        "cores": os.cpu_count(),
        "local_scenes_per_s": local["scenes_per_s"],
        "sidecar_scenes_per_s": served["scenes_per_s"],
        "ratio": served["scenes_per_s"] / local["scenes_per_s"],
        "scenes_with_a_face": served["scenes_with_a_face"],
        "sidecar_rss_mb": rss_mb,
        "sidecar_peak_rss_mb": peak_mb,
        "sidecar_503s": busy,
        "rounds": rounds,
        "samples": {name: [run["scenes_per_s"] for run in runs] for name, runs in samples.items()},
        "runs": {"local": local, "sidecar": served},
    }


def run(ctx: Context) -> Result:
    """The benchmark (``python3 -m benchmarks --only sidecar``): sizes from ``ctx``, a ``Result`` out."""
    res = Result(NAME)
    m = measure(
        scenes=ctx.pick(full=60, quick=12, tiny=2), media_dir=ctx.media, rounds=ctx.pick(full=3, quick=1, tiny=1)
    )
    res.add("end-to-end, provider local (in process)", round(m["local_scenes_per_s"], 2), "scenes/s")
    res.add("end-to-end, provider labels -> sidecar", round(m["sidecar_scenes_per_s"], 2), "scenes/s")
    res.add("sidecar / in process", round(m["ratio"] * 100), "%", ">= 90 %", m["ratio"] >= TARGET)
    res.add("sidecar RSS after the runs (peak)", f"{m['sidecar_rss_mb']:.0f} ({m['sidecar_peak_rss_mb']:.0f})", "MB")
    res.details = m
    res.notes.append("both on this machine: the sidecar shares the cores with the plugin and ffmpeg; rates are "
                     f"scenes / (wall - empty-run wall), best of {m['rounds']} interleaved round(s).")  # fmt: skip
    return res
