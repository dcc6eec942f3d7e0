"""The process entry point, as Stash runs it and as a person runs it from a shell.

Stash: JSON on stdin, log protocol on stderr, exactly one ``{"output", "error"}`` object on
stdout. Shell (cron-friendly): ``python -m ai_tagger --stash-url URL --api-key KEY --mode MODE``;
same run, readable logs, same JSON result, exit code 1 on failure.

Whatever arrives (any JSON shape, invalid UTF-8, a megabyte of brackets, a bad argument), the
answer is one JSON object on stdout, and everything written goes through the log's redaction.
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
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

from ai_tagger import MODES, deps, hooks
from ai_tagger.errors import RunError, UsageError
from ai_tagger.log import Log

MAX_INPUT = 8_000_000
"""Bytes of stdin read at most: Stash's input is a few hundred bytes, a hook's a few kilobytes."""


def _result(stdout: TextIO, log: Log, output: Any, error: str | None) -> int:
    answer = log.redact_data({"output": output, "error": error})
    stdout.write(json.dumps(answer, default=str) + "\n")
    stdout.flush()
    return 0 if error is None else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage and exiting: the caller still owes one JSON answer."""
        raise UsageError(message)


MODE_HELP = {
    "tag_untagged": "tag every scene and image that has no tags, and galleries with tagGalleries (the default)",
    "tag_scenes": "tag untagged scenes only",
    "tag_images": "tag untagged images only",
    "tag_galleries": "tag untagged galleries only, from up to imagesPerGallery of their images",
    "index_performers": "embed the face of every performer with an image (only what changed since the last index)",
    "identify_performers": "recognise performers by face on scenes and images that have none (no gateway)",
    "preview": "dry run: what the first previewItems untagged items would get, and the cost of all",
    "reapply": "re-decide tagged items from cached answers with today's settings (no model call)",
    "undo_last": "take back what the last tagging run added (--dry-run: only list it)",
    "remove_ai": "take back everything AI Tagger ever added (--dry-run: only list it)",
    "report": "per tag: applied and rejected by you; per run: items, tags, tokens, errors",
    "review_list": "the review page's queue of suggestions, as JSON",
    "review_decide": "accept or reject suggestions (the review page's operation)",
    "install_deps": "install the plugin's Python packages for this Python (pip --target, never system-wide)",
}
"""One line per mode for ``--help``; a test checks every mode has one."""


def _parser() -> _Parser:
    modes = "\n".join(f"  {mode:<14} {MODE_HELP.get(mode, '')}".rstrip() for mode in MODES)
    parser = _Parser(
        prog="python -m ai_tagger",
        description="Run AI Tagger against a Stash server from the command line, as Stash's tasks do:\n"
        "settings come from Stash (--set overrides one), the result is JSON on stdout, logs go to\n"
        "stderr, and the exit code is 1 when the run failed.",
        epilog=f"modes (--mode):\n{modes}\n\nThe local model as an HTTP sidecar: python -m ai_tagger.serve --help.\n"
        "Docs: README.md and docs/command-line.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stash-url",
        default="http://localhost:9999",
        help="Stash's address, e.g. http://localhost:9999, localhost:9999 or https://host/stash behind a proxy",
    )
    parser.add_argument("--api-key", help="Stash API key (Settings > Security); or set STASH_API_KEY")
    parser.add_argument("--mode", choices=MODES, default="tag_untagged", metavar="MODE", help="what to do (below)")
    parser.add_argument("--limit", help="process at most this many items (0 to 1000000000)")
    parser.add_argument(
        "--dry-run", action="store_true", help="undo_last / remove_ai: list what would be removed, change nothing"
    )
    parser.add_argument("--data-dir", help="folder for the result cache and run lock (default: ~/.cache/ai_tagger)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a plugin setting for this run"
    )
    return parser


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed options; an unknown argument is named without its value (it may be a mistyped key)."""
    args, unknown = _parser().parse_known_args(list(argv))
    if unknown:
        names = [item.split("=", 1)[0] if item.startswith("-") else "a value" for item in unknown]
        raise UsageError(f"unknown argument(s): {', '.join(dict.fromkeys(names))}; see --help")
    return args


def stash_connection(url: str) -> dict[str, Any]:
    """``--stash-url`` as the ``server_connection`` Stash would send, sub-path included.

    ``localhost:9999`` means ``http://localhost:9999``. Without a port: 443 for https, 80 for
    http behind a sub-path (a reverse proxy), else Stash's own 9999.
    """
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError("--stash-url: the port must be a number from 1 to 65535") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError("--stash-url: must start with http:// or https://, e.g. http://localhost:9999")
    if parts.username is not None or parts.password is not None:
        raise UsageError("--stash-url: must not contain a user name or password; put Stash's API key in --api-key")
    if not parts.hostname or any(c.isspace() for c in text):
        raise UsageError("--stash-url: needs a host name, e.g. http://localhost:9999")
    if parts.query or parts.fragment:
        raise UsageError("--stash-url: must not contain ?query or #fragment; give Stash's address only")
    if port == 0:
        raise UsageError("--stash-url: the port must be a number from 1 to 65535")
    path = parts.path.strip("/")
    return {
        "Scheme": parts.scheme,
        "Host": parts.hostname,
        "Port": port or (443 if parts.scheme == "https" else 80 if path else 9999),
        "BasePath": path,
    }


def setting_overrides(items: Sequence[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` entries; a malformed entry or an unknown key is an error listing the keys.

    The known keys come from the settings model (pydantic), so this runs only after the deps folder
    is on ``sys.path``, and not at all without ``--set`` (``install_deps`` runs without pydantic)."""
    if not items:
        return {}
    from ai_tagger.settings import manifest_settings

    known = list(manifest_settings())
    by_fold = {name.casefold(): name for name in known}
    overrides: dict[str, str] = {}
    problems = []
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            problems.append(f"--set {name or '=...'}: write KEY=VALUE, e.g. --set minConfidence=70")
        elif name not in known:
            hint = f" (did you mean {by_fold[name.casefold()]}?)" if name.casefold() in by_fold else ""
            problems.append(f"--set {name[:60]}: unknown setting{hint}")
        else:
            overrides[name] = value
    if problems:
        raise UsageError("\n".join(problems) + "\nknown settings: " + ", ".join(known))
    return overrides


def _cli_input(args: argparse.Namespace, log: Log) -> tuple[dict[str, Any], list[str]]:
    """The stdin object Stash would send, built from command-line options, and the raw ``--set`` entries."""
    api_key = args.api_key or os.environ.get("STASH_API_KEY")
    log.add_secret(api_key)
    log.add_url(args.stash_url)
    connection = {**stash_connection(args.stash_url), "ApiKey": api_key}
    task_args: dict[str, Any] = {"mode": args.mode}
    if args.limit is not None:
        task_args["limit"] = args.limit
    if args.dry_run:
        task_args["dryRun"] = True
    if args.data_dir:
        task_args["dataDir"] = args.data_dir
    return {"server_connection": connection, "args": task_args}, list(args.set)


def _stdin_input(stdin: TextIO) -> dict[str, Any]:
    """Stash's stdin object, checked for shape; anything else is a :class:`UsageError`."""
    try:
        text = stdin.read(MAX_INPUT + 1)
        text.encode("utf-8")  # a stdin decoded with surrogateescape (C locale) hides bad bytes until here
    except UnicodeError:
        raise UsageError("cannot read the input Stash sent: it is not UTF-8 text") from None
    if len(text) > MAX_INPUT:
        raise UsageError(f"cannot read the input Stash sent: larger than {MAX_INPUT // 1_000_000} MB")
    if not text.strip():
        raise UsageError("no input: Stash sends a JSON object on stdin; from a shell, see python -m ai_tagger --help")
    try:
        raw_input = json.loads(text)
    except RecursionError:
        raise UsageError("cannot read the input Stash sent: JSON nested too deeply") from None
    except ValueError as exc:
        raise UsageError(f"cannot read the input Stash sent: not JSON ({exc})") from None
    if not isinstance(raw_input, dict):
        raise UsageError("cannot read the input Stash sent: not a JSON object")
    if not isinstance(raw_input.get("server_connection"), dict):
        raise UsageError("cannot read the input Stash sent: server_connection is missing or not a JSON object")
    if raw_input.get("args") is not None and not isinstance(raw_input["args"], dict):
        raise UsageError("cannot read the input Stash sent: args is not a JSON object")
    return raw_input


def _register_secrets(raw_input: dict[str, Any], log: Log) -> None:
    connection = raw_input.get("server_connection") or {}
    cookie = connection.get("SessionCookie")
    if isinstance(cookie, dict):
        log.add_secret(cookie.get("Value"))
    log.add_secret(connection.get("ApiKey"))


def _failure_message(exc: BaseException) -> str:
    """A last-resort error as words, never a bare Python exception name."""
    if isinstance(exc, MemoryError):
        return "AI Tagger ran out of memory; lower concurrency or maxImageSide and run again"
    if isinstance(exc, RecursionError):
        return "AI Tagger met data nested too deeply to handle; nothing more was done"
    detail = str(exc).strip()
    return "AI Tagger failed unexpectedly" + (f": {detail}" if detail else "") + "; see the log for details"


def main(stdin: TextIO, stdout: TextIO, stderr: TextIO, argv: Sequence[str] | None = None) -> int:
    """Run once; return the process exit code. Everything the run needs is passed in."""
    log = Log(stderr, plain=bool(argv))
    try:
        return _main(stdin, stdout, log, argv)
    except RunError as exc:  # a usage error, or a path the deps folder is found under
        log.error(str(exc))
        return _result(stdout, log, None, str(exc))
    except Exception as exc:  # noqa: BLE001 - last resort: Stash must always get one JSON result
        message = _failure_message(exc)
        log.debug(f"unexpected {type(exc).__name__}")
        log.error(message)
        return _result(stdout, log, None, message)


def _main(stdin: TextIO, stdout: TextIO, log: Log, argv: Sequence[str] | None) -> int:
    entries: list[str] = []
    if argv:
        raw_input, entries = _cli_input(_parse_args(argv), log)
    elif _is_terminal(stdin):
        _parser().print_help(stdout)
        return 0
    else:
        raw_input = _stdin_input(stdin)
        _register_secrets(raw_input, log)
    args = raw_input.get("args") or {}
    if "hookContext" in args:
        return _result(stdout, log, _hook(raw_input, args["hookContext"], log), None)
    folder = deps.deps_dir(raw_input)
    stale = deps.activate(folder)
    try:
        overrides = setting_overrides(entries)
    except ImportError:
        needed = f'run "{deps.TASK_NAME}" (--mode install_deps) first'
        raise UsageError(f"--set needs the plugin's packages: {needed}") from None
    if args.get("mode") == "install_deps":
        from ai_tagger.tasks.install import install_deps

        return _result(stdout, log, *install_deps(raw_input, overrides, log))
    absent = deps.missing()
    if absent:
        return _failed(stdout, log, deps.missing_message(absent, folder, stale))
    if stale:
        log.warning(f'{stale}; using the packages found elsewhere: run "{deps.TASK_NAME}" again')
    try:
        from ai_tagger.tasks.run import run_task

        output, error = run_task(raw_input, overrides, log)
    except ImportError as exc:
        if (exc.name or "ai_tagger").startswith("ai_tagger"):
            raise
        return _failed(stdout, log, deps.missing_message([exc.name or "?"], folder, str(exc)))
    return _result(stdout, log, output, error)


def _failed(stdout: TextIO, log: Log, error: str) -> int:
    log.error(error)
    return _result(stdout, log, None, error)


def _hook(raw_input: dict[str, Any], context: Any, log: Log) -> dict[str, Any]:
    """A hook only ever queues a job; a malformed context is a no-op, never a tagging run."""
    if not isinstance(context, dict):
        log.warning("hook input without a hookContext object: nothing queued")
        return {"hook": None, "queued": False, "reason": "hookContext is not an object"}
    try:
        return hooks.on_create(raw_input, log)
    except Exception as exc:  # noqa: BLE001 - a hook must never fail the scan that runs it
        log.warning(f"hook failed: {_failure_message(exc)}")
        return {"queued": False}


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def cli() -> int:
    """Console-script entry (``ai-tagger``): the same run as ``python -m ai_tagger``, or with
    ``serve`` first, the local-model sidecar (``python -m ai_tagger.serve``)."""
    if sys.argv[1:2] == ["serve"]:
        from ai_tagger.serve import main as serve

        return serve(sys.argv[2:])
    return main(sys.stdin, sys.stdout, sys.stderr, sys.argv[1:])
