"""Build the plugin source Stash installs from: ``python3 -m ai_tagger.package --out DIR``.

Writes ``DIR/index.yml`` (Stash's package index, one entry: ``ai_tagger``) and ``DIR/ai_tagger.zip``
(the plugin folder: the manifest at the zip's root, the package, requirements, example rules and
README; no tests, benchmarks or caches). Host DIR on any static web server and add the URL of
``index.yml`` in Stash (Settings > Plugins > Available Plugins > Add Source).

Reproducible: entries sorted, fixed permissions, and every timestamp (zip entries and the index's
``date``, by which Stash offers updates) is one instant: ``SOURCE_DATE_EPOCH`` when set (the
reproducible-builds convention), else the commit's time (``git log -1 --format=%ct``), else
1980-01-01 00:00:00 UTC, the earliest time a zip can hold. One commit gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ai_tagger import PLUGIN_ID

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("ai_tagger.yml", "README.md", "LICENSE", "requirements*.txt", "rules*.example.yml")
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
ZIP_EPOCH = 315532800  # 1980-01-01 00:00:00 UTC
FILE_MODE = 0o100644  # a regular file, rw-r--r--: Stash writes each file with the mode the zip gives
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def plugin_files(root: Path = ROOT) -> list[str]:
    """The runtime files, as sorted zip paths relative to the plugin folder."""
    files = {path for pattern in TOP_LEVEL for path in root.glob(pattern) if path.is_file()}
    for path in (root / PLUGIN_ID).rglob("*"):
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES and not SKIPPED_DIRS & set(path.parts):
            files.add(path)
    return sorted(path.relative_to(root).as_posix() for path in files)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.rstrip() if done.returncode == 0 and done.stdout.strip() else None


def source_epoch(root: Path = ROOT) -> tuple[int, str]:
    """The build's one timestamp and where it came from."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").strip().isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"]), "SOURCE_DATE_EPOCH"
    committed = _git(root, "log", "-1", "--format=%ct")
    if committed and committed.isdigit():
        return int(committed), "commit time"
    return ZIP_EPOCH, "fixed fallback (no git, no SOURCE_DATE_EPOCH)"


def build_zip(root: Path, files: Sequence[str], epoch: int) -> bytes:
    stamp = time.gmtime(max(epoch, ZIP_EPOCH))[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that external_attr carries the file mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, (root / name).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def index_entry(root: Path, data: bytes, epoch: int) -> dict[str, Any]:
    """One entry of Stash's ``index.yml`` for the zip ``data``."""
    manifest = yaml.safe_load((root / f"{PLUGIN_ID}.yml").read_text(encoding="utf-8"))
    metadata = {"description": manifest.get("description") or ""}
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    if commit:
        metadata["commit"] = commit
    return {
        "id": PLUGIN_ID,
        "name": manifest["name"],
        "version": str(manifest["version"]),
        "date": time.strftime(DATE_FORMAT, time.gmtime(epoch)),
        "path": f"{PLUGIN_ID}.zip",
        "sha256": hashlib.sha256(data).hexdigest(),
        "requires": [],
        "metadata": metadata,
    }


def build(out: Path, root: Path = ROOT) -> dict[str, Any]:
    """Write ``out/index.yml`` and ``out/ai_tagger.zip``; return the index entry."""
    epoch, origin = source_epoch(root)
    files = plugin_files(root)
    data = build_zip(root, files, epoch)
    entry = index_entry(root, data, epoch)
    out.mkdir(parents=True, exist_ok=True)
    (out / entry["path"]).write_bytes(data)
    header = "# Stash plugin source: add this file's URL in Settings > Plugins > Available Plugins > Add Source\n"
    body = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=1000)
    (out / "index.yml").write_text(header + body, encoding="utf-8")
    dirty = _git(root, "status", "--porcelain", "--", *files)
    if dirty:
        print(f"warning: uncommitted changes are in the zip:\n{dirty}", file=sys.stderr)
    print(f"date {entry['date']} UTC ({origin}); {len(files)} files", file=sys.stderr)
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ai_tagger.package", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write index.yml and the zip into")
    options = parser.parse_args(argv)
    entry = build(options.out)
    print(f"{options.out / 'index.yml'}\n{options.out / entry['path']}  sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
