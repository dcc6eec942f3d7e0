"""``python3 -m ai_tagger.package --out DIR`` builds the plugin source Stash installs from."""

from __future__ import annotations

import hashlib
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from ai_tagger import package
from tests.conftest import REPO

TOP_LEVEL = {
    "ai_tagger.yml",
    "README.md",
    "LICENSE",
    "requirements.txt",
    "requirements-local.txt",
    "requirements-speech.txt",
    "requirements-faces.txt",
    "rules.example.yml",
    "rules.local.example.yml",
}
RUNTIME = {"ai_tagger.yml", "README.md", "requirements.txt", "rules.example.yml", "ai_tagger/__main__.py"}


def build(out: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "ai_tagger.package", "--out", str(out)], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("source")
    build(out)
    return out


def test_index_lists_the_plugin_with_the_zip_sha256(source):
    [entry] = yaml.safe_load((source / "index.yml").read_text())
    manifest = yaml.safe_load((REPO / "ai_tagger.yml").read_text())

    assert entry["id"] == "ai_tagger"
    assert entry["name"] == manifest["name"] and entry["version"] == str(manifest["version"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", entry["date"])
    assert entry["path"] == "ai_tagger.zip"
    assert entry["sha256"] == hashlib.sha256((source / "ai_tagger.zip").read_bytes()).hexdigest()
    assert entry["requires"] == []
    assert entry["metadata"]["description"] == manifest["description"]


def test_zip_holds_the_runtime_files_with_the_manifest_at_its_root(source):
    with zipfile.ZipFile(source / "ai_tagger.zip") as archive:
        infos = archive.infolist()
    names = {info.filename for info in infos}

    assert RUNTIME <= names
    top_level = {name for name in names if "/" not in name}
    assert top_level <= TOP_LEVEL and names - top_level == {n for n in names if n.startswith("ai_tagger/")}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert all(stat.S_IMODE(info.external_attr >> 16) == 0o644 for info in infos), "Stash writes files with these modes"


def test_two_builds_of_one_commit_are_byte_identical(source, tmp_path):
    (REPO / "ai_tagger" / "__pycache__").mkdir(exist_ok=True)  # caches around must change nothing

    build(tmp_path)

    assert (tmp_path / "ai_tagger.zip").read_bytes() == (source / "ai_tagger.zip").read_bytes()
    assert (tmp_path / "index.yml").read_bytes() == (source / "index.yml").read_bytes()


def test_date_comes_from_source_date_epoch_else_the_commit(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert package.source_epoch() == (1700000000, "SOURCE_DATE_EPOCH")

    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    committed = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True)
    if committed.returncode == 0:
        assert package.source_epoch() == (int(committed.stdout), "commit time")


def test_a_folder_without_git_gets_the_fixed_fallback_date(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert package.source_epoch(tmp_path)[0] == package.ZIP_EPOCH
