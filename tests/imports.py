"""What a plugin process imports, and a Python that lacks some packages, for subprocess tests.

Both work through ``tests/import_guard/sitecustomize.py`` on ``PYTHONPATH``: the plugin still
runs exactly as Stash starts it, only its interpreter is observed or made poorer.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

GUARD = Path(__file__).resolve().parent / "import_guard"
HEAVY = frozenset({"nudenet", "onnxruntime", "numpy", "cv2", "skimage"})
"""The local model's packages: only a run with ``provider: local`` may import them."""
FACES = frozenset({"dlib", "face_recognition_models"})
"""The face packages: only runs that recognise performers (or index them) may import them."""


def without(monkeypatch: pytest.MonkeyPatch, packages: Iterable[str]) -> None:
    """Plugin subprocesses started after this cannot import ``packages``."""
    monkeypatch.setenv("PYTHONPATH", str(GUARD))
    monkeypatch.setenv("AI_TAGGER_BLOCK_IMPORTS", ",".join(packages))


def record(monkeypatch: pytest.MonkeyPatch, out: Path) -> Path:
    """Plugin subprocesses started after this write the modules they imported to ``out``."""
    monkeypatch.setenv("PYTHONPATH", str(GUARD))
    monkeypatch.setenv("AI_TAGGER_IMPORTS_OUT", str(out))
    return out


def top_level(out: Path) -> set[str]:
    return {name.partition(".")[0] for name in out.read_text(encoding="utf-8").split()}


def startup_modules(tmp_path: Path) -> set[str]:
    """Top-level modules a bare interpreter imports (site, .pth hooks) under the same guard."""
    out = tmp_path / "bare-modules.txt"
    env = {"PYTHONPATH": str(GUARD), "AI_TAGGER_IMPORTS_OUT": str(out), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
    return top_level(out)


def imported_beyond_stdlib(out: Path, tmp_path: Path) -> set[str]:
    """Top-level modules a run imported that are neither the standard library, ours, nor start-up."""
    ours = {"ai_tagger", "sitecustomize", "__main__"}
    return top_level(out) - set(sys.stdlib_module_names) - ours - startup_modules(tmp_path)
