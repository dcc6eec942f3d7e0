"""What fuzzing found (issue 27), each reproducer as a named test: one bad answer costs its item only,
bad paths and hosts get one clear error naming the field, secrets stay out of every message.

The run-stopping answers go through the plugin as Stash runs it, against the bundled Stash and model
servers: the item whose picture draws the bad answer is ``AI_Errored`` with a short reason, the
others are tagged, and the run ends without an error.
"""

from __future__ import annotations

import json
import time

import pytest

from ai_tagger.analyze.gateway.answer import MAX_ANSWER_CHARS, MalformedAnswer, read_answer
from tests import media
from tests.conftest import configure, run_plugin

RUN_STOPPERS = {
    "superscript_frame_digit": '{"tags": [{"name": "Red", "confidence": 0.9, "frames": ["\u00b2"]}]}',
    "frame_string_of_5000_digits": '{"tags": [{"name": "Red", "confidence": 0.9, "frames": ["' + "1" * 5000 + '"]}]}',
    "frame_number_of_5000_digits": '{"tags": [{"name": "Red", "confidence": 0.9, "frames": [' + "1" * 5000 + "]}]}",
    "a_thousand_open_brackets": "[" * 1000,
    "a_thousand_nested_objects": '{"a": ' * 1000,
    "answer_over_the_size_cap": '{"tags": [' + ",".join(['{"name": "Red", "confidence": 0.9}'] * 10_000) + "]}",
}


@pytest.mark.parametrize("name", sorted(RUN_STOPPERS))
def test_an_answer_that_stopped_the_run_costs_only_its_item(stash, model, tmp_path, name):
    red = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    blue = stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))
    model.malformed_colour = "red"
    model.malformed_content = RUN_STOPPERS[name]
    configure(stash, model, concurrency=1)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert run.error is None, run.stderr[-2000:]
    assert "unexpectedly" not in run.stdout + run.stderr
    assert stash.tags_of_image(blue) == {"Water", "AI_Tagged"}  # the palette names blue "Water"
    if name in ("superscript_frame_digit", "frame_string_of_5000_digits", "frame_number_of_5000_digits"):
        assert stash.tags_of_image(red) == {"Red", "AI_Tagged"}  # the odd frame is dropped, the tag kept
        return
    assert stash.tags_of_image(red) == {"AI_Errored"}
    [errored] = [item for item in run.output["items"] if item["status"] == "errored"]
    assert errored["id"] == str(red) and len(errored["error"]) < 300
    assert run.output["errored"] == 1


@pytest.mark.parametrize(
    "text",
    ["<think>" * 10_000, "<think>" * 36_000, "{" * MAX_ANSWER_CHARS, "[" * MAX_ANSWER_CHARS,
     "[" * (MAX_ANSWER_CHARS // 2) + "]" * (MAX_ANSWER_CHARS // 2), '{"tags":' * 32_000, "{}" * 128_000],
    ids=["think_10k", "think_at_cap", "braces_at_cap", "brackets_at_cap", "balanced_at_cap", "tags_objects",
         "empty_objects"],
)  # fmt: skip
def test_reading_a_hostile_answer_ends_with_a_reason_not_a_crash(text):
    """Speed is the benchmark's business (benchmarks/answers.py); here: a clean MalformedAnswer."""
    with pytest.raises(MalformedAnswer):
        read_answer(text, frame_count=3)


def test_an_answer_over_the_cap_is_refused_before_reading():
    text = "<think>" * (1_000_000 // 7)

    started = time.perf_counter()
    with pytest.raises(MalformedAnswer, match="over the 256 KB"):
        read_answer(text)
    assert time.perf_counter() - started < 5  # not a timing target: 'never read' means no parse at all


def test_json_after_a_stray_quote_in_prose_is_still_read_strictly():
    reading = read_answer('It is 5" tall, so: {"tags": [{"name": "Tall", "confidence": 0.8}]}')

    assert [c.name for c in reading.candidates] == ["Tall"] and not reading.repaired


def test_strings_with_brackets_and_escapes_are_read_whole():
    reading = read_answer('Answer: {"tags": [{"name": "a}b \\" ]{", "confidence": 0.8}]} done')

    assert [c.name for c in reading.candidates] == ['a}b " ]{']


def test_a_reasoning_block_per_tag_name_is_dropped_whatever_the_case():
    text = '<THINK>{"tags": [{"name": "No", "confidence": 1}]}</think><reasoning>x</reasoning>{"tags": ["Yes"]}'

    assert [c.name for c in read_answer(text).candidates] == ["Yes"]


def test_answers_json_is_exactly_one_line_even_for_a_run_stopper(stash, model, tmp_path):
    stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    model.malformed_colour = "red"
    model.malformed_content = "[" * 1000

    run = run_plugin(stash, {"mode": "tag_images"})

    assert len(run.stdout.splitlines()) == 1 and set(json.loads(run.stdout)) == {"output", "error"}


# --- bad hosts and paths: one clear error naming the field -------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "named"),
    [("Host", "a..b", "server_connection.Host"), ("Host", "a" * 64 + ".example", "server_connection.Host"),
     ("Dir", "/tmp/a\x00b", "server_connection.Dir")],
    ids=["empty_label", "64_character_label", "nul_in_dir"],
)  # fmt: skip
def test_a_bad_server_connection_is_one_error_naming_the_field(stash, where, value, named):
    connection = {**stash.server_connection(), where: value}

    run = run_plugin(stash, {"mode": "tag_images"}, connection=connection)

    assert run.returncode == 1 and named in run.error
    assert "unexpectedly" not in run.error and stash.mutation_count == 0


@pytest.mark.parametrize("value", ["~nosuchuser/data", "/tmp/a\x00b"], ids=["unknown_user", "nul"])
def test_a_bad_data_dir_is_one_error_naming_the_field(stash, value):
    run = run_plugin(stash, {"mode": "tag_images", "dataDir": value})

    assert run.returncode == 1 and run.error.startswith("dataDir: ")
    assert "unexpectedly" not in run.error and stash.mutation_count == 0


@pytest.mark.parametrize("value", ["~nosuchuser/rules.yml", "rules\x00.yml"], ids=["unknown_user", "nul"])
def test_a_bad_rules_file_path_is_one_error_naming_the_setting(stash, model, tmp_path, value):
    stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    configure(stash, model, rulesFile=value)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert run.returncode == 1 and run.error.startswith("rulesFile: ")
    assert stash.mutation_count == 0


@pytest.mark.parametrize(
    "settings",
    [{"api_key": "sk-SECRET\x00SECRET"}, {"apiKey": "sk-SECRET\x00SECRET"},
     {"gateway_url": "http://user:sk-SECRET@host:4000/v1"}, {"gatewayUrl": "http://user:sk-SECRET@host:4000/v1"}],
    ids=["api_key", "apiKey", "gateway_url", "gatewayUrl"],
)  # fmt: skip
def test_a_settings_error_never_echoes_a_secret_whatever_the_spelling(settings):
    from ai_tagger.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as raised:
        Settings.from_stash(settings)

    assert "SECRET" not in str(raised.value)
    assert next(iter(settings)) in str(raised.value)


def test_a_snake_case_secret_never_reaches_the_output_of_a_run(stash, model):
    stash.set_plugin_settings("ai_tagger", {"api_key": "sk-SECRET\x00SECRET", "gateway_url": model.base_url,
                                            "model": model.models[0]})  # fmt: skip

    run = run_plugin(stash, {"mode": "tag_images"})

    assert run.returncode == 1 and "api_key" in run.error
    assert "SECRET" not in run.stdout + run.stderr


# --- found by the property tests at a larger example count ---------------------------------------


def test_an_answer_followed_by_an_unclosed_reasoning_tag_is_still_read():
    reading = read_answer('{"tags": [{"name": "Aa", "confidence": 0.5}]}\n<think>')

    assert [c.name for c in reading.candidates] == ["Aa"]


def test_the_reason_for_a_malformed_answer_stays_short_whatever_it_quotes():
    text = "00000000[{" + "0" * 65 + ":A\x1f\x1f\x1f\x1f\x1f\x1b]" + "\U00018d09" * 200

    with pytest.raises(MalformedAnswer) as raised:
        read_answer(text)

    assert len(str(raised.value)) < 500


@pytest.mark.parametrize("key", ["sk-SECRET\x00x", "sk-SECRET\u00e9", "sk-SECRET"])
def test_a_key_pasted_into_another_field_too_is_not_echoed_by_that_field(key):
    from ai_tagger.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as raised:
        Settings.from_stash({"apiKey": key, "concurrency": key})

    assert "SECRET" not in str(raised.value) and "concurrency: must be a whole number" in str(raised.value)


# --- a gateway whose completion is not shaped as expected: that item only ------------------------

GOOD = '{"tags": [{"name": "Dog", "confidence": 0.9}]}'
ODD_COMPLETIONS = {
    "usage_is_a_list": ({"choices": [{"message": {"content": GOOD}}], "usage": [1, 2]}, True),
    "usage_counts_are_words": ({"choices": [{"message": {"content": GOOD}}],
                                "usage": {"prompt_tokens": "many", "completion_tokens": -1}}, True),  # fmt: skip
    "choices_is_a_dict": ({"choices": {"0": {}}}, False),
    "message_is_a_string": ({"choices": [{"message": GOOD}]}, False),
    "choice_is_a_list": ({"choices": [[GOOD]]}, False),
    "content_parts_of_junk": ({"choices": [{"message": {"content": [1, None, {"text": 5}]}}]}, False),
    "nested_too_deeply": (None, False),
}


@pytest.mark.parametrize("name", sorted(ODD_COMPLETIONS))
def test_an_odd_completion_is_read_or_fails_its_item_only(name):
    import responses

    from ai_tagger.errors import ItemError
    from tests.test_gateway_answers import BASE, REQUEST, provider

    body, usable = ODD_COMPLETIONS[name]
    with responses.RequestsMock() as mocked:
        text = json.dumps(body) if body is not None else "[" * 100_000
        mocked.post(f"{BASE}/chat/completions", body=text, content_type="application/json")
        if usable:
            assert [c.name for c in provider().describe(REQUEST).candidates] == ["Dog"]
        else:
            with pytest.raises(ItemError):
                provider().describe(REQUEST)
