"""Property tests (hypothesis) for everything that reads outside input: the answer reader, the rules
loader, the settings and the stdin entry. Whatever arrives, each gives its typed result or its one
documented error, never another exception, and never echoes a secret.

CI runs a small, derandomized number of examples per property; set ``AI_TAGGER_FUZZ_EXAMPLES``
(e.g. 20000) for a real fuzzing session, which also randomizes the examples.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_tagger.analyze.gateway.answer import MalformedAnswer, read_answer
from ai_tagger.decide.rules import RulesError, parse_rules
from ai_tagger.entry import main
from ai_tagger.settings import Settings, SettingsError, manifest_settings

EXAMPLES = int(os.environ.get("AI_TAGGER_FUZZ_EXAMPLES", "0"))
fuzz = settings(
    max_examples=EXAMPLES or 40,
    derandomize=not EXAMPLES,  # CI: the same examples every run; a fuzzing session: new ones
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
SECRET = "sk-FUZZSECRET"

# --- the answer reader -------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
tag_names = st.text(min_size=1, max_size=30).filter(lambda name: name.strip() != "")
tag_entries = st.fixed_dictionaries(
    {"name": tag_names},
    optional={
        "confidence": st.floats(0, 1) | st.integers(-5, 300) | st.sampled_from(["85%", "0.5", "high", "²"]),
        "frames": st.lists(st.integers(-3, 12) | st.text(max_size=6) | st.sampled_from(["²", "1" * 5000]), max_size=4),
    },
)
answers = st.lists(tag_entries, max_size=8).map(lambda tags: json.dumps({"tags": tags}, ensure_ascii=False))
wrappers = st.sampled_from(
    ["{}", "```json\n{}\n```", "Here you go: {} Hope it helps.", "<think>{{\"tags\": []}}</think>{}",
     "<think>reasoning {}", "</think>{}", "{}" + "}" * 3, "[" * 40 + "{}", "{}\n<think>"]
)  # fmt: skip
mutations = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list('[]{}",:<>/\\\n ') + ["<think>", "²"])),
                     max_size=6)  # fmt: skip


def _mutate(text: str, edits: list[tuple[int, str]]) -> str:
    for at, piece in edits:
        at %= len(text) + 1
        text = text[:at] + piece + text[at:]
    return text


hostile_answers = (
    st.text(max_size=400)
    | json_values.map(json.dumps)
    | st.builds(lambda wrap, body: wrap.replace("{}", body, 1), wrappers, answers)
    | st.builds(_mutate, answers, mutations)
    | st.builds(lambda unit, n: unit * n, st.sampled_from(["<think>", "{", "[", '{"tags":', "[{", '"', "```"]),
                st.integers(1, 3000))  # fmt: skip
)


@fuzz
@given(text=hostile_answers, frame_count=st.integers(0, 12))
def test_any_answer_is_read_into_valid_candidates_or_refused_as_malformed(text, frame_count):
    try:
        reading = read_answer(text, frame_count=frame_count)
    except MalformedAnswer as exc:
        assert str(exc) and len(str(exc)) < 500  # a short reason, whatever the answer quotes
        return
    for candidate in reading.candidates:
        assert candidate.name.strip() and (candidate.confidence is None or 0 <= candidate.confidence <= 1)
        if frame_count:
            assert all(1 <= frame <= frame_count for frame in candidate.frames)


@fuzz
@given(tags=st.lists(st.fixed_dictionaries({"name": st.from_regex(r"[A-Za-z][A-Za-z ]{0,20}[a-z]", fullmatch=True),
                                            "confidence": st.floats(0, 1)}), min_size=1, max_size=6),
       wrap=wrappers)  # fmt: skip
def test_a_well_formed_answer_is_read_back_whatever_surrounds_it(tags, wrap):
    body = json.dumps({"tags": tags})
    text = wrap.replace("{}", body, 1)

    reading = read_answer(text)

    assert {c.name for c in reading.candidates} == {t["name"].strip() for t in tags}


# --- the rules loader --------------------------------------------------------------------------

sections = st.sampled_from(["synonyms", "block", "allow", "thresholds", "add_parents", "markers", "Block List",
                            "unknown", "min confidence"])  # fmt: skip
rules_documents = st.dictionaries(sections, json_values, max_size=4).map(
    lambda doc: yaml.safe_dump(doc, allow_unicode=True)
)
yamlish = st.lists(st.sampled_from(list("abc: -[]{}&*!|>'\"#\n\t%@`,?") + ["<<", "- a: 1\n", "  ", "block:\n"]),
                   max_size=80).map("".join)


@fuzz
@given(text=rules_documents | yamlish | st.text(max_size=200))
def test_any_rules_file_is_rules_or_one_rules_error(text):
    try:
        parse_rules(text, source="fuzz.yml")
    except RulesError as exc:
        assert str(exc).startswith("fuzz.yml")


# --- settings ----------------------------------------------------------------------------------

setting_keys = st.sampled_from(sorted(manifest_settings()) + ["api_key", "gateway_url", "min_confidence",
                                                               "auth_scheme"])  # fmt: skip
secret_values = st.sampled_from([SECRET, f"{SECRET}\x00x", f"http://u:{SECRET}@h:1/v1", f"http://h:1/v1?k={SECRET}",
                                 f"{SECRET}\n", f" {SECRET} "])  # fmt: skip
secret_keys = ("apiKey", "api_key", "gatewayUrl", "gateway_url", "authScheme", "auth_scheme")


@fuzz
@given(values=st.dictionaries(setting_keys, json_values, max_size=8),
       secrets=st.dictionaries(st.sampled_from(secret_keys), secret_values, min_size=1, max_size=2),
       pasted_into=st.none() | setting_keys)  # fmt: skip
def test_any_settings_are_settings_or_one_error_that_echoes_no_secret(values, secrets, pasted_into):
    """Also when the same key is pasted into another field as well (``pasted_into``)."""
    if pasted_into is not None:
        values[pasted_into] = next(iter(secrets.values()))
    try:
        Settings.from_stash({**values, **secrets})
    except SettingsError as exc:
        assert SECRET not in str(exc)


# --- the stdin entry ---------------------------------------------------------------------------


def _stdin_payloads() -> st.SearchStrategy[str]:
    connection = st.fixed_dictionaries(
        {},
        optional={"Scheme": st.sampled_from(["http", "https", "ftp", ""]) | json_scalars,
                  "Host": st.sampled_from(["a..b", "a" * 64 + ".x", "", "::1", "exa mple", "[::1]", "127.0.0.1"])
                  | st.none() | st.integers() | st.booleans(),
                  "Port": st.integers(-5, 70000) | json_scalars, "Dir": st.sampled_from(["~nosuchuser/x", "a\x00b"]),
                  "PluginDir": st.sampled_from(["a\x00b"]) | json_scalars,
                  "ApiKey": st.just(SECRET), "SessionCookie": st.just({"Name": "session", "Value": SECRET})},
    )  # fmt: skip
    args = st.dictionaries(st.sampled_from(["mode", "limit", "dryRun", "dataDir", "hookContext"]),
                           json_values | st.sampled_from(["~nosuchuser/d", "d\x00", "tag_images", "1" * 5000]),
                           max_size=3)  # fmt: skip
    objects = st.fixed_dictionaries({"server_connection": connection | json_values}, optional={"args": args})
    return objects.map(json.dumps) | json_values.map(json.dumps) | st.text(max_size=200) | st.builds(
        lambda unit, n: unit * n, st.sampled_from(["[", "{", '{"a":', "\\u0000"]), st.integers(1, 5000)
    )


@fuzz
@given(text=_stdin_payloads())
def test_any_stdin_gets_exactly_one_json_answer_and_no_secret(text, tmp_path_factory):
    """Only hosts on this machine (or malformed ones) and a closed port: a fuzzed run never looks up a
    name or reaches a server; the paths it may create stay in the test's temporary folder."""
    out, err = io.StringIO(), io.StringIO()
    payload: Any
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("server_connection"), dict):
        payload["server_connection"].update({"Port": 9, "Host": payload["server_connection"].get("Host", "a..b")})
        connection = payload["server_connection"]
        stash_dir = connection.get("Dir")
        if not isinstance(stash_dir, str) or "\x00" not in stash_dir:  # a usable Dir is created: keep it in tmp
            connection["Dir"] = str(tmp_path_factory.getbasetemp() / "stash" / str(stash_dir).replace("/", "_"))
        if isinstance(payload.get("args"), dict) and "dataDir" in payload["args"]:
            payload["args"]["dataDir"] = _confined(payload["args"]["dataDir"], tmp_path_factory)
        text = json.dumps(payload)

    code = main(io.StringIO(text), out, err, [])

    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    answer = json.loads(lines[0])
    assert set(answer) == {"output", "error"} and code == (0 if answer["error"] is None else 1)
    assert SECRET not in out.getvalue() + err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert "unexpectedly" not in (answer["error"] or ""), answer["error"]


def _confined(value: Any, factory: Any) -> Any:
    """A fuzzed dataDir, kept inside the test's temporary folder unless it is one of the bad forms."""
    if isinstance(value, str) and (value.startswith("~") or "\x00" in value):
        return value
    return str(factory.getbasetemp() / "data" / str(value)[:40].replace("/", "_").replace("\x00", ""))
