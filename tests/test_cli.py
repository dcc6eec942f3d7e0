"""The command line runs any mode against a Stash server outside the UI (cron-friendly)."""

from __future__ import annotations

import json
import subprocess
import sys

from ai_tagger import MODES
from tests import media
from tests.conftest import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ai_tagger", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_cli_tags_with_an_api_key(stash, model, tmp_path):
    scene = stash.add_scene(media.make_video(tmp_path / "v.mp4", ["green"], seconds_per_colour=3))

    done = run_cli("--stash-url", stash.url, "--api-key", stash.api_key, "--mode", "tag_scenes")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["error"] is None
    assert stash.tags_of_scene(scene) == {"Outdoors", "AI_Tagged"}
    assert "INFO" in done.stderr and stash.api_key not in done.stderr


def test_cli_overrides_settings_and_limits_items(stash, model, tmp_path):
    for i in range(3):
        stash.add_image(media.make_image(tmp_path / f"{i}.jpg", "white"))

    done = run_cli(
        "--stash-url", stash.url, "--api-key", stash.api_key, "--mode", "preview", "--limit", "2",
        "--set", "minConfidence=30",
    )  # fmt: skip

    output = json.loads(done.stdout)["output"]
    assert output["processed"] == 2
    assert all(item["tags"] == ["Bright"] for item in output["items"])
    assert stash.mutation_count == 0


def test_cli_without_credentials_exits_non_zero(stash, model):
    done = run_cli("--stash-url", stash.url, "--mode", "preview")

    assert done.returncode == 1
    assert "credentials" in json.loads(done.stdout)["error"]


def test_help_explains_every_mode_in_one_line():
    done = run_cli("--help")

    assert done.returncode == 0
    modes = done.stdout.split("modes (--mode):\n", 1)[1]
    for mode in MODES:
        [line] = [line for line in modes.splitlines() if line.split()[:1] == [mode]]
        assert len(line.split()) > 3, f"{mode} has no explanation in --help"
    assert "docs/command-line.md" in done.stdout
