"""Type checking (mypy, configured in pyproject.toml) and lint (ruff) are part of the test run.

They run as subprocesses so that the README's one test command covers them; a machine without
the tool skips with the reason (``.ci/setup`` installs both through the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.runner import REPO


def tool(module: str) -> list[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", module]


def test_mypy_finds_no_type_errors_in_the_package():
    done = subprocess.run([*tool("mypy")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_finds_nothing_in_package_tests_and_benchmarks():
    done = subprocess.run(
        [*tool("ruff"), "check", "ai_tagger", "tests", "benchmarks"], capture_output=True, text=True, cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
