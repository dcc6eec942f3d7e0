"""The ``local`` benchmark runs end to end at a tiny size (figures are printed, never asserted)."""

from __future__ import annotations

from benchmarks import local_model

_FIGURES = ("detector_pictures_per_s", "detector_bound", "extraction_bound", "end_to_end", "ratio_to_slower_bound",
            "ratio_to_shared_cpu_bound", "model_load_s")  # fmt: skip


def test_local_benchmark_measures_every_figure_at_a_tiny_size(tmp_path, monkeypatch):
    monkeypatch.setattr(local_model, "SECONDS", 2.0)
    figures = local_model.measure(scenes=2, media_dir=tmp_path, repeats=1)

    assert figures["plugin"]["scenes_with_a_face"] >= 1  # the astronaut's video
    for name in ("detector_pictures_per_s", "extraction_bound", "end_to_end", "ratio_to_slower_bound"):
        assert figures[name] > 0, name


def test_local_benchmark_plugs_into_the_benchmarks_command(monkeypatch, tmp_path):
    from benchmarks.__main__ import benchmarks
    from benchmarks.harness import Context, Result

    monkeypatch.setattr(local_model, "measure", lambda **_: {k: 1.0 for k in _FIGURES} | {"rounds": 1})
    result = benchmarks()["local"](Context(size="quick", media=tmp_path))

    assert isinstance(result, Result) and result.figures and result.error is None
