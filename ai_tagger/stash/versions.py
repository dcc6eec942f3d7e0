"""Which Stash each feature needs, checked once at task start.

A Stash too old for a GraphQL field rejects the whole document with an error that names the field,
not the version; checking ``version { version }`` first turns that into advice. Versions were read
from Stash's history: plugin settings (``configuration.plugins``) came in 0.24.0, ``runPluginTask``
with ``task_name``/``args_map`` in 0.25.0, scene markers' ``end_seconds`` in 0.28.0. Code that
sends an optional feature asks :func:`supports` first.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ai_tagger.log import Log

Version = tuple[int, int, int]
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


class Feature(NamedTuple):
    what: str
    since: Version


REQUIRED = Feature("plugin settings (configuration.plugins)", (0, 24, 0))
HOOK_QUEUE = Feature("automatic tagging of new scenes and images (runPluginTask with args_map)", (0, 25, 0))
MARKER_END = Feature("scene markers with an end time (end_seconds)", (0, 28, 0))
OPTIONAL = (HOOK_QUEUE, MARKER_END)


def parse(version: str) -> Version | None:
    """``v0.28.1``, ``0.27``, ``v0.29.0-12-gabc1234`` (a development build) -> numbers; else None."""
    match = _VERSION.match(version.strip())
    return (int(match[1]), int(match[2]), int(match[3] or 0)) if match else None


def _text(version: Version) -> str:
    return ".".join(map(str, version))


def supports(version: str, feature: Feature) -> bool:
    """Unknown versions (development builds without a tag) are assumed recent."""
    parsed = parse(version)
    return parsed is None or parsed >= feature.since


def check(version: str, log: Log) -> str | None:
    """Return an error when Stash is too old to run a task; log which features need a newer one."""
    if parse(version) is None:
        log.debug(f"Stash's version is {version!r}: assuming it is recent")
        return None
    if not supports(version, REQUIRED):
        return (
            f"Stash {version} is too old for AI Tagger: it needs Stash {_text(REQUIRED.since)} or newer "
            f"for {REQUIRED.what}; please update Stash"
        )
    lacking = [
        f"{feature.what} needs Stash {_text(feature.since)}" for feature in OPTIONAL if not supports(version, feature)
    ]
    if lacking:
        log.warning(f"Stash {version}: {'; '.join(lacking)} (update Stash to use them)")
    return None
