"""The process entry point, as Stash runs it and as a person runs it from a shell.

Stash: JSON on stdin, log protocol on stderr, exactly one ``{"output", "error"}`` object on
stdout. Shell (cron-friendly): ``python -m ai_tagger --stash-url URL --api-key KEY --mode MODE``;
same run, readable logs, same JSON result, exit code 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from typing import Any, TextIO
import os
from urllib.parse import urlsplit

from ai_tagger import hooks
from ai_tagger.gateway.base import GatewayFatal, create_provider
from ai_tagger.log import Log
from ai_tagger.pipeline import RunStopped, run
from ai_tagger.settings import MODES, Settings, SettingsError
from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.stash.models import PluginInput



def _result(stdout: TextIO, output: Any, error: str | None) -> int:
    stdout.write(json.dumps({"output": output, "error": error}, default=str) + "\n")
    stdout.flush()
    return 0 if error is None else 1


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ai_tagger",
        description="Run AI Tagger against a Stash server from the command line (settings come from Stash).",
    )
    parser.add_argument("--stash-url", default="http://localhost:9999", help="Stash base URL")
    parser.add_argument("--api-key", help="Stash API key (Settings > Security); or set STASH_API_KEY")
    parser.add_argument("--mode", choices=MODES, default="tag_untagged")
    parser.add_argument("--limit", type=int, help="process at most this many items")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a plugin setting for this run"
    )
    return parser.parse_args(list(argv))


def _cli_input(args: argparse.Namespace) -> tuple[PluginInput, dict[str, Any]]:

    parts = urlsplit(args.stash_url)
    connection = {
        "Scheme": parts.scheme or "http",
        "Host": parts.hostname or "localhost",
        "Port": parts.port or (443 if parts.scheme == "https" else 9999),
        "ApiKey": args.api_key or os.environ.get("STASH_API_KEY"),
    }
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    payload = {"server_connection": connection, "args": {"mode": args.mode}}
    if args.limit is not None:
        payload["args"]["limit"] = args.limit
    return PluginInput.model_validate(payload), overrides


def main(stdin: TextIO, stdout: TextIO, stderr: TextIO, argv: Sequence[str] | None = None) -> int:
    """Run once; return the process exit code. Everything the run needs is passed in."""
    overrides: dict[str, Any] = {}
    if argv:
        plugin_input, overrides = _cli_input(_parse_args(argv))
        log = Log(stderr, plain=True)
    else:
        log = Log(stderr)
        try:
            plugin_input = PluginInput.model_validate(json.loads(stdin.read() or "{}"))
        except ValueError as exc:
            return _result(stdout, None, f"cannot read the input Stash sent: {exc}")
    connection = plugin_input.server_connection
    if connection.session_cookie:
        log.add_secret(connection.session_cookie.value)
    log.add_secret(connection.api_key)
    hook = plugin_input.hook_context
    try:
        return _run(plugin_input, overrides, log, stdout, hook.type if hook else None)
    except Exception as exc:  # noqa: BLE001 - last resort: Stash must always get one JSON result
        log.error(f"unexpected failure: {type(exc).__name__}: {exc}")
        if hook:
            return _result(stdout, {"hook": hook.type, "queued": False}, None)
        return _result(stdout, None, f"unexpected failure: {type(exc).__name__}: {exc}")


def _run(
    plugin_input: PluginInput, overrides: dict[str, Any], log: Log, stdout: TextIO, hook_type: str | None
) -> int:
    client = StashClient(plugin_input.server_connection)
    try:
        raw_settings, ffmpeg_path = client.plugin_settings()
    except StashError as exc:
        if hook_type:
            log.warning(f"{hook_type}: {exc}")
            return _result(stdout, {"hook": hook_type, "queued": False}, None)
        return _result(stdout, None, str(exc))
    try:
        settings = Settings.from_stash({**raw_settings, **overrides})
    except SettingsError as exc:
        if hook_type:
            log.warning(f"{hook_type}: {exc}")
            return _result(stdout, {"hook": hook_type, "queued": False}, None)
        log.error(str(exc))
        return _result(stdout, None, str(exc))
    if settings.api_key:
        log.add_secret(settings.api_key.get_secret_value())

    if hook_type:
        try:
            return _result(stdout, hooks.on_create(client, settings, log, hook_type), None)
        except StashError as exc:
            log.warning(f"{hook_type}: could not queue tagging: {exc}")
            return _result(stdout, {"hook": hook_type, "queued": False}, None)

    args = plugin_input.args
    mode = str(args.get("mode") or "tag_untagged")
    if mode not in MODES:
        return _result(stdout, None, f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    try:
        limit = int(args["limit"]) if args.get("limit") not in (None, "") else None
        provider = create_provider(settings)
        summary = run(
            mode=mode,
            client=client,
            settings=settings,
            provider=provider,
            log=log,
            ffmpeg=ffmpeg_path or shutil.which("ffmpeg") or "ffmpeg",
            limit=limit,
        )
    except (SettingsError, GatewayFatal, StashError, ValueError) as exc:
        log.error(str(exc))
        return _result(stdout, None, str(exc))
    except RunStopped as exc:
        log.error(str(exc))
        return _result(stdout, exc.summary.as_output() if exc.summary else None, str(exc))
    return _result(stdout, summary.as_output(), None)


def cli() -> int:
    """Console-script entry (``ai-tagger``): the same run as ``python -m ai_tagger``."""
    import sys

    return main(sys.stdin, sys.stdout, sys.stderr, sys.argv[1:])
