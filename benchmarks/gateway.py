"""``gateway``: ``tag_images`` on tiny images, FakeModel latency 0.4 s, concurrency 1/4/8/16.

Throughput as a share of the ideal ``concurrency / latency``. Target: >= 90 % at c=8.
"""

from __future__ import annotations

from benchmarks.harness import (
    PLUGIN_ID,
    Context,
    FakeModel,
    FakeStash,
    Probe,
    Result,
    expect_tagged,
    make_images,
    run_plugin,
    settings_for,
    window_throughput,
)

LATENCY = 0.4


def run(ctx: Context) -> Result:
    res = Result("gateway")
    n = ctx.pick(full=500, quick=48, tiny=4)
    images = make_images(ctx.media / "images64", n)
    levels = ctx.pick(full=(1, 4, 8, 16), quick=(1, 4, 8, 16), tiny=(1, 8))
    rows = {}
    with FakeModel(latency=LATENCY, retry_after=0.05) as model:
        for concurrency in levels:
            with FakeStash() as stash:
                for path in images:
                    stash.add_image(path, width=64, height=64)
                stash.set_plugin_settings(PLUGIN_ID, settings_for(model, concurrency=concurrency))
                probe = Probe(stash, model)
                model.reset()
                done, _ = run_plugin(stash, {"mode": "tag_images"}, probe=probe)
                probe.close()
                expect_tagged(done, n, f"c={concurrency}")
                row = window_throughput(n, done, probe)
                row["max_in_flight"] = model.max_in_flight
                ideal = concurrency / LATENCY
                row["ideal_items_per_s"] = ideal
                row["ratio"] = (row.get("items_per_s") or 0) / ideal
                row["gateway_ratio"] = (row.get("gateway_items_per_s") or 0) / ideal
                rows[concurrency] = row
    for concurrency, row in rows.items():
        target = "" if concurrency != 8 else ">= 90 % of ideal"
        ok = None if concurrency != 8 else row["ratio"] >= 0.9
        res.add(
            f"c={concurrency}: items/s (ideal {row['ideal_items_per_s']:g}), % of ideal",
            f"{row.get('items_per_s') or 0:.2f} ({row['ratio'] * 100:.0f} %)",
            "items/s (%)",
            target,
            ok,
        )
    res.details = {"latency_s": LATENCY, "images": n, "by_concurrency": rows}
    res.notes.append(
        "throughput = items / (last item write - preflight answered): run wall time minus "
        "start-up (interpreter, imports, settings, preflight); tag loading, paging and writes "
        "are inside the window. details.gateway_items_per_s uses first request -> last answer."
    )
    return res
