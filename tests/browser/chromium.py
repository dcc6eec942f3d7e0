"""Debian's Chromium and chromedriver for the browser test, installed on first use.

``.ci/setup`` leaves the browser out (the demo needs none of its 380 MB); the browser test asks
here, which runs ``.ci/setup-browser`` once when either is missing, as ``tests/litellm_gateway.py``
does for LiteLLM. Nothing downloads a browser of its own.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "setup-browser"
INSTALL_TIMEOUT = 900.0
BASH = shutil.which("bash") or "/bin/bash"


def _found() -> tuple[str, str] | None:
    chromium = os.environ.get("AI_TAGGER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("AI_TAGGER_CHROMEDRIVER") or shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@functools.cache
def ensure_chromium() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, installing them if missing; else why they are not there."""
    found = _found()
    if found:
        return found
    try:
        done = subprocess.run(
            [BASH, str(SCRIPT)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return f"{SCRIPT} took over {INSTALL_TIMEOUT:g} s"
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        return f"Chromium and chromedriver are not installed and {SCRIPT.name} failed (exit {done.returncode}):\n{tail}"
    return _found() or f"{SCRIPT.name} ran but chromium or chromedriver is still not on PATH"
