"""A task checks Stash's version first: too old stops before any write with advice, not a GraphQL
error; features a newer Stash brings are named with the version they need."""

from __future__ import annotations

import io

import pytest

from ai_tagger.log import Log
from ai_tagger.stash import versions
from tests.conftest import run_plugin
from tests.servers import stash_server


def test_a_stash_too_old_for_plugin_settings_stops_before_any_write(stash, monkeypatch, red_video):
    monkeypatch.setattr(stash_server, "STASH_VERSION", "v0.23.1")
    scene = stash.add_scene(red_video)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "Stash v0.23.1 is too old" in run.error and "0.24.0" in run.error
    assert stash.mutation_count == 0 and stash.tags_of_scene(scene) == set()


def test_an_older_stash_tags_and_names_what_needs_a_newer_one(stash, monkeypatch, red_video):
    monkeypatch.setattr(stash_server, "STASH_VERSION", "v0.27.2")
    scene = stash.add_scene(red_video)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.error is None
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}
    [warning] = [line for line in run.log_lines("w") if "Stash v0.27.2" in line]
    assert "end_seconds" in warning and "0.28.0" in warning


@pytest.mark.parametrize(
    ("version", "parsed"),
    [("v0.28.1", (0, 28, 1)), ("0.27", (0, 27, 0)), ("v0.29.0-12-gabc1234", (0, 29, 0)), ("unknown", None), ("", None)],
)
def test_versions_parse_releases_and_development_builds(version, parsed):
    assert versions.parse(version) == parsed


def test_an_unknown_version_is_assumed_recent():
    assert versions.check("unknown", Log(io.StringIO())) is None
    assert versions.supports("unknown", versions.MARKER_END)
    assert not versions.supports("v0.27.9", versions.MARKER_END) and versions.supports("v0.28.0", versions.MARKER_END)
