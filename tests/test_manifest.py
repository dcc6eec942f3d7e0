"""The manifest loads in Stash's strict loader and agrees with the code that reads it."""

from __future__ import annotations

from pathlib import Path

import yaml

from ai_tagger import MODES
from ai_tagger.settings import Settings, manifest_settings

MANIFEST = Path(__file__).resolve().parents[1] / "ai_tagger.yml"
STASH_TOP_LEVEL = {"name", "description", "version", "url", "ui", "settings", "exec", "interface", "errLog", "tasks", "hooks"}


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_plugin_id_is_the_file_name():
    assert MANIFEST.name == "ai_tagger.yml"


def test_only_keys_stash_knows_so_strict_loading_succeeds():
    data = manifest()
    assert set(data) <= STASH_TOP_LEVEL
    for setting in data["settings"].values():
        assert set(setting) <= {"displayName", "description", "type"}
    for task in data["tasks"]:
        assert set(task) <= {"name", "description", "defaultArgs", "execArgs"}
    for hook in data["hooks"]:
        assert set(hook) <= {"name", "description", "triggeredBy", "defaultArgs", "execArgs"}


def test_exec_runs_the_package_from_the_plugin_dir():
    data = manifest()
    assert data["exec"] == ["python", "{pluginDir}/ai_tagger"]
    assert data["interface"] == "raw"


def test_settings_match_the_settings_model():
    declared = {key: value["type"] for key, value in manifest()["settings"].items()}
    assert declared == manifest_settings()
    for key, value in manifest()["settings"].items():
        assert value["displayName"].strip() and value["description"].strip(), key


def test_every_setting_default_is_valid():
    Settings.from_stash({})


def test_tasks_cover_every_mode_with_string_args():
    tasks = {task["name"]: task["defaultArgs"] for task in manifest()["tasks"]}
    assert tasks == {
        "Tag untagged scenes and images": {"mode": "tag_untagged"},
        "Tag untagged scenes": {"mode": "tag_scenes"},
        "Tag untagged images": {"mode": "tag_images"},
        "Preview tags (dry run)": {"mode": "preview"},
        "Re-apply tags from cache": {"mode": "reapply"},
        "Install or update dependencies": {"mode": "install_deps"},
    }
    assert {args["mode"] for args in tasks.values()} <= set(MODES)


def test_hooks_fire_on_new_scenes_and_images():
    [hook] = manifest()["hooks"]
    assert set(hook["triggeredBy"]) == {"Scene.Create.Post", "Image.Create.Post"}
