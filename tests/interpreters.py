"""Python interpreters that lack the plugin's dependencies, as Stash's Python often does.

``fresh_venv``: a virtualenv without system site-packages. ``bare_python``: a copy of the base
interpreter with its own empty site-packages, not a virtualenv, optionally with an
``EXTERNALLY-MANAGED`` marker in its stdlib folder (PEP 668) as on Debian 12, Ubuntu 24.04 and
Stash's Docker image: pip ignores the marker inside a virtualenv, so only a non-venv Python tests it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PEP668_MARKER = "[externally-managed]\nError=This Python is managed by the system package manager (test marker).\n"


def _run(*command: str | Path) -> None:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stdout}{done.stderr}")


def fresh_venv(folder: Path) -> Path:
    """A virtualenv with pip and nothing else; its python."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run(base, "-m", "venv", folder)
    return folder / "bin" / "python"


def bare_python(prefix: Path, *, externally_managed: bool) -> Path:
    """A non-venv interpreter at ``prefix`` sharing the base install's stdlib (symlinks) but with
    its own site-packages holding only pip (this interpreter's, linked: Debian disables ensurepip
    outside a venv); its python. Skips where the layout is not a POSIX one."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(sys.base_prefix) / "lib" / version
    executable = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    pip = importlib.util.find_spec("pip")
    if os.name != "posix" or not (stdlib / "os.py").is_file() or not executable.is_file() or pip is None:
        pytest.skip(f"cannot copy this interpreter ({executable}, stdlib {stdlib}, pip {pip}) into a bare prefix")
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / version).mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "dist-packages", "EXTERNALLY-MANAGED"):
            (prefix / "lib" / version / entry.name).symlink_to(entry)
    python = prefix / "bin" / "python3"
    shutil.copy2(executable, python)
    code = "import site; print(site.getsitepackages()[0])"
    where = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    site_packages = Path(where.stdout.strip())
    assert where.returncode == 0 and site_packages.is_relative_to(prefix), where.stderr
    site_packages.mkdir(parents=True)
    (site_packages / "pip").symlink_to(Path(next(iter(pip.submodule_search_locations or []))))
    if externally_managed:
        (prefix / "lib" / version / "EXTERNALLY-MANAGED").write_text(PEP668_MARKER, encoding="utf-8")
    return python


@functools.cache
def index_unreachable() -> str | None:
    """Why no package index can be reached (a skip reason), or None: one HEAD request, 5 s at most."""
    url = (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/").rstrip("/") + "/pip/"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            return f"the package index {url} answers HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no Python package index reachable ({url}: {exc}); install_deps needs one"
    return None
