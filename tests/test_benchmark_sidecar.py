"""The ``sidecar`` benchmark runs end to end at a tiny size (figures are printed, never asserted)."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks import local_model, sidecar


def test_sidecar_benchmark_measures_both_paths_at_a_tiny_size(tmp_path, monkeypatch):
    monkeypatch.setattr(local_model, "SECONDS", 2.0)
    figures = sidecar.measure(scenes=2, media_dir=tmp_path)

    assert figures["same_faces"] and figures["runs"]["sidecar"]["scenes_with_a_face"] >= 1
    for name in ("local_scenes_per_s", "sidecar_scenes_per_s", "ratio", "sidecar_rss_mb"):
        assert figures[name] > 0, name


def test_sidecar_benchmark_plugs_into_benchmarks_run(monkeypatch, tmp_path):
    from benchmarks.run import BENCHMARKS, Result

    fake = {"local_scenes_per_s": 1.0, "sidecar_scenes_per_s": 0.95, "ratio": 0.95, "sidecar_rss_mb": 90.0,
            "sidecar_peak_rss_mb": 95.0, "rounds": 1}  # fmt: skip
    monkeypatch.setattr(sidecar, "measure", lambda **_: fake)
    result = BENCHMARKS["sidecar"](SimpleNamespace(quick=True, media=tmp_path))

    assert isinstance(result, Result) and result.error is None
    assert [f.status for f in result.figures if f.target] == ["PASS"]
