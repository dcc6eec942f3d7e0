"""The process entry point, as Stash runs it and as a person runs it from a shell.

Stash: JSON on stdin, log protocol on stderr, exactly one ``{"output", "error"}`` object on
stdout. Shell (cron-friendly): ``python -m ai_tagger --stash-url URL --api-key KEY --mode MODE``;
same run, readable logs, same JSON result, exit code 1 on failure.

Imports here stay light: a hook run must not pay for the task pipeline's modules, and nothing
outside the standard library is imported before the plugin's own package folder is on ``sys.path``
(``deps``) and known to hold what the task needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from ai_tagger import MODES, deps, hooks
from ai_tagger.log import Log


def _result(stdout: TextIO, output: Any, error: str | None) -> int:
    stdout.write(json.dumps({"output": output, "error": error}, default=str) + "\n")
    stdout.flush()
    return 0 if error is None else 1


def _failed(stdout: TextIO, log: Log, error: str) -> int:
    log.error(error)
    return _result(stdout, None, error)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ai_tagger",
        description="Run AI Tagger against a Stash server from the command line (settings come from Stash).",
    )
    parser.add_argument("--stash-url", default="http://localhost:9999", help="Stash base URL")
    parser.add_argument("--api-key", help="Stash API key (Settings > Security); or set STASH_API_KEY")
    parser.add_argument("--mode", choices=MODES, default="tag_untagged")
    parser.add_argument("--limit", type=int, help="process at most this many items")
    parser.add_argument("--data-dir", help="folder for the result cache (default: ~/.cache/ai_tagger)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a plugin setting for this run"
    )
    return parser.parse_args(list(argv))


def _cli_input(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stdin object Stash would send, built from command-line options, and setting overrides."""
    parts = urlsplit(args.stash_url)
    connection = {
        "Scheme": parts.scheme or "http",
        "Host": parts.hostname or "localhost",
        "Port": parts.port or (443 if parts.scheme == "https" else 9999),
        "ApiKey": args.api_key or os.environ.get("STASH_API_KEY"),
    }
    task_args: dict[str, Any] = {"mode": args.mode}
    if args.limit is not None:
        task_args["limit"] = args.limit
    if args.data_dir:
        task_args["dataDir"] = args.data_dir
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    return {"server_connection": connection, "args": task_args}, overrides


def _register_secrets(raw_input: dict[str, Any], log: Log) -> None:
    connection = raw_input.get("server_connection") or {}
    cookie = connection.get("SessionCookie") or {}
    if isinstance(cookie, dict):
        log.add_secret(str(cookie.get("Value") or ""))
    log.add_secret(str(connection.get("ApiKey") or ""))


def main(stdin: TextIO, stdout: TextIO, stderr: TextIO, argv: Sequence[str] | None = None) -> int:
    """Run once; return the process exit code. Everything the run needs is passed in."""
    overrides: dict[str, Any] = {}
    if argv:
        raw_input, overrides = _cli_input(_parse_args(argv))
        log = Log(stderr, plain=True)
    else:
        log = Log(stderr)
        try:
            raw_input = json.loads(stdin.read() or "{}")
        except ValueError as exc:
            return _result(stdout, None, f"cannot read the input Stash sent: {exc}")
        if not isinstance(raw_input, dict):
            return _result(stdout, None, "cannot read the input Stash sent: not a JSON object")
    _register_secrets(raw_input, log)
    args = raw_input.get("args") or {}
    if isinstance(args.get("hookContext"), dict):
        try:
            return _result(stdout, hooks.on_create(raw_input, log), None)
        except Exception as exc:  # noqa: BLE001 - a hook must never fail the scan that runs it
            log.warning(f"hook failed: {type(exc).__name__}: {exc}")
            return _result(stdout, {"queued": False}, None)
    folder = deps.deps_dir(raw_input)
    stale = deps.activate(folder)
    if args.get("mode") == "install_deps":
        from ai_tagger.install import install_deps

        return _result(stdout, *install_deps(raw_input, overrides, log))
    absent = deps.missing()
    if absent:
        return _failed(stdout, log, deps.missing_message(absent, folder, stale))
    if stale:
        log.warning(f'{stale}; using the packages found elsewhere: run "{deps.TASK_NAME}" again')
    try:
        from ai_tagger.tasks import run_task

        output, error = run_task(raw_input, overrides, log)
    except Exception as exc:  # noqa: BLE001 - last resort: Stash must always get one JSON result
        if isinstance(exc, ImportError) and not (exc.name or "ai_tagger").startswith("ai_tagger"):
            return _failed(stdout, log, deps.missing_message([exc.name or "?"], folder, str(exc)))
        return _failed(stdout, log, f"unexpected failure: {type(exc).__name__}: {exc}")
    return _result(stdout, output, error)


def cli() -> int:
    """Console-script entry (``ai-tagger``): the same run as ``python -m ai_tagger``."""
    return main(sys.stdin, sys.stdout, sys.stderr, sys.argv[1:])
