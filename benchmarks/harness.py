"""What every benchmark shares: sizes, results, the bundled servers, the plugin runner, media.

The plugin runs exactly as the tests run it (:mod:`tests.runner`: a subprocess fed Stash's stdin
JSON). FakeStash and FakeModel run in *this* process and are observed through their
``listeners`` callbacks (:class:`Probe`), never patched.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from tests import media, runner
from tests.runner import REPO, PluginRun
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

PLUGIN_ID = "ai_tagger"
RESULTS = REPO / "benchmarks" / "results"
MEDIA_CACHE = RESULTS / "media"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
COLOURS = ("red", "green", "blue", "yellow", "white", "black")
WRITES = ("BulkSceneUpdate", "BulkImageUpdate")

Size = Literal["tiny", "quick", "full"]
T = TypeVar("T")


@dataclass
class Figure:
    metric: str
    value: float | str | None
    unit: str
    target: str = ""
    ok: bool | None = None  # None: informational, no target

    @property
    def status(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "target": self.target or None,
            "status": self.status or None,
        }


@dataclass
class Result:
    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, metric: str, value: Any, unit: str, target: str = "", ok: bool | None = None) -> None:
        self.figures.append(Figure(metric, value, unit, target, ok))

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": [f.as_json() for f in self.figures],
            "details": self.details,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
            "error": self.error,
        }


@dataclass
class Context:
    """How big to run: ``full`` (the targets), ``quick`` (a smoke run), ``tiny`` (the CI test)."""

    size: Size
    media: Path
    rss_scenes: int | None = None
    rss_cached: bool = False

    @property
    def quick(self) -> bool:
        return self.size != "full"

    def pick(self, full: T, quick: T, tiny: T) -> T:
        return {"full": full, "quick": quick, "tiny": tiny}[self.size]


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation (q in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def settings_for(model: FakeModel, **extra: Any) -> dict[str, Any]:
    return {"gatewayUrl": model.base_url, "apiKey": model.api_key, "model": model.models[0], **extra}


class Probe:
    """Timestamps (perf_counter, this process) of what the servers saw: preflight, each model
    call (start, end, request body bytes) and each item write; read through the servers'
    ``listeners``. ``on_write(n)`` runs at the n-th item write."""

    def __init__(self, stash: FakeStash, model: FakeModel | None) -> None:
        self.lock = threading.Lock()
        self.preflight: list[float] = []
        self.calls: list[tuple[float, float, int]] = []
        self.writes: list[float] = []
        self.on_write: Callable[[int], None] | None = None
        self._servers = (stash, model)
        stash.listeners.append(self._stash_request)
        if model is not None:
            model.listeners.append(self._model_request)

    def close(self) -> None:
        """Stop listening (the servers outlive the probe)."""
        stash, model = self._servers
        stash.listeners.remove(self._stash_request)
        if model is not None:
            model.listeners.remove(self._model_request)

    def _stash_request(self, operation: str | None, _variables: dict[str, Any], _status: int) -> None:
        if operation not in WRITES:
            return
        with self.lock:
            self.writes.append(time.perf_counter())
            count = len(self.writes)
        if self.on_write is not None:
            self.on_write(count)

    def _model_request(self, route: str, started: float, finished: float, size: int) -> None:
        with self.lock:
            if route == "models":
                self.preflight.append(finished)
            elif route in ("completion", "labels"):
                self.calls.append((started, finished, size))

    def reset(self) -> None:
        with self.lock:
            self.preflight.clear()
            self.calls.clear()
            self.writes.clear()


@contextmanager
def servers(latency: float = 0.0, tags: int = 0) -> Iterator[tuple[FakeStash, FakeModel, Probe]]:
    """A model and a Stash whose plugin settings point at it, with a probe on both."""
    with FakeModel(latency=latency, retry_after=0.05) as model, FakeStash() as stash:
        if tags:
            stash.seed_tags(tags)
        stash.set_plugin_settings(PLUGIN_ID, settings_for(model))
        yield stash, model, Probe(stash, model)


def run_plugin(
    stash: FakeStash,
    args: dict[str, Any],
    *,
    timeout: float = 3600,
    watch_rss: bool = False,
    probe: Probe | None = None,
    rss_marks: tuple[int, ...] = (),
) -> tuple[PluginRun, dict[int, int]]:
    """The shared runner; with ``rss_marks``, the plugin's VmHWM when the probe sees those writes."""
    marks: dict[int, int] = {}

    def watch(process: subprocess.Popen[str]) -> None:
        def on_write(count: int) -> None:
            if count in rss_marks:
                value = runner.vm_kb(process.pid, "VmHWM")
                if value:
                    marks[count] = value

        if probe is not None:
            probe.on_write = on_write

    try:
        run = runner.run(stash.server_connection(), args, timeout=timeout, watch_rss=watch_rss, on_start=watch)
    finally:
        if probe is not None:
            probe.on_write = None
    return run, marks


def expect_tagged(run: PluginRun, n: int, what: str) -> dict[str, Any]:
    """The run's output, or the reason it is not ``n`` tagged items."""
    output = run.output or {}
    if run.error or output.get("tagged") != n:
        detail = run.error or {k: output.get(k) for k in ("processed", "tagged", "errored", "stopped")}
        raise RuntimeError(f"{what}: {detail}")
    return output


def make_images(folder: Path, n: int, size: tuple[int, int] = (64, 64)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i:05d}.jpg"
        if not path.exists():
            media.make_image(path, COLOURS[i % len(COLOURS)], size=size)
        paths.append(path)
    return paths


def make_videos(folder: Path, n: int, *, size: tuple[int, int] = (320, 240), seconds: int = 10) -> list[Path]:
    """n distinct solid-colour videos (5 segments each), generated once and cached."""
    folder.mkdir(parents=True, exist_ok=True)
    segments = 5
    jobs = []
    for i in range(n):
        path = folder / f"v{i:04d}-{size[0]}x{size[1]}-{seconds}s.mp4"
        colours = [COLOURS[(i + k * (1 + i % 5)) % len(COLOURS)] for k in range(segments)]
        jobs.append((path, colours))

    def make(job: tuple[Path, list[str]]) -> Path:
        path, colours = job
        if not path.exists():
            tmp = path.with_suffix(".part.mp4")
            media.make_video(tmp, colours, seconds_per_colour=seconds / segments, size=size)
            tmp.rename(path)
        return path

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(make, jobs))


def time_command(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}... failed: {done.stderr.decode(errors='replace')[-300:]}")
    return elapsed


def window_throughput(n: int, run: PluginRun, probe: Probe) -> dict[str, Any]:
    """Throughput of one plugin run, two ways.

    * run window: from the preflight answer (start-up done: interpreter, imports, settings,
      preflight) to the last item write: what the pipeline delivers, paging and writes included;
    * gateway window: from the first model request's arrival to the last model answer."""
    out: dict[str, Any] = {"items": n, "wall_s": round(run.wall, 3)}
    if probe.preflight:
        out["startup_s"] = round(probe.preflight[0] - run.started, 3)
    if probe.preflight and probe.writes:
        span = max(probe.writes) - probe.preflight[0]
        out["run_window_s"] = round(span, 3)
        out["items_per_s"] = n / span if span > 0 else None
    if probe.calls:
        span = max(c[1] for c in probe.calls) - min(c[0] for c in probe.calls)
        out["gateway_window_s"] = round(span, 3)
        out["gateway_items_per_s"] = n / span if span > 0 else None
    return out
