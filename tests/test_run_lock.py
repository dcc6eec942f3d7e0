"""One run at a time per library: a second run stops at once, a killed run's lock is taken over."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai_tagger.deps import data_dir
from tests import media
from tests.conftest import REPO, configure, run_plugin

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")

ITEMS = 3


def _start_plugin(stash, args: dict, folder: Path) -> subprocess.Popen:
    """The plugin as Stash starts it, left running (stdin from a file, so nothing blocks on it)."""
    stdin = folder / "stdin.json"
    stdin.write_text(json.dumps({"server_connection": stash.server_connection(), "args": args}))
    with stdin.open() as source:
        return subprocess.Popen(
            [sys.executable, str(REPO / "ai_tagger")], stdin=source, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=stash.server_connection()["Dir"],
        )  # fmt: skip


def _wait_for(condition, what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_two_runs_at_once_pay_once_per_item(stash, model, tmp_path):
    images = [stash.add_image(media.make_image(tmp_path / f"{i}.jpg", "white")) for i in range(ITEMS)]
    configure(stash, model, concurrency=1)
    model.latency = 1.5  # the first run is still busy when the second starts
    first = _start_plugin(stash, {"mode": "tag_untagged"}, tmp_path)
    _wait_for(lambda: model.completion_count >= 1, "the first run calls the model")

    second = run_plugin(stash, {"mode": "tag_untagged"})
    first_out, first_err = first.communicate(timeout=120)

    assert json.loads(first_out)["error"] is None, first_err
    assert second.returncode == 1 and second.output is None
    assert f"pid {first.pid}, mode tag_untagged" in second.error
    assert "changing anything" in second.error
    assert model.completion_count == ITEMS  # exactly one model call per item
    assert all("AI_Tagged" in stash.tags_of_image(i) for i in images)


def test_a_killed_runs_lock_is_taken_over(stash, model, tmp_path):
    stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    folder = data_dir(stash.server_connection()["Dir"])
    folder.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from ai_tagger.store.runlock import RunLock; "
         "RunLock(Path(sys.argv[1]), 'preview').acquire(); print('held', flush=True); time.sleep(120)", str(folder)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

    refused = run_plugin(stash, {"mode": "tag_untagged"})
    holder.send_signal(signal.SIGKILL)  # what Stash's Cancel does
    holder.wait(timeout=30)
    after = run_plugin(stash, {"mode": "tag_untagged"})

    assert f"pid {holder.pid}, mode preview" in refused.error
    assert after.error is None and after.output["tagged"] == 1
    assert Path(folder / "run.lock").exists()  # the file stays; only the kernel's lock went away


def test_hooks_do_not_take_the_lock(stash, model, tmp_path):
    folder = data_dir(stash.server_connection()["Dir"])
    folder.mkdir(parents=True, exist_ok=True)
    from ai_tagger.store.runlock import RunLock

    with RunLock(folder, "tag_untagged"):
        done = run_plugin(stash, {"hookContext": {"id": "1", "type": "Scene.Create.Post", "input": None}})

    assert done.error is None and done.output["queued"] is True
