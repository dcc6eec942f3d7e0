"""Every benchmark runs at a tiny size, so a benchmark broken by a code change fails CI.

Nothing here looks at a timing: the figures' values and PASS/MISS are the benchmarks' business.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import benchmarks, run_one
from benchmarks.harness import Context
from tests.runner import REPO

# scaleout needs LiteLLM's proxy: tests/test_benchmark_scaleout.py runs it (and skips without it).
NAMES = [name for name in benchmarks() if name != "scaleout"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return Context(size="tiny", media=tmp_path_factory.mktemp("bench-media"))


def test_the_six_benchmarks_are_found():
    assert {"hook", "gateway", "e2e", "frames", "rss", "tokens"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_runs_at_tiny_size(name: str, tiny: Context):
    result = run_one(name, benchmarks()[name], tiny)

    assert result.error is None, result.error
    assert result.name == name
    assert result.figures, "a benchmark must report at least one figure"


def test_command_line_runs_one_benchmark_under_both_names(tmp_path: Path):
    for module in ("benchmarks", "benchmarks.run"):
        out = tmp_path / f"{module}.json"
        done = subprocess.run(
            [sys.executable, "-m", module, "--tiny", "--only", "hook", "--out", str(out)],
            capture_output=True, text=True, cwd=REPO, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "hook p95" in done.stdout
        assert out.exists()


def test_unknown_benchmark_is_refused_with_the_list():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 2
    assert "unknown benchmark(s) nope" in done.stderr and "hook" in done.stderr
