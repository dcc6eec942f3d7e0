"""Stash's plugin log protocol on stderr: ``\\x01<level>\\x02<message>``.

Level ``p`` carries a 0..1 fraction that drives the task's progress bar. Every message goes
through :meth:`Log.redact` so that secrets registered for the run (API keys, session cookie,
passwords and query strings of configured URLs) and base64 image data can never reach Stash's
log, whatever a caller formats into it. The entry point sends the stdout answer through the
same redaction, so there is one rule for everything the plugin emits.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

_MAX_LINE = 60_000
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]{16,}")
_NAMES = {"t": "TRACE", "d": "DEBUG", "i": "INFO", "w": "WARNING", "e": "ERROR", "p": "PROGRESS"}
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")
_MIN_SECRET = 4


def url_secrets(url: Any) -> list[str]:
    """The parts of a URL that must never be printed: user name and password, query and its values."""
    if not isinstance(url, str) or not url:
        return []
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    found = [parts.netloc.rpartition("@")[0] if "@" in parts.netloc else "", parts.password or "", parts.query]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    return [secret for secret in found if secret]


class Log:
    """Thread-safe writer of Stash log lines, with redaction of registered secrets."""

    def __init__(self, stream: TextIO, *, level: str = "d", plain: bool = False) -> None:
        self._stream = stream
        self._plain = plain
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._min = "tdiwe".index(level)
        self._last_progress = -1.0
        self._last_progress_at = 0.0

    def add_secret(self, secret: Any) -> None:
        """Never print this value from now on: as written, quoted (``repr``/JSON), or any line of it."""
        if not isinstance(secret, str) or len(secret.strip()) < _MIN_SECRET:
            return
        forms = {secret, secret.strip(), repr(secret)[1:-1], json.dumps(secret)[1:-1], *secret.splitlines()}
        kept = {form for form in forms if len(form.strip()) >= _MIN_SECRET}
        # A new tuple, longest first, replaces the old one: writers on other threads never see it change.
        self._secrets = tuple(sorted(kept.union(self._secrets), key=len, reverse=True))

    def add_url(self, url: Any) -> None:
        """Never print the credentials or query string of this configured URL."""
        for secret in url_secrets(url):
            self.add_secret(secret)

    def redact(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        message = _URL_USERINFO.sub(r"\1***@", message)
        message = _DATA_URI.sub("data:<image>", message)
        return _LONG_BASE64.sub("<base64>", message)

    def redact_data(self, value: Any) -> Any:
        """``value`` (JSON-like data, e.g. the stdout answer) with every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_data(v) for v in value]
        return value

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
