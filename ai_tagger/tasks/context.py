"""What every task of one run shares, built once by ``tasks.run`` and handed down whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ai_tagger.analyze.gateway.base import Provider
from ai_tagger.decide.rules import Rules
from ai_tagger.log import Log
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.store.cache import Cache
from ai_tagger.store.journal import Journal
from ai_tagger.tasks.modes import Mode


@dataclass(frozen=True)
class RunContext:
    mode: Mode
    client: StashClient
    settings: Settings
    log: Log
    cache: Cache
    journal: Journal
    rules: Rules = field(default_factory=Rules)
    provider: Provider | None = None
    ffmpeg: str = "ffmpeg"
    limit: int | None = None
    dry_run: bool = False
    marker_end: bool = True
    """The Stash version has marker end times (0.28 and newer)."""
    args: dict[str, Any] = field(default_factory=dict)
    """The task's own arguments as Stash sent them (review operations read theirs)."""
