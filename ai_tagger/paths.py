"""Every path a user or Stash hands the plugin (``dataDir``, ``rulesFile``, ``server_connection.Dir``,
``PluginDir``) is read here, once, so a bad one is one clear error naming its field.

Python's own errors for these are no help to a user: a NUL character raises ``ValueError:
embedded null byte`` from deep inside ``os``, and ``~nosuchuser/`` raises ``RuntimeError: Could
not determine home directory``. Standard library only: the deps folder is found before any
package is importable.
"""

from __future__ import annotations

from pathlib import Path

from ai_tagger.errors import InputError, RunError


def user_path(value: str, field: str, *, expand: bool = True, error: type[RunError] = InputError) -> Path:
    """``value`` as a path (``~`` expanded unless ``expand`` is off), or ``error`` naming ``field``."""
    if "\0" in value:
        raise error(f"{field}: the path contains a NUL character; give a plain folder or file path")
    if not expand:
        return Path(value)
    try:
        return Path(value).expanduser()
    except (RuntimeError, KeyError):
        user = value.split("/", 1)[0]
        raise error(f"{field}: {user[:60]} names no user on this machine; give a full path") from None
