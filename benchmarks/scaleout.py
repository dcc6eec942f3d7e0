"""``scaleout``: throughput through LiteLLM's router with 1, 2 and 4 servers behind one model name.

Each server is a FakeModel with the capacity of a real inference node: ``PARALLEL`` calls at
a time, a fixed latency each (1 s at full size), later calls queue (a GPU box's slots). One LiteLLM proxy
serves three model groups (``vision-test`` on 1 server, ``vision-test-x2`` on 2, ``-x4`` on 4);
the plugin runs ``tag_images`` as Stash runs it, at one ``concurrency`` that fills 4 servers,
against each group in turn. Throughput is items / (first call reaching a server -> last answer
leaving one): the gateway's window, without the plugin's start-up. Target: 2 servers >= 1.7x one.

The proxy's own cost is reported apart: the same load straight to the 1-server group's node
(no proxy), the latency the proxy adds to one call, its ceiling (calls/s through it to a
zero-latency server) and its CPU use; on a small machine that ceiling, not the servers, is
where scaling stops.

:func:`measure` does the work and returns plain figures; :func:`run` wraps them in a ``Result``.
"""

from __future__ import annotations

import base64
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.harness import Context, Result
from tests import media
from tests.conftest import gateway_settings, run_plugin
from tests.litellm_gateway import MODEL_NAME, LiteLLMProxy, LiteLLMUnavailable, deployment, ensure_venv, proxy_settings
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

PARALLEL = 1  # calls one server runs at once (Ollama's default OLLAMA_NUM_PARALLEL is 1)
NODES = (1, 2, 4)
# size -> (items per run, seconds per call, overhead samples)
SIZES = {"full": (64, 1.0, 40), "quick": (24, 1.0, 20), "tiny": (4, 0.1, 4)}
ROUTER = {"routing_strategy": "least-busy", "num_retries": 0}


class Node(FakeModel):
    """A FakeModel that serves ``parallel`` calls at a time and records when each one ran."""

    def __init__(self, *, parallel: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._slots = threading.BoundedSemaphore(parallel)
        self.spans: list[tuple[float, float]] = []

    def start(self) -> Node:
        super().start()
        return self

    def handle_completion(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        with self._slots:
            started = time.perf_counter()
            try:
                return super().handle_completion(body, headers)
            finally:
                self.spans.append((started, time.perf_counter()))


@dataclass
class Row:
    label: str
    nodes: int
    items_per_s: float
    ideal_items_per_s: float
    wall_s: float
    calls_per_node: list[int]
    proxy_cpu_share: float | None = None  # proxy CPU seconds / window seconds (1.0 = one core busy)

    @property
    def ratio(self) -> float:
        return self.items_per_s / self.ideal_items_per_s


@dataclass
class Scaleout:
    items: int
    latency: float
    concurrency: int
    rows: list[Row] = field(default_factory=list)
    added_ms: float = 0.0  # median latency the proxy adds to one call
    ceiling_per_s: float = 0.0  # calls/s through the proxy to a zero-latency server
    ceiling_cpu_share: float = 0.0
    startup_s: float = 0.0

    def row(self, label: str) -> Row:
        return next(r for r in self.rows if r.label == label)


def _images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    colours = ("red", "green", "blue", "yellow")
    paths = [folder / f"scale{i:04d}.jpg" for i in range(n)]
    for i, path in enumerate(paths):
        if not path.exists():
            media.make_image(path, colours[i % len(colours)], size=(64, 64))
    return paths


def _tag(images: list[Path], settings: dict[str, Any], nodes: list[Node], concurrency: int) -> tuple[float, float]:
    """One ``tag_images`` run; (items/s over the servers' window, wall seconds)."""
    for node in nodes:
        node.reset()
        node.spans = []
    with FakeStash() as stash:
        for path in images:
            stash.add_image(path, width=64, height=64)
        stash.set_plugin_settings("ai_tagger", {**settings, "concurrency": concurrency})
        started = time.perf_counter()
        done = run_plugin(stash, {"mode": "tag_images"}, timeout=3600)
        wall = time.perf_counter() - started
    output = done.output if done.stdout else None
    if done.returncode != 0 or not output or output.get("tagged") != len(images):
        raise RuntimeError(f"{settings.get('model')}: {done.stdout[-500:] or done.stderr[-500:]}")
    spans = [s for node in nodes for s in node.spans]
    window = max(end for _, end in spans) - min(start for start, _ in spans)
    return len(images) / window, wall


def _chat(url: str, key: str, model: str, image: bytes) -> dict[str, Any]:
    return {
        "url": f"{url}/chat/completions",
        "headers": {"Authorization": f"Bearer {key}"},
        "json": {"model": model, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Tag these frames."},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(image).decode()}},
        ]}]},
    }


def _overhead(
    proxy: LiteLLMProxy, bare: Node, image: bytes, samples: int, concurrency: int
) -> tuple[float, float, float]:
    """(median ms the proxy adds to one call, calls/s through it to a 0-latency server, its CPU share)."""
    direct = _chat(bare.base_url, bare.api_key, MODEL_NAME, image)
    proxied = _chat(proxy.base_url, proxy.master_key, "vision-test-bare", image)
    session = requests.Session()

    def once(call: dict[str, Any]) -> float:
        started = time.perf_counter()
        session.post(**call, timeout=60).raise_for_status()
        return time.perf_counter() - started

    for call in (direct, proxied):
        once(call)  # connections and the proxy's first-call set-up
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    for _ in range(samples):
        times["direct"].append(once(direct))
        times["proxy"].append(once(proxied))
    added = (statistics.median(times["proxy"]) - statistics.median(times["direct"])) * 1000

    calls = samples * 4
    cpu = proxy.cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: requests.post(**proxied, timeout=60).raise_for_status(), range(calls)))
    elapsed = time.perf_counter() - started
    return added, calls / elapsed, (proxy.cpu_seconds() - cpu) / elapsed


def measure(size: str, media_dir: Path) -> Scaleout:
    """Run the whole benchmark at ``size`` (full, quick or tiny); needs LiteLLM's venv."""
    items, latency, samples = SIZES[size]
    nodes_for = NODES if size != "tiny" else (1, 2)
    concurrency = 2 * max(nodes_for) * PARALLEL  # fills the largest group, with one call queued per slot
    venv = ensure_venv()
    images = _images(media_dir / "scaleout", items)
    groups = {n: [Node(parallel=PARALLEL, models=[MODEL_NAME], latency=latency).start() for _ in range(n)]
              for n in nodes_for}
    bare = Node(parallel=64, models=[MODEL_NAME]).start()
    names = {n: MODEL_NAME if n == 1 else f"{MODEL_NAME}-x{n}" for n in nodes_for}
    extra = [deployment(node, names[n]) for n in nodes_for if n > 1 for node in groups[n]]
    extra.append(deployment(bare, "vision-test-bare"))
    result = Scaleout(items=items, latency=latency, concurrency=concurrency)
    try:
        with LiteLLMProxy(groups[1], venv=venv, workdir=media_dir / "scaleout-litellm", extra_deployments=extra,
                          router_settings=ROUTER) as proxy:
            result.startup_s = proxy.startup_seconds or 0.0
            _tag(images[: max(2, items // 8)], proxy_settings(proxy), groups[1], concurrency)  # warm-up
            rate, wall = _tag(images, gateway_settings(groups[1][0]), groups[1], concurrency)
            result.rows.append(Row("direct", 1, rate, PARALLEL / latency, wall, [groups[1][0].completion_count]))
            for n in nodes_for:
                cpu = proxy.cpu_seconds()
                rate, wall = _tag(images, proxy_settings(proxy, model=names[n]), groups[n], concurrency)
                share = (proxy.cpu_seconds() - cpu) / (items / rate)
                counts = [node.completion_count for node in groups[n]]
                result.rows.append(Row(f"{n} deployment(s)", n, rate, n * PARALLEL / latency, wall, counts, share))
            result.added_ms, result.ceiling_per_s, result.ceiling_cpu_share = _overhead(
                proxy, bare, images[0].read_bytes(), samples, concurrency)
    finally:
        for node in (bare, *(node for nodes in groups.values() for node in nodes)):
            node.stop()
    return result


def run(ctx: Context) -> Result:
    res = Result("scaleout")
    try:
        data = measure(ctx.size, Path(ctx.media))
    except LiteLLMUnavailable as exc:
        raise RuntimeError(f"scaleout needs LiteLLM's proxy (.ci/litellm-venv): {exc}") from None
    one = data.row("1 deployment(s)")
    for row in data.rows:
        if row.label == "direct":
            continue
        speedup = row.items_per_s / one.items_per_s
        # 4 items (tiny) are a smoke run, too few to judge scaling by.
        target = {2: ">= 1.7x one", 4: ">= 3.4x one"}.get(row.nodes, "") if ctx.size != "tiny" else ""
        ok = speedup >= 0.85 * row.nodes if target else None
        res.add(f"{row.label}: items/s (ideal {row.ideal_items_per_s:g}), speed-up over one",
                f"{row.items_per_s:.2f} ({row.ratio * 100:.0f} % of ideal), {speedup:.2f}x", "items/s, x", target, ok)
    direct = data.row("direct")
    res.add("proxy overhead at this load: 1 deployment via proxy / same server direct",
            f"{one.items_per_s:.2f} / {direct.items_per_s:.2f} ({one.items_per_s / direct.items_per_s * 100:.0f} %)",
            "items/s")
    res.add("proxy overhead per call (median, one call at a time)", round(data.added_ms, 1), "ms")
    res.add("proxy ceiling: calls/s to a 0-latency server (proxy CPU, 1.0 = one core)",
            f"{data.ceiling_per_s:.1f} ({data.ceiling_cpu_share:.2f})", "calls/s")
    res.details = {
        "items": data.items, "latency_s": data.latency, "parallel_per_server": PARALLEL,
        "concurrency": data.concurrency, "router_settings": ROUTER, "proxy_startup_s": round(data.startup_s, 1),
        "rows": [{**row.__dict__, "ratio": row.ratio} for row in data.rows],
    }
    res.notes.append(
        f"servers run {PARALLEL} call at a time, {data.latency:g} s each; concurrency {data.concurrency} for every "
        f"run; throughput = items / (first call at a server -> last answer). Proxy CPU share during the runs: "
        + ", ".join(f"{r.label} {r.proxy_cpu_share:.2f}" for r in data.rows if r.proxy_cpu_share is not None))
    return res
