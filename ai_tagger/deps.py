"""Where the plugin's own Python packages live, and putting them first on ``sys.path``.

Stash's Python is often one nobody may install into (Stash's Docker image, Debian/Ubuntu: PEP 668
"externally managed"). So the "Install or update dependencies" task installs the runtime packages
with ``pip install --target`` into the plugin's data folder, which survives plugin updates (Stash's
package manager replaces the plugin folder), and every run puts that folder first on ``sys.path``
before it imports any of them. Standard library only: this runs when the packages may be missing.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ai_tagger import PLUGIN_ID
from ai_tagger.paths import user_path

PLUGIN_FOLDER = Path(__file__).resolve().parent.parent
REQUIREMENTS = PLUGIN_FOLDER / "requirements.txt"
LOCAL_REQUIREMENTS = PLUGIN_FOLDER / "requirements-local.txt"
SPEECH_REQUIREMENTS = PLUGIN_FOLDER / "requirements-speech.txt"
FACES_REQUIREMENTS = PLUGIN_FOLDER / "requirements-faces.txt"
TASK_NAME = "Install or update dependencies"
MARKER = "ai_tagger-python.txt"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def data_dir(stash_dir: str | None) -> Path:
    """The plugin's data folder: under Stash's config folder, which survives plugin updates, else
    (command line without Stash's stdin) the user's cache folder."""
    if stash_dir:
        return user_path(stash_dir, "server_connection.Dir", expand=False) / "plugin_data" / PLUGIN_ID
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / PLUGIN_ID


def data_root(given: object, stash_dir: str | None) -> Path:
    """The data folder a run uses: ``args.dataDir`` when given (``~`` expanded), else :func:`data_dir`.

    One reading for the deps folder and the task's cache and run lock, so they never drift apart."""
    if isinstance(given, str) and given.strip():
        return user_path(given, "dataDir")
    return data_dir(stash_dir)


def deps_dir(raw_input: dict[str, Any]) -> Path:
    """``<Stash config dir>/plugin_data/ai_tagger/deps`` (or under ``args.dataDir`` when given)."""
    connection = raw_input.get("server_connection")
    args = raw_input.get("args")
    stash_dir = connection.get("Dir") if isinstance(connection, dict) else None
    data = args.get("dataDir") if isinstance(args, dict) else None
    return data_root(data, str(stash_dir) if stash_dir else None) / "deps"


def python_tag() -> str:
    """The interpreter ABI compiled packages (pydantic-core, Pillow) were built for."""
    return sysconfig.get_config_var("SOABI") or f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"


def activate(folder: Path) -> str | None:
    """Put ``folder`` first on ``sys.path``; return why not when it holds packages built for another
    Python (Stash's Python was upgraded): importing those would crash instead of asking to reinstall."""
    if not folder.is_dir():
        return None
    try:
        built_for = (folder / MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        built_for = ""  # installed by hand with the manual pip command: trust it
    if built_for and built_for != python_tag():
        return f"the packages in {folder} were installed for {built_for}, but Stash now runs {python_tag()}"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return None


def requirement_names(path: Path) -> list[str]:
    """Distribution names listed in a requirements file (options and comments skipped)."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _NAME.match(line.split("#", 1)[0])
        if match:
            names.append(match.group(1))
    return names


def missing(requirements: Iterable[Path] = (REQUIREMENTS,)) -> list[str]:
    """Listed packages with no installed distribution on ``sys.path`` (cheap: no import)."""
    import importlib.metadata  # here, not at the top: the hook imports this module and must start fast

    absent = []
    for path in requirements:
        if not path.is_file():
            continue
        for name in requirement_names(path):
            try:
                importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                absent.append(name)
    return absent


def pip_command(target: Path, requirements: Sequence[Path]) -> list[str]:
    """``<this Python> -m pip install --target <target> -r <file> ...``: never touches the system."""
    command = [sys.executable, "-m", "pip", "install", "--target", str(target)]
    for path in requirements:
        command += ["-r", str(path)]
    return command


def missing_message(names: Sequence[str], folder: Path, reason: str | None = None) -> str:
    """One line: what is missing, the task that fixes it, and the pip command that does the same."""
    why = f" ({reason})" if reason else ""
    return (
        f"AI Tagger's Python packages are missing: {', '.join(names)}{why}. "
        f'Run the task "{TASK_NAME}" (Settings > Tasks > Plugin Tasks > AI Tagger), '
        f"or install them by hand: {shlex.join(pip_command(folder, [REQUIREMENTS]))}"
    )
