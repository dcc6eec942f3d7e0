"""A task run (tag, preview, re-apply): settings, rules and cache set up, then the pipeline.

Everything that can be wrong with the set-up (Stash unreachable, a bad setting, a malformed
rules file, the gateway refusing us) is found here, before the first write.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ai_tagger import MODES
from ai_tagger.cache import Cache
from ai_tagger.decide.rules import Rules, RulesError, load_rules
from ai_tagger.gateway.base import GatewayFatal, create_provider
from ai_tagger.log import Log
from ai_tagger.pipeline import RunStopped, run
from ai_tagger.settings import Settings, SettingsError, data_dir, rules_path
from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.stash.models import PluginInput

Result = tuple[Any, str | None]


def run_task(raw_input: dict[str, Any], overrides: dict[str, Any], log: Log) -> Result:
    """Run the task the input asks for; return the ``(output, error)`` pair for Stash."""
    log.forward()
    plugin_input = PluginInput.model_validate(raw_input)
    args = plugin_input.args
    mode = str(args.get("mode") or "tag_untagged")
    if mode not in MODES:
        return None, f"unknown mode {mode!r}: use one of {', '.join(MODES)}"
    connection = plugin_input.server_connection
    client = StashClient(connection)
    cache: Cache | None = None
    try:
        raw_settings, ffmpeg_path = client.plugin_settings()
        log.debug(f"Stash {client.version()} at {client.base_url}")
        settings = Settings.from_stash({**raw_settings, **overrides})
        if settings.api_key:
            log.add_secret(settings.api_key.get_secret_value())
        limit = int(args["limit"]) if args.get("limit") not in (None, "") else None
        rules = load_rules(rules_path(settings.rules_file, connection.plugin_dir)) if settings.rules_file else Rules()
        provider = None if mode == "reapply" else create_provider(settings)
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
    except (SettingsError, RulesError, GatewayFatal, StashError, ValueError) as exc:
        log.error(str(exc))
        return None, str(exc)
    except RunStopped as exc:
        output = exc.summary.as_output() if exc.summary else None
        if exc.clean:
            log.warning(str(exc))
            return output, None
        log.error(str(exc))
        return output, str(exc)
    finally:
        if cache is not None:
            cache.close()
    return summary.as_output(), None
