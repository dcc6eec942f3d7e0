"""Hostile input gets one JSON answer, no traceback and no secret, in bounded time and memory.

Every case runs in-process through ``entry.main``; the ones that stress memory or blocking I/O
also run as Stash runs the plugin (a subprocess) under the test's own limits: an address-space
cap and a wall-clock timeout. Nothing here asserts on timings.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import responses

from ai_tagger import hooks
from ai_tagger.entry import main, stash_connection
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import ServerConnection
from tests import media
from tests.conftest import REPO, configure

MEMORY_CAP = 1536 * 1024 * 1024
SUBPROCESS_TIMEOUT = 60
PASSWORD = "hunter2-in-the-url"
QUERY_KEY = "query-key-0451"


@dataclass
class Ctx:
    stash: Any
    model: Any
    tmp: Path

    def payload(self, args: dict[str, Any] | None = None, **connection: Any) -> str:
        return json.dumps({"server_connection": self.stash.server_connection(**connection), "args": args or {}})

    def settings(self, **values: Any) -> None:
        configure(self.stash, self.model, **values)

    def rules(self, path: Path | str, args: dict[str, Any] | None = None) -> str:
        self.settings(rulesFile=str(path))
        return self.payload(args)

    def secrets(self) -> list[str]:
        return [self.model.api_key, self.stash.session_cookie["Value"], PASSWORD, QUERY_KEY]


def _file(ctx: Ctx, name: str, text: str) -> Path:
    path = ctx.tmp / name
    path.write_text(text)
    return path


def _fifo(ctx: Ctx) -> Path:
    path = ctx.tmp / "rules.fifo"
    os.mkfifo(path)
    return path


def _big_rules(ctx: Ctx) -> Path:
    path = ctx.tmp / "big.yml"
    path.write_text("synonyms:\n" + "".join(f"  tag {i}: name {i}\n" for i in range(120_000)))
    return path


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _laughs(ctx: Ctx, under: str = "") -> Path:
    path = ctx.tmp / "laughs.yml"
    body = (
        BILLION_LAUGHS if not under else under + ":\n" + "".join(f"  {line}\n" for line in BILLION_LAUGHS.splitlines())
    )
    path.write_text(body)
    return path


@dataclass
class Case:
    make: Callable[[Ctx], str | bytes]
    expect: str
    subprocess: bool = False
    hook: bool = False


CASES: dict[str, Case] = {
    # --- stdin shapes: each is refused at once, before Stash is asked anything
    "top-level number": Case(lambda c: "5", "not a JSON object"),
    "top-level list": Case(lambda c: "[1, 2]", "not a JSON object", subprocess=True),
    "top-level string": Case(lambda c: '"mode"', "not a JSON object"),
    "args is a number": Case(lambda c: '{"server_connection": {}, "args": 5}', "args is not a JSON object"),
    "server_connection is a string": Case(lambda c: '{"server_connection": "x"}', "server_connection", subprocess=True),
    "no server_connection": Case(lambda c: '{"args": {"mode": "preview"}}', "server_connection"),
    "empty stdin": Case(lambda c: "", "no input"),
    "truncated JSON": Case(lambda c: c.payload()[:-5], "not JSON"),
    "invalid UTF-8": Case(
        lambda c: b'{"server_connection": {}, "args": {"mode": "\xff\xfe"}}', "not UTF-8", subprocess=True
    ),
    "100,000-deep nesting": Case(lambda c: "[" * 100_000, "nested too deeply", subprocess=True),
    "100,000-deep nesting in args": Case(
        lambda c: '{"server_connection": {}, "args": {"x": ' + '{"a": ' * 100_000 + "1", "nested too deeply"
    ),
    "port out of range": Case(lambda c: c.payload(Port=99999), "server_connection.Port: must be at most 65535"),
    "port is text": Case(lambda c: c.payload(Port="abc"), "server_connection.Port: must be a whole number"),
    "scheme not http": Case(lambda c: c.payload(Scheme="ftp"), "server_connection.Scheme"),
    "session cookie is a string": Case(lambda c: c.payload(SessionCookie="x"), "server_connection.SessionCookie"),
    # --- a hook input whose hookContext is not an object is a no-op, never a tagging run
    "hookContext is a string": Case(
        lambda c: c.payload({"hookContext": "Scene.Create.Post"}), "hookContext is not an object", hook=True
    ),
    "hookContext is null": Case(lambda c: c.payload({"hookContext": None}), "hookContext is not an object", hook=True),
    "hookContext is a list": Case(lambda c: c.payload({"hookContext": [1]}), "hookContext is not an object", hook=True),
    # --- task arguments
    "limit negative": Case(lambda c: c.payload({"limit": "-1"}), "limit must be a whole number"),
    "limit 10^30": Case(lambda c: c.payload({"limit": 10**30}), "limit must be a whole number"),
    "limit text": Case(lambda c: c.payload({"limit": "abc"}), "limit must be a whole number"),
    "limit boolean": Case(lambda c: c.payload({"limit": True}), "limit must be a whole number"),
    "mode not text": Case(lambda c: c.payload({"mode": ["preview"]}), "unknown mode"),
    "dataDir is a file": Case(lambda c: c.payload({"dataDir": str(_file(c, "f", "x"))}), "dataDir"),
    # --- secrets in settings: refused without echoing them, and never printed anywhere
    "password in gatewayUrl": Case(
        lambda c: (c.settings(gatewayUrl=f"http://user:{PASSWORD}@127.0.0.1:{c.model.port}/v1"), c.payload())[1],
        "gatewayUrl: must not contain a user name or password: put the key in apiKey",
        subprocess=True,
    ),
    "key in gatewayUrl query": Case(
        lambda c: (c.settings(gatewayUrl=f"{c.model.base_url}?key={QUERY_KEY}"), c.payload())[1], "gatewayUrl"
    ),
    "line break in authScheme": Case(
        lambda c: (c.settings(authScheme="Bearer\r\nX-Evil: 1"), c.payload())[1], "authScheme", subprocess=True
    ),
    "line break in apiKey": Case(
        lambda c: (c.settings(apiKey=c.model.api_key + "\nX-Evil: 1"), c.payload())[1], "apiKey", subprocess=True
    ),
    # --- values that used to slip through
    "minConfidence true": Case(lambda c: (c.settings(minConfidence=True), c.payload())[1], "minConfidence"),
    "gatewayUrl port 99999": Case(
        lambda c: (c.settings(gatewayUrl="http://127.0.0.1:99999/v1"), c.payload())[1], "gatewayUrl"
    ),
    "requestTimeout 1e-9": Case(lambda c: (c.settings(requestTimeout=1e-9), c.payload())[1], "requestTimeout"),
    "createdTagParent is a status tag": Case(
        lambda c: (c.settings(createdTagParent="AI_Tagged"), c.payload())[1], "createdTagParent"
    ),
    # --- rules files: refused by name, size or content before they cost anything
    "rules file is a FIFO": Case(lambda c: c.rules(_fifo(c)), "not a regular file", subprocess=True),
    "rules file is /dev/zero": Case(lambda c: c.rules("/dev/zero"), "not a regular file", subprocess=True),
    "rules file is a folder": Case(lambda c: c.rules(c.tmp), "is a folder"),
    "rules file over 1 MB": Case(lambda c: c.rules(_big_rules(c)), "larger than 1 MB", subprocess=True),
    "billion laughs": Case(lambda c: c.rules(_laughs(c)), "anchors and aliases", subprocess=True),
    "billion laughs under an unknown key": Case(lambda c: c.rules(_laughs(c, "notes")), "anchors and aliases"),
    "merge key": Case(lambda c: c.rules(_file(c, "merge.yml", "<<: {block: [a]}\n")), "merge keys"),
}


@pytest.fixture
def ctx(stash, model, tmp_path) -> Ctx:
    stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    return Ctx(stash, model, tmp_path)


def _check_answer(ctx: Ctx, case: Case, stdout: str, stderr: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    answer = json.loads(lines[0])
    assert set(answer) == {"output", "error"}
    assert "Traceback" not in stdout + stderr
    assert "errors.pydantic.dev" not in stdout + stderr
    for secret in ctx.secrets():
        assert secret not in stdout + stderr
    if case.hook:
        assert answer["error"] is None and answer["output"]["queued"] is False
        assert case.expect in answer["output"]["reason"]
    else:
        assert case.expect in (answer["error"] or ""), answer
    assert ctx.model.completion_count == 0
    assert ctx.stash.mutation_count == 0
    return answer


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_gets_one_clean_answer_in_process(ctx, name):
    case = CASES[name]
    text = case.make(ctx)
    stdin = io.TextIOWrapper(io.BytesIO(text if isinstance(text, bytes) else text.encode()), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    code = main(stdin, out, err, [])

    answer = _check_answer(ctx, case, out.getvalue(), err.getvalue())
    assert code == (0 if answer["error"] is None else 1)


def _limits() -> None:
    import resource  # POSIX only; the tests that use it are skipped elsewhere

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.subprocess])
def test_hostile_input_gets_one_clean_answer_as_stash_runs_it(ctx, name):
    case = CASES[name]
    text = case.make(ctx)
    done = subprocess.run(
        [sys.executable, str(REPO / "ai_tagger")],
        input=text if isinstance(text, bytes) else text.encode(),
        capture_output=True,
        cwd=ctx.tmp,
        timeout=SUBPROCESS_TIMEOUT,
        preexec_fn=_limits,
    )
    _check_answer(ctx, case, done.stdout.decode(), done.stderr.decode())
    assert done.returncode == 1


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ai_tagger", *args], capture_output=True, text=True, cwd=REPO,
        timeout=SUBPROCESS_TIMEOUT, preexec_fn=_limits, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--stash-url", "http://127.0.0.1:99999"], "--stash-url: the port must be a number from 1 to 65535"),
        (["--stash-url", "ftp://host"], "--stash-url: must start with http"),
        (["--stash-url", f"http://me:{PASSWORD}@host:9999"], "put Stash's API key in --api-key"),
        (["--stash-url", f"http://host:9999/?key={QUERY_KEY}"], "--stash-url: must not contain ?query"),
        (["--set", "minconfidence=70"], "did you mean minConfidence?"),  # wrong case
        (["--set", "noSuchSetting=1"], "--set noSuchSetting: unknown setting"),
        (["--set", "minConfidence"], "write KEY=VALUE"),  # no '='
        (["--set", "=70"], "write KEY=VALUE"),  # empty key
        (["--limit", "-1"], "limit must be a whole number"),
        (["--limit", "1e30"], "limit must be a whole number"),
        ([f"--apikey={PASSWORD}"], "unknown argument(s): --apikey"),  # a mistyped option is named, not its value
    ],
)
def test_bad_command_lines_get_one_clean_answer(args, expect):
    done = run_cli(*args)

    assert done.returncode == 1
    answer = json.loads(done.stdout)
    assert expect in answer["error"]
    assert "Traceback" not in done.stderr and PASSWORD not in done.stdout + done.stderr
    assert QUERY_KEY not in done.stdout + done.stderr
    if "--set" in args:
        assert "known settings: gatewayUrl, apiKey" in answer["error"]


def test_cli_reads_an_address_without_scheme_as_http(stash, model, tmp_path):
    stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    for address in (f"127.0.0.1:{stash.port}", f"localhost:{stash.port}"):
        done = run_cli("--stash-url", address, "--api-key", stash.api_key, "--mode", "preview")
        assert json.loads(done.stdout)["error"] is None, done.stderr


def test_plugin_on_a_terminal_prints_its_help():
    import pty

    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ai_tagger"], stdin=secondary, capture_output=True, text=True, cwd=REPO,
            timeout=SUBPROCESS_TIMEOUT,
        )  # fmt: skip
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 0
    assert "usage: python -m ai_tagger" in done.stdout and "--stash-url" in done.stdout


def test_settings_secrets_never_reach_any_output_of_a_failing_run(stash, model, tmp_path):
    # The key is valid for the settings but the gateway refuses it: the error names apiKey, not the key.
    stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    configure(stash, model, apiKey="sk-wrong-" + "x" * 20)
    payload = json.dumps({"server_connection": stash.server_connection(), "args": {"mode": "preview"}})
    out, err = io.StringIO(), io.StringIO()

    main(io.StringIO(payload), out, err, [])

    answer = json.loads(out.getvalue())
    assert "apiKey" in answer["error"]
    assert "sk-wrong-" not in out.getvalue() + err.getvalue()
    assert stash.session_cookie["Value"] not in out.getvalue() + err.getvalue()


def test_a_missing_vocabulary_parent_is_a_warning_that_tells_the_truth(stash, model, tmp_path):
    stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    configure(stash, model, vocabularyParent="No Such Branch")
    payload = json.dumps({"server_connection": stash.server_connection(), "args": {"mode": "preview"}})
    out, err = io.StringIO(), io.StringIO()

    main(io.StringIO(payload), out, err, [])

    warnings = [line[3:] for line in err.getvalue().splitlines() if line.startswith("\x01w\x02")]
    assert any("'No Such Branch' names no tag" in w and "fell back" in w for w in warnings), err.getvalue()
    assert "descendants of" not in err.getvalue()


def test_preview_summary_says_would_tag(stash, model, tmp_path):
    stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    payload = json.dumps({"server_connection": stash.server_connection(), "args": {"mode": "preview"}})
    out, err = io.StringIO(), io.StringIO()

    main(io.StringIO(payload), out, err, [])

    done_line = next(line for line in err.getvalue().splitlines() if "preview: done" in line)
    assert "would tag 1" in done_line and "would be applied" in done_line
    assert json.loads(out.getvalue())["output"]["tagged"] == 1  # the JSON keys stay as they were
    assert stash.mutation_count == 0


@responses.activate
def test_a_sub_path_is_kept_for_graphql():
    # Stash behind a reverse proxy at http://host/stash: GraphQL is http://host/stash/graphql.
    connection = stash_connection("http://proxy.example/stash/")
    responses.post("http://proxy.example:80/stash/graphql", json={"data": {"version": {"version": "v0.28.0"}}})

    client = StashClient(ServerConnection.model_validate(connection))

    assert client.version() == "v0.28.0"
    assert hooks._endpoint(connection)[0] == "http://proxy.example:80/stash/graphql"
    assert stash_connection("localhost:33147") == {"Scheme": "http", "Host": "localhost", "Port": 33147, "BasePath": ""}
