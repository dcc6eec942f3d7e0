"""The plugin installs the way Stash plugins install: unpacked from the built zip, with a Python that
has none of its packages, it fails clearly until "Install or update dependencies" ran, then tags.

The interpreters are real (a fresh virtualenv; a non-venv copy of the base interpreter with a PEP 668
``EXTERNALLY-MANAGED`` marker), pip is real and fetches from the package index this machine reaches.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ai_tagger import deps, hooks, package
from ai_tagger.log import Log
from ai_tagger.tasks import install
from tests.conftest import PluginRun, run_plugin
from tests.interpreters import bare_python, fresh_venv, index_unreachable

needs_index = pytest.mark.skipif(
    index_unreachable() is not None, reason=str(index_unreachable()) or "a package index is reachable"
)


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("source")
    package.build(out)
    return out / "ai_tagger.zip"


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    """One fresh virtualenv for the module: the plugin never installs into it (deps go to Stash's folder)."""
    return fresh_venv(tmp_path_factory.mktemp("venv") / "venv")


@pytest.fixture
def plugin_dir(plugin_zip, tmp_path, monkeypatch) -> Path:
    """An empty ``plugins`` folder with the zip unpacked as Stash's package manager does."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    folder = tmp_path / "plugins" / "ai_tagger"
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(folder)
    return folder


def run(stash, python: Path, plugin_dir: Path, mode: str) -> PluginRun:
    connection = stash.server_connection(PluginDir=str(plugin_dir))
    return run_plugin(stash, {"mode": mode}, connection=connection, python=python, plugin_dir=plugin_dir, timeout=600)


def deps_folder(stash) -> Path:
    return Path(stash.server_connection()["Dir"]) / "plugin_data" / "ai_tagger" / "deps"


def install_then_tag(stash, python: Path, plugin_dir: Path, video: Path) -> None:
    scene = stash.add_scene(video)

    installed = run(stash, python, plugin_dir, "install_deps")

    assert installed.returncode == 0, installed.stderr
    assert installed.error is None
    assert {"pydantic", "requests", "pillow", "pyyaml"} <= {name.lower() for name in installed.output["installed"]}
    assert installed.output["changed"] == [f"{n} {v} (new)" for n, v in installed.output["installed"].items()]
    assert installed.output["target"] == str(deps_folder(stash))
    assert (deps_folder(stash) / "pydantic").is_dir() and (deps_folder(stash) / "yaml").is_dir()
    assert any(line.startswith("Successfully installed") for line in installed.log_lines("i")), "pip's output is logged"
    assert stash.mutation_count == 0

    tagged = run(stash, python, plugin_dir, "tag_untagged")

    assert tagged.returncode == 0, tagged.stderr
    assert tagged.error is None
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}


def test_missing_dependency_fails_with_one_line_naming_the_task_and_marks_nothing(
    stash, plugin_dir, venv_python, red_video
):
    scene = stash.add_scene(red_video)

    done = run(stash, venv_python, plugin_dir, "tag_untagged")

    assert done.returncode == 1
    assert done.output is None
    assert '"Install or update dependencies"' in done.error and "pydantic" in done.error
    manual = f"{venv_python} -m pip install --target {deps_folder(stash)} -r {plugin_dir / 'requirements.txt'}"
    assert manual in done.error
    assert "\n" not in done.error
    assert done.log_lines("e") == [done.error]
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert stash.mutation_count == 0 and stash.tags_of_scene(scene) == set()


def test_packages_built_for_another_python_ask_for_a_reinstall_instead_of_crashing(stash, plugin_dir, venv_python):
    deps_folder(stash).mkdir(parents=True)
    (deps_folder(stash) / "ai_tagger-python.txt").write_text("cpython-39-x86_64-linux-gnu\n")

    done = run(stash, venv_python, plugin_dir, "tag_untagged")

    assert done.returncode == 1
    assert "installed for cpython-39-x86_64-linux-gnu" in done.error
    assert '"Install or update dependencies"' in done.error
    assert "Traceback" not in done.stderr


def test_the_hook_runs_without_dependencies(stash, plugin_dir, venv_python):
    connection = stash.server_connection(PluginDir=str(plugin_dir))
    args = {"hookContext": {"id": "1", "type": "Scene.Create.Post", "input": None}}

    done = run_plugin(stash, args, connection=connection, python=venv_python, plugin_dir=plugin_dir)

    assert done.returncode == 0 and done.error is None
    assert done.log_lines("e") == [] and "Traceback" not in done.stderr


@needs_index
def test_zip_in_a_fresh_venv_installs_its_dependencies_then_tags(stash, plugin_dir, venv_python, red_video):
    install_then_tag(stash, venv_python, plugin_dir, red_video)


@needs_index
def test_zip_with_an_externally_managed_python_installs_its_dependencies_then_tags(
    stash, plugin_dir, tmp_path, red_video
):
    python = bare_python(tmp_path / "system", externally_managed=True)
    refused = subprocess.run([python, "-m", "pip", "install", "pyyaml"], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stdout + refused.stderr

    install_then_tag(stash, python, plugin_dir, red_video)


def test_provider_local_adds_requirements_local_when_the_plugin_ships_it(tmp_path, monkeypatch):
    stream = io.StringIO()
    local = tmp_path / "requirements-local.txt"
    monkeypatch.setattr(deps, "LOCAL_REQUIREMENTS", local)

    assert install.requirements("local", Log(stream)) == [deps.REQUIREMENTS]
    assert "requirements-local.txt is not in the plugin folder" in stream.getvalue()

    local.write_text("nudenet\n")
    assert install.requirements("local", Log(stream)) == [deps.REQUIREMENTS, local]
    assert install.requirements("openai", Log(stream)) == [deps.REQUIREMENTS]


FAKE_PIP = """
import json, pathlib, sys
for name, version in json.loads(sys.argv[2]).items():
    info = pathlib.Path(sys.argv[1], f"{name}-{version}.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n")
print("Successfully installed", *json.loads(sys.argv[2]))
"""


def test_install_lists_every_package_on_a_fresh_install_then_only_what_changed(tmp_path, monkeypatch):
    packages = {"pydantic": "2.9.0", "requests": "2.32.3"}
    monkeypatch.setattr(
        deps, "pip_command", lambda target, files: [sys.executable, "-c", FAKE_PIP, str(target), json.dumps(packages)]
    )
    raw = {"server_connection": {"Dir": str(tmp_path)}, "args": {"mode": "install_deps"}}
    stream = io.StringIO()

    fresh, error = install.install_deps(raw, {"provider": "openai"}, Log(stream))

    assert error is None
    assert fresh["changed"] == ["pydantic 2.9.0 (new)", "requests 2.32.3 (new)"]
    assert "changed since the last install: pydantic 2.9.0 (new), requests 2.32.3 (new)" in stream.getvalue()

    again, _ = install.install_deps(raw, {"provider": "openai"}, Log(io.StringIO()))
    assert again["changed"] == []

    packages.update(pydantic="2.10.1", pillow="11.0.0")
    del packages["requests"]
    updated, _ = install.install_deps(raw, {"provider": "openai"}, Log(io.StringIO()))
    assert updated["changed"] == ["pillow 11.0.0 (new)", "pydantic 2.9.0 -> 2.10.1", "requests 2.32.3 (removed)"]


def test_recognize_performers_adds_requirements_faces(tmp_path, monkeypatch):
    stream = io.StringIO()
    assert install.requirements("openai", Log(stream), faces=True) == [deps.REQUIREMENTS, deps.FACES_REQUIREMENTS]
    assert deps.FACES_REQUIREMENTS.is_file()
    local = tmp_path / "requirements-local.txt"
    local.write_text("nudenet\n")
    monkeypatch.setattr(deps, "LOCAL_REQUIREMENTS", local)
    both = install.requirements("local", Log(stream), faces=True)
    assert both == [deps.REQUIREMENTS, local, deps.FACES_REQUIREMENTS]
    assert hooks._enabled("true") and hooks._enabled(True) and not hooks._enabled(None) and not hooks._enabled("false")


def test_install_deps_reads_recognize_performers_from_stash(stash):
    stash.set_plugin_settings("ai_tagger", {"provider": "local", "recognizePerformers": True})
    chosen = install._settings({"server_connection": stash.server_connection()}, {}, Log(io.StringIO()))
    assert chosen["provider"] == "local" and hooks._enabled(chosen["recognizePerformers"])
