"""A task run (tag, preview, re-apply): settings, rules and cache set up, then the pipeline.

Everything that can be wrong with the set-up (Stash unreachable, a bad setting, a malformed
rules file, the gateway refusing us) is a :class:`~ai_tagger.errors.RunError` found here,
before the first write.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ai_tagger.cache import Cache
from ai_tagger.decide.rules import Rules, load_rules
from ai_tagger.errors import RunError, SettingsError
from ai_tagger.gateway.base import create_provider
from ai_tagger.log import Log
from ai_tagger.modes import DEFAULT, MODES, TABLE
from ai_tagger.pipeline import run
from ai_tagger.report import RunSummary
from ai_tagger.settings import Settings, data_dir, rules_path
from ai_tagger.stash import versions
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import PluginInput

Result = tuple[Any, str | None]


def _limit(args: dict[str, Any]) -> int | None:
    raw = args.get("limit")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"limit must be a whole number, not {raw!r}") from None


def run_task(raw_input: dict[str, Any], overrides: dict[str, Any], log: Log) -> Result:
    """Run the task the input asks for; return the ``(output, error)`` pair for Stash."""
    plugin_input = PluginInput.model_validate(raw_input)
    args = plugin_input.args
    mode = str(args.get("mode") or DEFAULT)
    if mode not in TABLE:
        return None, f"unknown mode {mode!r}: use one of {', '.join(MODES)}"
    connection = plugin_input.server_connection
    client = StashClient(connection)
    cache: Cache | None = None
    try:
        stash_version = client.version()
        log.debug(f"Stash {stash_version} at {client.base_url}")
        too_old = versions.check(stash_version, log)
        if too_old:
            log.error(too_old)
            return None, too_old
        raw_settings, ffmpeg_path = client.plugin_settings()
        settings = Settings.from_stash({**raw_settings, **overrides})
        if settings.api_key:
            log.add_secret(settings.api_key.get_secret_value())
        limit = _limit(args)
        rules = load_rules(rules_path(settings.rules_file, connection.plugin_dir)) if settings.rules_file else Rules()
        provider = create_provider(settings) if TABLE[mode].calls_provider else None
        if not settings.disable_cache:
            cache = Cache(Path(args.get("dataDir") or data_dir(connection.dir)) / "cache.sqlite3")
            if cache.reset_reason:
                log.warning(cache.reset_reason)
        summary = run(
            mode=mode,
            client=client,
            settings=settings,
            provider=provider,
            log=log,
            ffmpeg=ffmpeg_path or shutil.which("ffmpeg") or "ffmpeg",
            rules=rules,
            cache=cache,
            limit=limit,
        )
    except RunError as exc:
        log.error(str(exc))
        return None, str(exc)
    finally:
        if cache is not None:
            cache.close()
    return _answer(summary, log)


def _answer(summary: RunSummary, log: Log) -> Result:
    """A run that stopped early still reports what it did; only a failure is an error."""
    output = summary.as_output()
    if summary.stopped is None:
        return output, None
    if summary.failed:
        log.error(summary.stopped)
        return output, summary.stopped
    log.warning(summary.stopped)
    return output, None
