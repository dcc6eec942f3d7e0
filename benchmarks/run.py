"""AI Tagger benchmarks against the bundled test servers, with generated media.

    python -m benchmarks.run                       # everything (long: see benchmarks/README.md)
    python -m benchmarks.run --quick               # smaller sizes, a smoke run of a few minutes
    python -m benchmarks.run --only hook,frames    # some benchmarks
    python -m benchmarks.run --out /tmp/bench.json

Prints the machine and a table (figure, value, target, PASS/MISS) and writes the figures with
their units to ``benchmarks/results/latest.json``. The plugin always runs as Stash runs it: a
subprocess ``python {pluginDir}/ai_tagger`` fed the stdin JSON. FakeStash and FakeModel run in
*this* process, so they share the machine's cores with the plugin (noted in the output).
This is a script, never a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import media  # noqa: E402
from tests.servers.model_server import FakeModel  # noqa: E402
from tests.servers.stash_server import FakeStash  # noqa: E402

PLUGIN_ID = "ai_tagger"
RESULTS = REPO / "benchmarks" / "results"
MEDIA_CACHE = RESULTS / "media"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
COLOURS = ("red", "green", "blue", "yellow", "white", "black")


# =========================================================================== results


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
        return {"metric": self.metric, "value": self.value, "unit": self.unit, "target": self.target or None,
                "status": self.status or None}


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
        return {"figures": [f.as_json() for f in self.figures], "details": self.details, "notes": self.notes,
                "seconds": round(self.seconds, 1), "error": self.error}


@dataclass
class Context:
    quick: bool
    media: Path
    rss_scenes: int | None = None
    rss_cached: bool = False


# =========================================================================== shared helpers


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    ffmpeg_version = ""
    try:
        ffmpeg_version = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "ffmpeg": ffmpeg_version, "loadavg_at_start": load}


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation (q in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def settings_for(model: FakeModel, **extra: Any) -> dict[str, Any]:
    return {"gatewayUrl": model.base_url, "apiKey": model.api_key, "model": model.models[0], **extra}


class Probe:
    """Timestamps (perf_counter, this process) of what the servers see: preflight, each model
    call (start, end, request body bytes) and each item write (bulk*Update)."""

    def __init__(self, stash: FakeStash, model: FakeModel | None) -> None:
        self.lock = threading.Lock()
        self.preflight: list[float] = []
        self.calls: list[tuple[float, float, int]] = []
        self.writes: list[float] = []
        self.on_write: Callable[[int], None] | None = None
        original = stash.execute_request

        def execute_request(query: str, *args: Any, **kwargs: Any) -> Any:
            answer = original(query, *args, **kwargs)
            if "bulkSceneUpdate" in query or "bulkImageUpdate" in query:
                with self.lock:
                    self.writes.append(time.perf_counter())
                    count = len(self.writes)
                if self.on_write:
                    self.on_write(count)
            return answer

        stash.execute_request = execute_request  # type: ignore[method-assign]
        if model is not None:
            completion, models = model.handle_completion, model.handle_models

            def handle_completion(body: bytes, headers: dict[str, str]) -> Any:
                start = time.perf_counter()
                try:
                    return completion(body, headers)
                finally:
                    with self.lock:
                        self.calls.append((start, time.perf_counter(), len(body)))

            def handle_models(model_id: str | None) -> Any:
                try:
                    return models(model_id)
                finally:
                    with self.lock:
                        self.preflight.append(time.perf_counter())

            model.handle_completion = handle_completion  # type: ignore[method-assign]
            model.handle_models = handle_models  # type: ignore[method-assign]

    def reset(self) -> None:
        with self.lock:
            self.preflight.clear()
            self.calls.clear()
            self.writes.clear()


@contextmanager
def servers(latency: float = 0.0, tags: int = 0) -> Iterator[tuple[FakeStash, FakeModel, Probe]]:
    with FakeModel(latency=latency, retry_after=0.05) as model, FakeStash() as stash:
        if tags:
            stash.seed_tags(tags)
        stash.set_plugin_settings(PLUGIN_ID, settings_for(model))
        yield stash, model, Probe(stash, model)


@dataclass
class PluginRun:
    returncode: int
    stdout: str
    stderr: str
    started: float  # perf_counter just before the process was started
    wall: float
    peak_rss_kb: int | None = None
    rss_marks: dict[int, int] = field(default_factory=dict)

    @property
    def result(self) -> dict[str, Any]:
        try:
            return json.loads(self.stdout)
        except ValueError:
            return {"output": None, "error": f"no JSON on stdout (rc {self.returncode}): {self.stderr[-500:]}"}

    @property
    def output(self) -> Any:
        return self.result.get("output")

    @property
    def error(self) -> str | None:
        return self.result.get("error")


def _vm_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_plugin(stash: FakeStash, args: dict[str, Any], *, timeout: float = 3600, watch_rss: bool = False,
               probe: Probe | None = None, rss_marks: tuple[int, ...] = ()) -> PluginRun:
    """Start the plugin exactly as Stash does (``python {pluginDir}/ai_tagger``, stdin JSON,
    Stash's config dir as cwd). With ``watch_rss``, poll the plugin's VmHWM every 50 ms (and
    record it when the probe sees the N-th item write, for N in ``rss_marks``)."""
    connection = stash.server_connection()
    payload = json.dumps({"server_connection": connection, "args": args})
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(REPO / "ai_tagger")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=connection["Dir"])
    peak = [0]
    marks: dict[int, int] = {}
    stop = threading.Event()
    if watch_rss:
        def poll() -> None:
            while not stop.is_set():
                value = _vm_kb(process.pid, "VmHWM")
                if value:
                    peak[0] = max(peak[0], value)
                stop.wait(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        if probe is not None and rss_marks:
            wanted = set(rss_marks)

            def on_write(count: int) -> None:
                if count in wanted:
                    value = _vm_kb(process.pid, "VmHWM")
                    if value:
                        marks[count] = value

            probe.on_write = on_write
    try:
        stdout, stderr = process.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    stop.set()
    if probe is not None:
        probe.on_write = None
    return PluginRun(process.returncode, stdout, stderr, started, wall, peak[0] or None if watch_rss else None, marks)


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


# =========================================================================== 1. hook latency


def _import_profile() -> dict[str, Any]:
    """``python -X importtime -c 'import ai_tagger.entry'``: the heaviest modules (ms)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ai_tagger.entry"], capture_output=True,
                          text=True, cwd=REPO)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append({"module": match.group(4), "self_ms": int(match.group(1)) / 1000,
                         "cumulative_ms": int(match.group(2)) / 1000, "depth": len(match.group(3)) // 2})
    ours = sorted((r for r in rows if r["module"].startswith("ai_tagger")), key=lambda r: -r["self_ms"])[:8]
    third = sorted((r for r in rows if "." not in r["module"] and not r["module"].startswith("ai_tagger")),
                   key=lambda r: -r["cumulative_ms"])[:8]
    return {"entry_cumulative_ms": next((r["cumulative_ms"] for r in rows if r["module"] == "ai_tagger.entry"), None),
            "ai_tagger_by_self_ms": ours, "packages_by_cumulative_ms": third}


def bench_hook(ctx: Context) -> Result:
    """Scene.Create.Post as Stash runs it, 10,000-tag library; most runs find a job waiting."""
    res = Result("hook")
    runs = 12 if ctx.quick else 30
    no_job_every = 5  # runs 0, 5, 10, ...: queue empty, the hook queues one
    args = {"hookContext": {"id": "1", "type": "Scene.Create.Post", "input": None}}
    timings: dict[str, list[float]] = {"job_waiting": [], "no_job": []}
    with servers(tags=10_000) as (stash, model, _probe):
        warm = run_plugin(stash, args)  # writes __pycache__, warms the page cache; not counted
        if warm.error or not isinstance(warm.output, dict):
            raise RuntimeError(f"hook failed: {warm.error or warm.stdout}")
        for i in range(runs):
            with stash.lock:
                if i % no_job_every == 0:
                    stash.jobs.clear()
                elif not stash.jobs:
                    stash.jobs.append({"id": "999", "status": "READY", "addTime": "2024-01-01T00:00:00+00:00",
                                       "progress": None, "subTasks": None,
                                       "description": "AI Tagger: tag new scenes and images"})
            run = run_plugin(stash, args)
            expect_queued = i % no_job_every == 0
            if run.error or (run.output or {}).get("queued") is not expect_queued:
                raise RuntimeError(f"unexpected hook output {run.stdout!r} (run {i})")
            timings["no_job" if expect_queued else "job_waiting"].append(run.wall)

        # The same GraphQL calls from this process, with a fresh client (new connection) each time.
        from ai_tagger.stash.client import StashClient
        from ai_tagger.stash.models import ServerConnection

        connection = ServerConnection.model_validate(stash.server_connection())
        graphql: list[float] = []
        for _ in range(10):
            started = time.perf_counter()
            client = StashClient(connection)
            client.plugin_settings()
            client.job_queue()
            graphql.append(time.perf_counter() - started)

    def interpreter(code: str, n: int) -> list[float]:
        return [time_command([sys.executable, "-c", code]) for _ in range(n)]

    n = 5 if ctx.quick else 10
    bare = interpreter("pass", n)
    imports = interpreter("import ai_tagger.entry", n)
    hook_imports = interpreter("import ai_tagger.hooks, ai_tagger.settings, ai_tagger.stash.client", n)
    all_runs = timings["job_waiting"] + timings["no_job"]
    p95 = pct(all_runs, 95) * 1000
    res.add("hook p95 (all runs)", round(p95), "ms", "<= 300 ms", p95 <= 300)
    res.add("hook median (all runs)", round(statistics.median(all_runs) * 1000), "ms")
    for group, values in timings.items():
        res.add(f"hook median / p95, {group} ({len(values)} runs)",
                f"{statistics.median(values) * 1000:.0f} / {pct(values, 95) * 1000:.0f}", "ms")
    res.add("python -c pass (interpreter start-up), median", round(statistics.median(bare) * 1000), "ms")
    res.add("python -c 'import ai_tagger.entry', median", round(statistics.median(imports) * 1000), "ms")
    res.add("python -c 'import hooks+settings+stash.client' only, median",
            round(statistics.median(hook_imports) * 1000), "ms")
    res.add("GraphQL configuration + jobQueue (fresh client), median", round(statistics.median(graphql) * 1000, 1),
            "ms")
    profile = _import_profile()
    res.details = {
        "runs_ms": {k: [round(v * 1000, 1) for v in vals] for k, vals in timings.items()},
        "interpreter_ms": [round(v * 1000, 1) for v in bare],
        "import_entry_ms": [round(v * 1000, 1) for v in imports],
        "import_hook_path_ms": [round(v * 1000, 1) for v in hook_imports],
        "graphql_ms": [round(v * 1000, 2) for v in graphql],
        "importtime_top": profile,
    }
    import_cost = statistics.median(imports) - statistics.median(bare)
    res.notes.append(
        f"breakdown of the median hook run: interpreter {statistics.median(bare) * 1000:.0f} ms, "
        f"imports of ai_tagger.entry +{import_cost * 1000:.0f} ms, GraphQL ~{statistics.median(graphql) * 1000:.0f} ms")
    heavy = ", ".join(f"{r['module']} {r['cumulative_ms']:.0f}" for r in profile["packages_by_cumulative_ms"][:6])
    ours = ", ".join(f"{r['module']} {r['self_ms']:.0f}" for r in profile["ai_tagger_by_self_ms"][:5])
    res.notes.append(f"-X importtime, ai_tagger.entry {profile['entry_cumulative_ms']:.0f} ms in all; packages "
                     f"(cumulative ms): {heavy}; ai_tagger modules (self ms): {ours}")
    return res


# =========================================================================== 2. gateway throughput


def bench_gateway(ctx: Context) -> Result:
    """tag_images on tiny images, FakeModel latency 0.4 s, at concurrency 1/4/8/16."""
    res = Result("gateway")
    latency = 0.4
    n = 48 if ctx.quick else 500
    images = make_images(ctx.media / "images64", n)
    levels = (1, 4, 8, 16)
    rows = {}
    with FakeModel(latency=latency, retry_after=0.05) as model:
        for concurrency in levels:
            with FakeStash() as stash:
                for path in images:
                    stash.add_image(path, width=64, height=64)
                stash.set_plugin_settings(PLUGIN_ID, settings_for(model, concurrency=concurrency))
                probe = Probe(stash, model)
                model.reset()
                run = run_plugin(stash, {"mode": "tag_images"}, probe=probe)
                if run.error or (run.output or {}).get("tagged") != n:
                    raise RuntimeError(f"c={concurrency}: {run.error or run.output}")
                row = window_throughput(n, run, probe)
                row["max_in_flight"] = model.max_in_flight
                ideal = concurrency / latency
                row["ideal_items_per_s"] = ideal
                row["ratio"] = row["items_per_s"] / ideal
                row["gateway_ratio"] = row["gateway_items_per_s"] / ideal
                rows[concurrency] = row
                # restore the model's methods for the next level
                for name in ("handle_completion", "handle_models"):
                    model.__dict__.pop(name, None)
    for concurrency, row in rows.items():
        target = "" if concurrency != 8 else ">= 90 % of ideal"
        ok = None if concurrency != 8 else row["ratio"] >= 0.9
        res.add(f"c={concurrency}: items/s (ideal {row['ideal_items_per_s']:g}), % of ideal",
                f"{row['items_per_s']:.2f} ({row['ratio'] * 100:.0f} %)", "items/s (%)", target, ok)
    res.details = {"latency_s": latency, "images": n, "by_concurrency": rows}
    res.notes.append("throughput = items / (last item write - preflight answered): run wall time minus "
                     "start-up (interpreter, imports, settings, preflight); tag loading, paging and writes "
                     "are inside the window. details.gateway_items_per_s uses first request -> last answer.")
    return res


# =========================================================================== 3. end-to-end


def _extraction_bound(videos: list[Path], frames: int, duration: float) -> tuple[float, float]:
    from ai_tagger.media.frames import extract_frames

    def one(path: Path) -> int:
        return len(extract_frames(str(path), duration=duration, count=frames, ffmpeg=FFMPEG, max_side=768))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        got = list(pool.map(one, videos))
    elapsed = time.perf_counter() - started
    if any(g != frames for g in got):
        raise RuntimeError("extraction returned fewer frames than asked")
    return len(videos) / elapsed, elapsed


def bench_e2e(ctx: Context) -> Result:
    """200 scenes (320x240, 10 s), 6 frames each, latency 0.4, concurrency 8: overlap of stages."""
    res = Result("e2e")
    n = 24 if ctx.quick else 200
    latency, concurrency, frames, duration = 0.4, 8, 6, 10.0
    videos = make_videos(ctx.media / "e2e", n)
    extraction_rate, extraction_s = _extraction_bound(videos, frames, duration)
    gateway_rate = concurrency / latency
    with servers(latency=latency) as (stash, model, probe):
        stash.set_plugin_settings(PLUGIN_ID, settings_for(model, concurrency=concurrency, framesPerScene=frames))
        for path in videos:
            stash.add_scene(path, duration=duration, width=320, height=240, frame_rate=10.0)
        run = run_plugin(stash, {"mode": "tag_scenes"}, probe=probe)
        if run.error or (run.output or {}).get("tagged") != n:
            raise RuntimeError(f"{run.error or run.output}")
        row = window_throughput(n, run, probe)
        row["max_in_flight"] = model.max_in_flight
    bound = min(extraction_rate, gateway_rate)
    ratio = row["items_per_s"] / bound
    res.add("frame-extraction bound (alone, cpu_count threads)", round(extraction_rate, 2), "scenes/s")
    res.add("gateway bound (concurrency / latency)", round(gateway_rate, 2), "scenes/s")
    res.add("end-to-end throughput", round(row["items_per_s"], 2), "scenes/s")
    res.add("end-to-end / slower bound", round(ratio * 100), "%", ">= 80 %", ratio >= 0.8)
    res.details = {"scenes": n, "frames_per_scene": frames, "latency_s": latency, "concurrency": concurrency,
                   "extraction_bound_scenes_per_s": extraction_rate, "extraction_alone_s": extraction_s,
                   "gateway_bound_scenes_per_s": gateway_rate, "run": row}
    res.notes.append("throughput = scenes / (last write - preflight answered); FakeModel decodes every frame in "
                     "the benchmark process, competing with ffmpeg for the same cores (the bound measured "
                     "alone has no such competition).")
    return res


# =========================================================================== 4. frame extraction


def long_video(ctx: Context) -> Path:
    path = ctx.media / "long-1080p-10min.mp4"
    if not path.exists():
        tmp = path.with_suffix(".part.mp4")
        media.make_long_video(tmp, minutes=10, size=(1920, 1080))
        tmp.rename(path)
    return path


def bench_frames(ctx: Context) -> Result:
    """8 frames from a 10-minute 1080p H.264 file: plugin vs bare ffmpeg seek loop vs full decode."""
    from ai_tagger.media.frames import extract_frames, timestamps

    res = Result("frames")
    path = long_video(ctx)
    duration = media.probe_duration(path)
    count = 8
    repeats = 3 if ctx.quick else 5
    points = timestamps(duration, count)

    def plugin() -> float:
        started = time.perf_counter()
        got = extract_frames(str(path), duration=duration, count=count, ffmpeg=FFMPEG, max_side=768)
        elapsed = time.perf_counter() - started
        if len(got) != count:
            raise RuntimeError(f"plugin extracted {len(got)} of {count} frames")
        return elapsed

    def bare(jpeg: bool) -> float:
        started = time.perf_counter()
        for at in points:
            output = ["-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"] if jpeg else ["-f", "null", "-"]
            time_command([FFMPEG, "-nostdin", "-loglevel", "error", "-ss", f"{at:.3f}", "-i", str(path),
                          "-frames:v", "1", *output])
        return time.perf_counter() - started

    samples: dict[str, list[float]] = {"plugin": [], "bare_null": [], "bare_jpeg": []}
    plugin()  # warm the page cache
    for _ in range(repeats):  # interleaved, so noise hits all three alike
        samples["plugin"].append(plugin())
        samples["bare_null"].append(bare(False))
        samples["bare_jpeg"].append(bare(True))
    med = {k: statistics.median(v) for k, v in samples.items()}
    naive_limit = 60 if ctx.quick else None
    naive_cmd = [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path)]
    if naive_limit:
        naive_cmd += ["-t", str(naive_limit)]
    naive_cmd += ["-vf", f"fps={count}/{duration:.3f}", "-f", "null", "-"]
    naive = time_command(naive_cmd)
    if naive_limit:
        naive *= duration / naive_limit
    ratio_null = med["plugin"] / med["bare_null"]
    res.add(f"plugin extract_frames, {count} frames from 10 min 1080p", round(med["plugin"], 3), "s")
    res.add("bare ffmpeg -ss loop (-f null), same timestamps", round(med["bare_null"], 3), "s")
    res.add("bare ffmpeg -ss loop (mjpeg pipe)", round(med["bare_jpeg"], 3), "s")
    res.add("plugin / bare loop (-f null)", round(ratio_null, 2), "x", "<= 1.2x", ratio_null <= 1.2)
    res.add("plugin / bare loop (mjpeg pipe)", round(med["plugin"] / med["bare_jpeg"], 2), "x")
    res.add("naive full decode (fps filter)" + (" [extrapolated from 60 s]" if naive_limit else ""),
            round(naive, 2), "s")
    res.add("plugin / naive full decode", round(med["plugin"] / naive, 3), "x")
    res.add("per frame (plugin)", round(med["plugin"] / count * 1000), "ms")
    res.details = {"file": str(path), "duration_s": duration, "timestamps": points, "repeats": repeats,
                   "samples_s": samples, "naive_s": naive, "naive_extrapolated": bool(naive_limit)}
    return res


# =========================================================================== 5. peak RSS


def bench_rss(ctx: Context) -> Result:
    """Peak RSS of the plugin process over a large library (1 frame, tiny video, latency 0)."""
    res = Result("rss")
    tiny = ctx.media / "tiny-64x64-1s.mp4"
    if not tiny.exists():
        media.make_video(tiny, ["red"], seconds_per_colour=1, size=(64, 64))
    big = ctx.rss_scenes or (2000 if ctx.quick else 20_000)
    sizes = tuple(sorted({min(1000, big) if not ctx.quick else min(200, big), big}))
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
            run = run_plugin(stash, {"mode": "tag_scenes"}, watch_rss=True, probe=probe, rss_marks=marks)
            output = run.output or {}
            if run.error or output.get("tagged") != n:
                raise RuntimeError(f"{n} scenes: {run.error or {k: output.get(k) for k in ('processed', 'tagged')}}")
            runs[n] = {"scenes": n, "peak_rss_mb": (run.peak_rss_kb or 0) / 1024, "wall_s": run.wall,
                       "scenes_per_s": n / run.wall,
                       "vmhwm_mb_at_writes": {k: round(v / 1024, 1) for k, v in sorted(run.rss_marks.items())}}
    for n, row in runs.items():
        largest = n == max(sizes)
        how = " (one file, answers from the result cache)" if ctx.rss_cached else ""
        res.add(f"peak RSS, {n:,} scenes{how}", round(row["peak_rss_mb"], 1), "MB", "<= 200 MB" if largest else "",
                row["peak_rss_mb"] <= 200 if largest else None)
        res.add(f"run time, {n:,} scenes", f"{row['wall_s']:.0f} ({row['scenes_per_s']:.1f} scenes/s)", "s")
    res.details = {"runs": runs, "frames_per_scene": 1, "video": "64x64, 1 s", "latency_s": 0}
    res.notes.append("RSS is the plugin process's VmHWM (polled every 50 ms from /proc), not its ffmpeg "
                     "children; FakeStash/FakeModel live in the benchmark process. vmhwm_mb_at_writes shows the "
                     "peak so far when the N-th item was written (flat = constant memory).")
    return res


# =========================================================================== 6. tokens and bytes


def bench_tokens(ctx: Context) -> Result:
    """Prompt tokens and request bytes per scene: frameLayout separate/grid x imageDetail low/high/auto."""
    from ai_tagger.media.frames import extract_frames

    res = Result("tokens")
    n = 2 if ctx.quick else 4
    frames = 6
    size, duration = (1280, 720), 10.0
    videos = make_videos(ctx.media / "tokens", n, size=size)
    jpeg = [extract_frames(str(v), duration=duration, count=frames, ffmpeg=FFMPEG, max_side=768) for v in videos]
    jpeg_bytes = sum(len(f) for fs in jpeg for f in fs) / n
    rows: dict[str, dict[str, Any]] = {}
    for layout in ("separate", "grid"):
        for detail in ("low", "high", "auto"):
            with servers() as (stash, model, probe):
                stash.set_plugin_settings(PLUGIN_ID, settings_for(model, frameLayout=layout, imageDetail=detail,
                                                                  framesPerScene=frames))
                for path in videos:
                    stash.add_scene(path, duration=duration, width=size[0], height=size[1], frame_rate=10.0)
                run = run_plugin(stash, {"mode": "tag_scenes"}, probe=probe)
                output = run.output or {}
                if run.error or output.get("tagged") != n:
                    raise RuntimeError(f"{layout}/{detail}: {run.error or output}")
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
                    "grid_used": images_per_request < frames,
                    "detail_honoured": detail == "auto" or sent_details == [detail],
                }
    grid_supported = any(r["grid_used"] for k, r in rows.items() if k.startswith("grid/"))
    for key, row in rows.items():
        layout, detail = key.split("/")
        if layout == "grid" and not grid_supported:
            res.add(f"{key}: prompt tokens / request bytes per scene", "n/a (grid not implemented)", "")
            continue
        flag = "" if row["detail_honoured"] else " [imageDetail not sent]"
        res.add(f"{key}: prompt tokens / request bytes per scene{flag}",
                f"{row['prompt_tokens_per_scene']:.0f} / {row['request_bytes_per_scene'] / 1024:.1f}",
                "tokens / KiB")
    res.add("JPEG bytes of the frames per scene (extract_frames, separate)", round(jpeg_bytes / 1024, 1), "KiB")
    res.details = {"scenes": n, "frames_per_scene": frames, "video_size": size, "by_setting": rows,
                   "grid_supported": grid_supported, "jpeg_bytes_per_scene": jpeg_bytes}
    if not grid_supported:
        res.notes.append("frameLayout=grid: every request still carried one image per frame -> grid is not "
                         "implemented in the plugin yet; reported n/a.")
    if not all(r["detail_honoured"] for r in rows.values()):
        res.notes.append("imageDetail low/high: FakeModel saw no 'detail' on the images (it then counts them at "
                         "high detail), so the setting has no effect yet.")
    res.notes.append("request bytes = Content length of each POST /chat/completions body as FakeModel read it "
                     "(base64 JSON, prompt and vocabulary included).")
    return res


# =========================================================================== main


def bench_local(ctx: Context) -> Result:
    """The built-in local model: see benchmarks/local_model.py."""
    from benchmarks import local_model

    return local_model.run(ctx)


def bench_sidecar(ctx: Context) -> Result:
    """The local model through its sidecar vs in process: see benchmarks/sidecar.py."""
    from benchmarks import sidecar

    return sidecar.run(ctx)


BENCHMARKS: dict[str, Callable[[Context], Result]] = {
    "hook": bench_hook,
    "gateway": bench_gateway,
    "e2e": bench_e2e,
    "frames": bench_frames,
    "rss": bench_rss,
    "tokens": bench_tokens,
    "local": bench_local,
    "sidecar": bench_sidecar,
}


def print_table(results: list[Result]) -> None:
    rows = [("benchmark", "figure", "value", "unit", "target", "status")]
    for result in results:
        if result.error:
            rows.append((result.name, "ERROR", result.error.splitlines()[-1][:80], "", "", "ERROR"))
        for figure in result.figures:
            rows.append((result.name, figure.metric, str(figure.value), figure.unit, figure.target, figure.status))
    widths = [min(max(len(r[i]) for r in rows), 70) for i in range(6)]
    for index, row in enumerate(rows):
        print("  ".join(cell[:70].ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    for result in results:
        for note in result.notes:
            print(f"* {result.name}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AI Tagger benchmarks (bundled test servers, generated media).")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run (see README)")
    parser.add_argument("--rss-scenes", type=int, help="library size for the rss benchmark (default 20,000; "
                        "2,000 with --quick); a 1,000-scene run (200 with --quick) is always added")
    parser.add_argument(
        "--rss-cached",
        action="store_true",
        help="rss: give every scene the same fingerprint, so the result cache answers all but the first "
        "(pages, decisions and writes for the whole library in minutes instead of an hour of ffmpeg)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="JSON output path")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    info = machine()
    print(f"machine: {info['cores']} cores, {info['cpu_model']}, Python {info['python']}, "
          f"load {info['loadavg_at_start']}; {info['ffmpeg']}")
    print(f"mode: {'quick' if args.quick else 'full'}; benchmarks: {', '.join(names)}; FakeStash/FakeModel share "
          f"the cores with the plugin\n", flush=True)
    ctx = Context(quick=args.quick, media=MEDIA_CACHE, rss_scenes=args.rss_scenes, rss_cached=args.rss_cached)
    ctx.media.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = []
    for name in names:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {name} ...", flush=True)
        started = time.perf_counter()
        try:
            result = BENCHMARKS[name](ctx)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            result = Result(name, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            print(result.error, file=sys.stderr)
        result.seconds = time.perf_counter() - started
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {name} done in {result.seconds:.0f} s", flush=True)
        results.append(result)
    print()
    print_table(results)
    report = {"started": started_at, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": info, "quick": args.quick, "argv": sys.argv[1:], "benchmarks": {r.name: r.as_json() for r in results}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
