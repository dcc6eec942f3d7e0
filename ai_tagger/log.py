"""Stash's plugin log protocol on stderr: ``\\x01<level>\\x02<message>``.

Level ``p`` carries a 0..1 fraction that drives the task's progress bar. Every message goes
through :func:`redact` so that secrets registered for the run (API key, session cookie) and
base64 image data can never reach Stash's log, whatever a caller formats into it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TextIO

_MAX_LINE = 60_000
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]{16,}")
_NAMES = {"t": "TRACE", "d": "DEBUG", "i": "INFO", "w": "WARNING", "e": "ERROR", "p": "PROGRESS"}
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")


class Log:
    """Thread-safe writer of Stash log lines, with redaction of registered secrets."""

    def __init__(self, stream: TextIO, *, level: str = "d", plain: bool = False) -> None:
        self._stream = stream
        self._plain = plain
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._min = "tdiwe".index(level)
        self._last_progress = -1.0
        self._last_progress_at = 0.0

    def add_secret(self, secret: str | None) -> None:
        """Never print this value (nor anything containing it) from now on."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def redact(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        message = _DATA_URI.sub("data:<image>", message)
        return _LONG_BASE64.sub("<base64>", message)

    def _write(self, level: str, message: str) -> None:
        if level != "p" and "tdiwe".index(level) < self._min:
            return
        text = self.redact(message)
        lines = text.splitlines() or [""]
        with self._lock:
            for line in lines:
                if self._plain:
                    self._stream.write(f"{_NAMES[level]:<8}{line[:_MAX_LINE]}\n")
                else:
                    self._stream.write(f"\x01{level}\x02{line[:_MAX_LINE]}\n")
            self._stream.flush()

    def trace(self, message: str) -> None:
        self._write("t", message)

    def debug(self, message: str) -> None:
        self._write("d", message)

    def info(self, message: str) -> None:
        self._write("i", message)

    def warning(self, message: str) -> None:
        self._write("w", message)

    def error(self, message: str) -> None:
        self._write("e", message)

    def forward(self, logger: str = "ai_tagger") -> None:
        """Send that ``logging`` logger's records (WARNING and up) here, redacted like the rest."""
        target = logging.getLogger(logger)
        target.handlers = [_Forward(self)]
        target.setLevel(logging.WARNING)
        target.propagate = False

    def progress(self, fraction: float) -> None:
        """Report progress, at most a few times a second: Stash redraws on every line."""
        if self._plain:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_progress_at < 0.25 and fraction - self._last_progress < 0.05:
            return
        self._last_progress, self._last_progress_at = fraction, now
        self._write("p", f"{fraction:.4f}")


class _Forward(logging.Handler):
    def __init__(self, log: Log) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        level = "e" if record.levelno >= logging.ERROR else "w" if record.levelno >= logging.WARNING else "i"
        self._log._write(level, record.getMessage())
