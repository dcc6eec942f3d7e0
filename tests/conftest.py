"""Shared fixtures: a Stash-compatible server, a pixel-reading model server, and the plugin
run as Stash runs it (a subprocess fed the stdin JSON, from Stash's working directory)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests import runner
from tests.runner import REPO, PluginRun
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

# Hypothesis' per-example deadline and too-slow check are timing assertions: on a shared, loaded
# machine they fail tests whose properties hold. Speed is measured by benchmarks/, never here.
settings.register_profile("no-timing", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("no-timing")

PLUGIN_ID = "ai_tagger"
__all__ = ["PLUGIN_ID", "REPO", "PluginRun", "configure", "gateway_settings", "run_plugin"]


def run_plugin(
    stash: FakeStash, args: dict[str, Any], *, cwd: Path | None = None, connection: dict[str, Any] | None = None,
    timeout: float = 120, python: str | Path = sys.executable, plugin_dir: Path = REPO,
) -> PluginRun:
    """Start the plugin exactly as Stash's manifest says: ``python {pluginDir}/ai_tagger``."""
    connection = connection or stash.server_connection()
    cwd = cwd or stash.server_connection()["Dir"]
    return runner.run(connection, args, cwd=cwd, timeout=timeout, python=python, plugin_dir=plugin_dir)


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs without a Stash config folder (the CLI) keep their journal, cache and run lock in the
    user's cache folder: point it at a temporary one, so tests never share or leave state in $HOME."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture
def red_video(tmp_path: Path) -> Path:
    """A 4-second all-red H.264 video: every frame reads as "Red"."""
    from tests import media

    return media.make_video(tmp_path / "red.mp4", ["red"], seconds_per_colour=4)


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel(retry_after=0.05) as server:
        yield server


@pytest.fixture
def stash(model: FakeModel) -> Iterator[FakeStash]:
    """A Stash server whose plugin settings point at the test model."""
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, gateway_settings(model))
        yield server


def gateway_settings(server: FakeModel, /, **extra: Any) -> dict[str, Any]:
    """Settings pointing at the test model; ``extra`` may override any key, ``model`` included."""
    return {"gatewayUrl": server.base_url, "apiKey": server.api_key, "model": server.models[0], **extra}


def configure(stash: FakeStash, server: FakeModel, /, **settings: Any) -> None:
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(server, **settings))
