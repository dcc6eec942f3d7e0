"""``hook``: wall time of the ``Scene.Create.Post`` hook subprocess over a 10,000-tag library.

Every fifth run finds no job waiting, so the hook queues one; the rest find one waiting. Also:
bare interpreter start-up, ``import ai_tagger.entry``, the hook's two GraphQL calls timed
in-process, and ``-X importtime``'s heaviest modules. Target: p95 <= 300 ms.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import REPO, Context, Result, median_ms, pct, run_plugin, servers, time_command

NO_JOB_EVERY = 5  # runs 0, 5, 10, ...: queue empty, the hook queues one
WAITING_JOB = {
    "id": "999",
    "status": "READY",
    "addTime": "2024-01-01T00:00:00+00:00",
    "progress": None,
    "subTasks": None,
    "description": "AI Tagger: tag new scenes and images",
}


def _import_profile() -> dict[str, Any]:
    """``python -X importtime -c 'import ai_tagger.entry'``: the heaviest modules (ms)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import ai_tagger.entry"], capture_output=True, text=True, cwd=REPO
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append(
                {
                    "module": match.group(4),
                    "self_ms": int(match.group(1)) / 1000,
                    "cumulative_ms": int(match.group(2)) / 1000,
                    "depth": len(match.group(3)) // 2,
                }
            )
    ours = sorted((r for r in rows if r["module"].startswith("ai_tagger")), key=lambda r: -r["self_ms"])[:8]
    third = sorted(
        (r for r in rows if "." not in r["module"] and not r["module"].startswith("ai_tagger")),
        key=lambda r: -r["cumulative_ms"],
    )[:8]
    entry = next((r["cumulative_ms"] for r in rows if r["module"] == "ai_tagger.entry"), None)
    return {"entry_cumulative_ms": entry, "ai_tagger_by_self_ms": ours, "packages_by_cumulative_ms": third}


def run(ctx: Context) -> Result:
    res = Result("hook")
    runs = ctx.pick(full=30, quick=12, tiny=2)
    args = {"hookContext": {"id": "1", "type": "Scene.Create.Post", "input": None}}
    timings: dict[str, list[float]] = {"job_waiting": [], "no_job": []}
    with servers(tags=ctx.pick(full=10_000, quick=10_000, tiny=100)) as (stash, _model, _probe):
        warm, _ = run_plugin(stash, args)  # writes __pycache__, warms the page cache; not counted
        if warm.error or not isinstance(warm.output, dict):
            raise RuntimeError(f"hook failed: {warm.error or warm.stdout}")
        for i in range(runs):
            expect_queued = i % NO_JOB_EVERY == 0
            with stash.lock:
                if expect_queued:
                    stash.jobs.clear()
                elif not stash.jobs:
                    stash.jobs.append(dict(WAITING_JOB))
            done, _ = run_plugin(stash, args)
            if done.error or (done.output or {}).get("queued") is not expect_queued:
                raise RuntimeError(f"unexpected hook output {done.stdout!r} (run {i})")
            timings["no_job" if expect_queued else "job_waiting"].append(done.wall)

        # The hook's GraphQL calls from this process, with a fresh client (new connection) each time.
        from ai_tagger.stash import queries
        from ai_tagger.stash.client import StashClient
        from ai_tagger.stash.models import ServerConnection

        connection = ServerConnection.model_validate(stash.server_connection())
        graphql: list[float] = []
        for _ in range(ctx.pick(full=10, quick=10, tiny=2)):
            started = time.perf_counter()
            client = StashClient(connection)
            client.plugin_settings()
            client.execute(queries.JOB_QUEUE)
            graphql.append(time.perf_counter() - started)

    n = ctx.pick(full=10, quick=5, tiny=1)
    bare = [time_command([sys.executable, "-c", "pass"]) for _ in range(n)]
    imports = [time_command([sys.executable, "-c", "import ai_tagger.entry"]) for _ in range(n)]
    hook_code = "import ai_tagger.hooks, ai_tagger.settings, ai_tagger.stash.client"
    hook_imports = [time_command([sys.executable, "-c", hook_code]) for _ in range(n)]
    all_runs = timings["job_waiting"] + timings["no_job"]
    p95 = pct(all_runs, 95) * 1000
    res.add("hook p95 (all runs)", round(p95), "ms", "<= 300 ms", p95 <= 300)
    res.add("hook median (all runs)", round(median_ms(all_runs)), "ms")
    for group, values in timings.items():
        if values:
            res.add(
                f"hook median / p95, {group} ({len(values)} runs)",
                f"{median_ms(values):.0f} / {pct(values, 95) * 1000:.0f}",
                "ms",
            )
    res.add("python -c pass (interpreter start-up), median", round(median_ms(bare)), "ms")
    res.add("python -c 'import ai_tagger.entry', median", round(median_ms(imports)), "ms")
    res.add("python -c 'import hooks+settings+stash.client' only, median", round(median_ms(hook_imports)), "ms")
    res.add("GraphQL configuration + jobQueue (fresh client), median", round(median_ms(graphql), 1), "ms")
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
        f"breakdown of the median hook run: interpreter {median_ms(bare):.0f} ms, "
        f"imports of ai_tagger.entry +{import_cost * 1000:.0f} ms, GraphQL ~{median_ms(graphql):.0f} ms"
    )
    heavy = ", ".join(f"{r['module']} {r['cumulative_ms']:.0f}" for r in profile["packages_by_cumulative_ms"][:6])
    ours = ", ".join(f"{r['module']} {r['self_ms']:.0f}" for r in profile["ai_tagger_by_self_ms"][:5])
    res.notes.append(
        f"-X importtime, ai_tagger.entry {profile['entry_cumulative_ms'] or 0:.0f} ms in all; packages "
        f"(cumulative ms): {heavy}; ai_tagger modules (self ms): {ours}"
    )
    return res
