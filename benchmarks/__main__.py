"""AI Tagger benchmarks against the bundled test servers, with generated media.

    python3 -m benchmarks                       # everything (long: see benchmarks/README.md)
    python3 -m benchmarks --quick               # smaller sizes, a smoke run of a few minutes
    python3 -m benchmarks --only hook,frames    # some benchmarks
    python3 -m benchmarks --out /tmp/bench.json

Every module of this package with a ``run(ctx) -> Result`` function is a benchmark, named after
the module (or its ``NAME``): adding one is adding a module. Prints the machine and a table (figure, value,
target, PASS/MISS) and writes the figures to ``benchmarks/results/latest.json``. This is a
script, never a test of timings: ``tests/test_benchmarks.py`` only runs each one at a tiny size.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.harness import MEDIA_CACHE, RESULTS, Context, Result, Size  # noqa: E402

NOT_BENCHMARKS = frozenset({"harness", "report", "run", "__main__"})
# The order the table shows; benchmarks not named here follow in alphabetical order.
ORDER = ("hook", "gateway", "e2e", "frames", "rss", "tokens")

Benchmark = Callable[[Context], Result]


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark module's ``run``, by module name."""
    import benchmarks as package

    found: dict[str, Benchmark] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in NOT_BENCHMARKS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if callable(getattr(module, "run", None)):
            found[getattr(module, "NAME", info.name)] = module.run
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def run_one(name: str, benchmark: Benchmark, ctx: Context) -> Result:
    """One benchmark; an exception becomes the result's error so the others still run."""
    started = time.perf_counter()
    try:
        result = benchmark(ctx)
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
        result = Result(name, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    result.seconds = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    known = benchmarks()
    parser = argparse.ArgumentParser(
        prog="python3 -m benchmarks", description="AI Tagger benchmarks (bundled test servers, generated media)."
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(known)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run (see README)")
    parser.add_argument("--tiny", action="store_true", help="the smallest sizes (what the test suite runs)")
    parser.add_argument(
        "--rss-scenes",
        type=int,
        help="library size for the rss benchmark (default 20,000; 2,000 with --quick); a 1,000-scene run "
        "(200 with --quick) is always added",
    )
    parser.add_argument(
        "--rss-cached",
        action="store_true",
        help="rss: give every scene the same fingerprint, so the result cache answers all but the first "
        "(pages, decisions and writes for the whole library in minutes instead of an hour of ffmpeg)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="JSON output path")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    size: Size = "tiny" if args.tiny else "quick" if args.quick else "full"
    info = report.machine()
    print(report.describe_machine(info))
    print(
        f"mode: {size}; benchmarks: {', '.join(names)}; FakeStash/FakeModel share the cores with the plugin\n",
        flush=True,
    )
    ctx = Context(size=size, media=MEDIA_CACHE, rss_scenes=args.rss_scenes, rss_cached=args.rss_cached)
    ctx.media.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = []
    for name in names:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {name} ...", flush=True)
        result = run_one(name, known[name], ctx)
        if result.error:
            print(result.error, file=sys.stderr)
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {name} done in {result.seconds:.0f} s", flush=True)
        results.append(result)
    print()
    print(report.table(results))
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report.write_json(
        args.out, results, started=started_at, finished=finished, machine=info, quick=args.quick, size=size,
        argv=list(argv if argv is not None else sys.argv[1:]),
    )
    print(f"\nwrote {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
