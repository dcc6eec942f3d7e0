"""The ``scaleout`` benchmark runs at a tiny size (1 and 2 servers, 4 items), so a change that
breaks it fails CI. No timing is looked at: the figures and PASS/MISS are the benchmark's business."""

from __future__ import annotations

import pytest

from benchmarks import scaleout
from benchmarks.harness import Context
from tests.litellm_gateway import venv_or_skip

pytestmark = pytest.mark.litellm


def test_scaleout_benchmark_runs_at_tiny_size(tmp_path):
    venv_or_skip()

    result = scaleout.run(Context(size="tiny", media=tmp_path))

    assert result.error is None
    metrics = [figure.metric for figure in result.figures]
    assert any(m.startswith("2 deployment(s)") for m in metrics), metrics
    assert any(m.startswith("proxy overhead per call") for m in metrics), metrics
    rows = {row["label"]: row for row in result.details["rows"]}
    assert sum(rows["2 deployment(s)"]["calls_per_node"]) == 4
    assert rows["direct"]["calls_per_node"] == [4]
