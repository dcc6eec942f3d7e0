"""The plugin run as Stash runs it, shared by the tests, the kill tests and the benchmarks.

Stash starts ``python {pluginDir}/ai_tagger`` from its own config folder and writes one JSON
object on stdin; the answer is one JSON object on stdout and log-protocol lines on stderr.
:func:`start` only starts the process (the kill tests kill it), :func:`run` waits for it and can
poll its peak memory (the benchmarks).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class PluginRun:
    returncode: int
    stdout: str
    stderr: str
    started: float = 0.0  # perf_counter just before the process was started
    wall: float = 0.0
    peak_rss_kb: int | None = None

    @property
    def result(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    @property
    def output(self) -> Any:
        return self.result["output"]

    @property
    def error(self) -> str | None:
        return self.result["error"]

    def log_lines(self, level: str | None = None) -> list[str]:
        """Messages of Stash log-protocol lines on stderr, optionally of one level."""
        lines = []
        for line in self.stderr.splitlines():
            if line.startswith("\x01") and len(line) > 2 and line[2] == "\x02":
                if level is None or line[1] == level:
                    lines.append(line[3:])
        return lines


def payload(connection: dict[str, Any], args: dict[str, Any]) -> str:
    return json.dumps({"server_connection": connection, "args": args})


def start(
    connection: dict[str, Any],
    args: dict[str, Any],
    *,
    cwd: str | Path | None = None,
    stdout: int | IO[str] = subprocess.PIPE,
    stderr: int | IO[str] = subprocess.PIPE,
    python: str | Path = sys.executable,
    plugin_dir: Path = REPO,
) -> subprocess.Popen[str]:
    """Start the plugin with its stdin JSON written and closed; the caller waits or kills."""
    process = subprocess.Popen(
        [str(python), str(plugin_dir / "ai_tagger")],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        text=True,
        cwd=cwd or connection["Dir"],
    )
    assert process.stdin is not None
    process.stdin.write(payload(connection, args))
    process.stdin.close()
    return process


def vm_kb(pid: int, name: str) -> int | None:
    """A ``/proc/<pid>/status`` memory figure (``VmHWM``, ``VmRSS``) in KiB, if readable."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run(
    connection: dict[str, Any],
    args: dict[str, Any],
    *,
    cwd: str | Path | None = None,
    timeout: float = 120,
    watch_rss: bool = False,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    python: str | Path = sys.executable,
    plugin_dir: Path = REPO,
) -> PluginRun:
    """Run the plugin to the end; with ``watch_rss``, poll its ``VmHWM`` every 50 ms.

    ``on_start`` sees the process once started (a benchmark reads its memory at chosen moments).
    ``python`` and ``plugin_dir`` stand for Stash's configured Python and the installed plugin folder.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), str(plugin_dir / "ai_tagger")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or connection["Dir"],
    )
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], vm_kb(process.pid, "VmHWM") or 0)
            stop.wait(0.05)

    if watch_rss:
        threading.Thread(target=poll, daemon=True).start()
    if on_start is not None:
        on_start(process)
    try:
        out, err = process.communicate(payload(connection, args), timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    finally:
        stop.set()
    wall = time.perf_counter() - started
    return PluginRun(process.returncode, out, err, started, wall, (peak[0] or None) if watch_rss else None)
