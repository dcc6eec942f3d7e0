"""The local-model sidecar (``python3 -m ai_tagger.serve``) as a real process on 127.0.0.1.

Started as a user starts it, on a free port (``--port 0``); its one-line-per-request log goes to a
file (a pipe nobody reads would fill and stall the server), where the first line names the port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Sidecar:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def rss_kb(self, field: str = "VmRSS") -> int:
        """The server's resident memory (``VmHWM``: its peak) from ``/proc``."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise LookupError(field)


@contextmanager
def sidecar(
    log_path: Path, *args: str, env: dict[str, str] | None = None, python: str = sys.executable
) -> Iterator[Sidecar]:
    """``python -m ai_tagger.serve --port 0 ARGS``, stopped (SIGTERM, as Docker does) on exit."""
    command: Sequence[str] = [python, "-m", "ai_tagger.serve", "--port", "0", *args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"on (http://127\.0\.0\.1:\d+)", log_path.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sidecar did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield Sidecar(found.group(1), process, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
