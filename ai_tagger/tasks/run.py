"""A task run (tag, preview, re-apply, undo, report): settings, rules and cache set up, then the mode's task.

Everything that can be wrong with the set-up (a bad argument, Stash unreachable, a bad setting,
a malformed rules file, the gateway refusing us, another run on the same library) is a
:class:`~ai_tagger.errors.RunError` found here, before the first write.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ai_tagger.analyze.gateway.base import create_provider
from ai_tagger.analyze.gateway.http import NOT_A_GATEWAY
from ai_tagger.decide.rules import Rules, load_rules
from ai_tagger.deps import data_root
from ai_tagger.errors import InputError, RunError, SettingsError
from ai_tagger.log import Log
from ai_tagger.settings import Settings, plain_message, raw_values, rules_path
from ai_tagger.stash import endpoint, versions
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import PluginInput
from ai_tagger.store.cache import Cache, NewerCache
from ai_tagger.store.journal import Journal
from ai_tagger.store.runlock import RunLock
from ai_tagger.tasks.context import RunContext
from ai_tagger.tasks.modes import DEFAULT, MODES, TABLE, Task
from ai_tagger.tasks.pipeline import run
from ai_tagger.tasks.report import report
from ai_tagger.tasks.review import Review
from ai_tagger.tasks.summary import RunSummary
from ai_tagger.tasks.undo import Undo

Result = tuple[Any, str | None]
MAX_LIMIT = 10**9

__all__ = ["parse_dry_run", "parse_limit", "read_input", "run_task"]


def read_input(raw_input: dict[str, Any]) -> PluginInput:
    """The typed input, or :class:`InputError` with one line per bad field and no secret in it."""
    try:
        return PluginInput.model_validate(raw_input)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {plain_message(error)}")
        raise InputError("cannot use the input Stash sent:\n" + "\n".join(problems)) from None


def parse_limit(value: Any) -> int | None:
    """``limit`` from a task argument (text, as Stash sends it) or the command line: 0..10^9, or none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: Any = value
    if isinstance(value, str):
        number = value.strip()
        number = int(number) if number.isascii() and number.isdigit() and len(number) <= 10 else None
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_LIMIT:
        shown = json.dumps(value if isinstance(value, (int, float)) else str(value)[:40])
        raise InputError(f"limit must be a whole number from 0 to {MAX_LIMIT} (got {shown})")
    return number


def parse_dry_run(value: Any) -> bool:
    """``dryRun`` from a task argument: a boolean, or its text as Stash may send it."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().casefold()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("", "false", "0", "no", "off"):
        return False
    raise InputError(f"dryRun must be true or false (got {json.dumps(str(value)[:40])})")


def data_folder(args: dict[str, Any], stash_dir: str | None) -> Path:
    """The plugin's data folder (cache, run lock), created if missing; the error names the path."""
    given = args.get("dataDir")
    if given is not None and not isinstance(given, str):
        raise InputError("dataDir must be a folder path")
    folder = data_root(given, stash_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"dataDir {folder}: cannot create the data folder ({exc.strerror or exc}); name a writable folder"
        ) from None
    if not folder.is_dir():
        raise InputError(f"dataDir {folder} is not a folder; name a writable folder")
    return folder


def register_secrets(raw_settings: dict[str, Any], log: Log) -> None:
    """Secrets in settings as typed, before validation: a rejected value must not be echoed either."""
    for value in raw_values(raw_settings, "api_key"):
        log.add_secret(value)
    for field in ("gateway_url", "face_server_url"):
        for value in raw_values(raw_settings, field):
            log.add_url(value)


def run_task(raw_input: dict[str, Any], overrides: dict[str, Any], log: Log) -> Result:
    """Run the task the input asks for; return the ``(output, error)`` pair for Stash."""
    log.forward()
    try:
        plugin_input = read_input(raw_input)
        args = plugin_input.args
        mode = args.get("mode") or DEFAULT
        if not isinstance(mode, str) or mode not in TABLE:
            raise InputError(f"unknown mode {str(mode)[:40]!r}: use one of {', '.join(MODES)}")
        limit = parse_limit(args.get("limit"))
        dry_run = parse_dry_run(args.get("dryRun"))
        folder = data_folder(args, plugin_input.server_connection.dir)
        lock = RunLock(folder, mode) if TABLE[mode].locks else None
        if lock is not None:
            try:
                lock.acquire()
            except OSError as exc:
                raise InputError(f"dataDir {folder}: cannot write {lock.path.name} ({exc.strerror or exc})") from None
    except RunError as exc:
        log.error(str(exc))
        return None, str(exc)
    try:
        return _run_locked(plugin_input, mode, limit, dry_run, folder, overrides, log)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(
    plugin_input: PluginInput,
    mode: str,
    limit: int | None,
    dry_run: bool,
    folder: Path,
    overrides: dict[str, Any],
    log: Log,
) -> Result:
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
        register_secrets({**raw_settings, **overrides}, log)
        settings = Settings.from_stash({**raw_settings, **overrides})
        if settings.api_key:
            log.add_secret(settings.api_key.get_secret_value())
        rules = load_rules(rules_path(settings.rules_file, connection.plugin_dir)) if settings.rules_file else Rules()
        provider = create_provider(settings) if TABLE[mode].calls_provider else None
        if provider is not None and settings.gateway_url and endpoint.is_stash(settings.gateway_url, client.base_url):
            raise SettingsError(f"'gatewayUrl' {settings.gateway_url} is Stash's own address. {NOT_A_GATEWAY}")
        # Opened even with disableCache (which only stops reusing answers): the provenance journal
        # lives in this file, and without it nothing a run adds could be undone.
        cache = Cache(folder / "cache.sqlite3")
        if cache.reset_reason:
            log.warning(cache.reset_reason)
        context = RunContext(
            mode=TABLE[mode],
            client=client,
            settings=settings,
            log=log,
            cache=cache,
            journal=Journal(cache, provider=settings.provider, model=settings.model),
            rules=rules,
            provider=provider,
            ffmpeg=ffmpeg_path or shutil.which("ffmpeg") or "ffmpeg",
            limit=limit,
            dry_run=dry_run,
            marker_end=versions.supports(stash_version, versions.MARKER_END),
            args=plugin_input.args,
        )
        return TASKS[context.mode.task](context)
    except RunError as exc:
        log.error(str(exc))
        return None, str(exc)
    except NewerCache as exc:
        log.error(str(exc))
        return None, str(exc)
    except sqlite3.Error as exc:
        message = f"dataDir {folder}: the result cache cannot be used ({exc}); name a writable folder"
        log.error(message)
        return None, message
    finally:
        if cache is not None:
            cache.close()


def _tag(context: RunContext) -> Result:
    return _answer(run(context), context.log)


def _undo(context: RunContext) -> Result:
    undone = Undo(context.mode, client=context.client, journal=context.journal, cache=context.cache,
                  log=context.log, dry_run=context.dry_run).run()  # fmt: skip
    return _with_reset(undone.as_output(), context.cache), None


def _review(context: RunContext) -> Result:
    review = Review(client=context.client, journal=context.journal, cache=context.cache, settings=context.settings,
                    log=context.log)  # fmt: skip
    return review.run(context.mode, context.args), None


def _report(context: RunContext) -> Result:
    output = report(client=context.client, journal=context.journal, settings=context.settings, log=context.log)
    return _with_reset(output, context.cache), None


def _index(context: RunContext) -> Result:
    from ai_tagger.analyze.faces.indexer import index_performers  # dlib loads only for the face tasks

    return index_performers(context.client, context.cache, context.settings, context.log), None


def _identify(context: RunContext) -> Result:
    from ai_tagger.tasks.identify import identify_performers

    return identify_performers(context), None


TASKS: dict[Task, Callable[[RunContext], Result]] = {
    Task.TAG: _tag,
    Task.UNDO: _undo,
    Task.REVIEW: _review,
    Task.REPORT: _report,
    Task.INDEX: _index,
    Task.IDENTIFY: _identify,
}
"""What each mode's ``task`` column runs."""


def _with_reset(output: dict[str, Any], cache: Cache) -> dict[str, Any]:
    """An undo or report over a journal that had to be moved aside says so in its output."""
    if cache.reset_reason:
        output["journal_lost"] = cache.reset_reason
    return output


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
