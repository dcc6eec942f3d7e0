"""The manifest loads in Stash's strict loader and agrees with the code that reads it."""

from __future__ import annotations

from pathlib import Path

import yaml

from ai_tagger import MODES, PLUGIN_ID
from ai_tagger.settings import Settings, manifest_entries
from ai_tagger.tasks.modes import OPERATIONS

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "ai_tagger.yml"
STASH_TOP_LEVEL = {
    "name", "description", "version", "url", "ui", "settings", "exec", "interface", "errLog", "tasks", "hooks"
}


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_plugin_id_is_the_manifest_file_name_and_the_package_folder():
    # Stash takes a plugin's id from its manifest's file name; the hooks queue tasks by that id.
    [found] = [path for path in REPO.glob("*.yml") if "interface" in (yaml.safe_load(path.read_text()) or {})]
    assert found.stem == PLUGIN_ID
    assert (REPO / PLUGIN_ID / "__main__.py").is_file()


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


def test_every_setting_matches_its_model_field_in_name_type_display_name_and_description():
    declared = manifest()["settings"]
    expected = manifest_entries()
    assert set(declared) == set(expected)
    for key, entry in expected.items():
        assert declared[key] == entry, key
        assert entry["displayName"].strip() and entry["description"].strip(), key


def test_setting_keys_are_the_field_names_in_camel_case():
    for name, field in Settings.model_fields.items():
        head, *rest = name.split("_")
        assert field.alias == head + "".join(part.title() for part in rest)


def test_every_setting_default_is_valid():
    Settings.from_stash({})


def test_tasks_cover_every_mode_with_string_args():
    tasks = {task["name"]: task["defaultArgs"] for task in manifest()["tasks"]}
    assert tasks == {
        "Tag untagged scenes and images": {"mode": "tag_untagged"},
        "Tag untagged scenes": {"mode": "tag_scenes"},
        "Tag untagged images": {"mode": "tag_images"},
        "Tag untagged galleries": {"mode": "tag_galleries"},
        "Preview tags (dry run)": {"mode": "preview"},
        "Re-apply tags from cache": {"mode": "reapply"},
        "Undo the last run": {"mode": "undo_last"},
        "Preview undo of the last run": {"mode": "undo_last", "dryRun": True},
        "Remove everything AI Tagger added": {"mode": "remove_ai"},
        "AI Tagger report": {"mode": "report"},
        "Index performer faces": {"mode": "index_performers"},
        "Identify performers": {"mode": "identify_performers"},
        "Install or update dependencies": {"mode": "install_deps"},
    }
    assert {args["mode"] for args in tasks.values()} == set(MODES) - set(OPERATIONS)


def test_hooks_fire_on_new_scenes_and_images():
    [hook] = manifest()["hooks"]
    assert set(hook["triggeredBy"]) == {"Scene.Create.Post", "Image.Create.Post"}


def test_ui_files_exist_and_load_nothing_from_elsewhere():
    ui = manifest()["ui"]
    for path in [*ui["javascript"], *ui["css"]]:
        source = (REPO / path).read_text(encoding="utf-8")
        assert "http://" not in source and "https://" not in source, f"{path}: no external URL (Stash's CSP)"
    assert "csp" not in ui, "same-origin only: no CSP exception needed"
