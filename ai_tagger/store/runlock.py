"""One run at a time per library: an OS lock on ``run.lock`` in the plugin's data folder.

Two runs over the same library (a cron job and a Stash task, or a task queued twice) would
send every item to the model twice and write it twice. The lock is the kernel's (``flock`` on
POSIX, ``msvcrt.locking`` on Windows), so it lives exactly as long as the process holding it:
a run killed by Stash's Cancel leaves a file behind but no lock, and the next run takes over.
A second run does not wait: it stops at once, before touching anything, and says which run
holds the library (pid, mode, start time, as the holder wrote them into the file).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ai_tagger.errors import RunBusy

__all__ = ["LOCK_NAME", "RunBusy", "RunLock"]

LOCK_NAME = "run.lock"
_WINDOWS_LOCK_OFFSET = 1 << 20
"""Windows locks byte ranges, and a locked range cannot be read: lock one byte far past the content."""


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _describe(raw: bytes) -> str:
    try:
        holder: dict[str, Any] = json.loads(raw.decode("utf-8"))
        return f"pid {int(holder['pid'])}, mode {str(holder['mode'])[:40]}, started {str(holder['started'])[:40]}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "details not yet written"


class RunLock:
    """``with RunLock(folder, mode):`` holds the library for the block; raises :class:`RunBusy`."""

    def __init__(self, folder: Path, mode: str) -> None:
        self.path = folder / LOCK_NAME
        self.mode = mode
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunBusy`; an unwritable folder raises :class:`OSError`."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        if not _try_lock(fd):
            os.lseek(fd, 0, os.SEEK_SET)
            holder = _describe(os.read(fd, 4096))
            os.close(fd)
            raise RunBusy(
                f"another AI Tagger run is working on this library ({holder}; lock {self.path}); "
                "this run stopped before changing anything. Run it again when the other one has finished."
            )
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        record = json.dumps({"pid": os.getpid(), "mode": self.mode, "started": started}).encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, record.ljust(256))
        self._fd = fd

    def release(self) -> None:
        """Close the file, which drops the lock; the file stays (deleting it would race a newcomer)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
