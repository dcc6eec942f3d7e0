"""Answers as real vision models write them (``tests/answers/``, one case a file) are read into
the candidates each case expects; unusable ones say so instead of guessing."""

from __future__ import annotations

import json

import pytest
import responses

from ai_tagger.analyze.gateway.answer import MalformedAnswer, read_answer
from ai_tagger.analyze.gateway.base import GatewayConfig, TagRequest
from ai_tagger.analyze.providers.openai import OpenAIProvider
from ai_tagger.errors import GatewayError
from ai_tagger.settings import Settings
from tests.servers.model_server import ANSWERS_DIR, answer_case, answer_case_names

# The issue's table, row by row: each shape real servers send must have its case.
TABLE_ROWS = [
    "think_block_with_example_json",
    "percent_string_confidence",
    "negative_confidence_among_good",
    "empty_name_among_good",
    "names_only",
    "key_synonyms_tag_score",
    "key_synonyms_label_probability",
    "nested_result_tags",
    "trailing_comma",
    "single_quotes",
    "comment_in_json",
    "truncated_by_length",
    "zero_based_frames",
    "confidence_above_one",
]


def expected(case: dict) -> list[dict]:
    return [{"name": c["name"], "confidence": c["confidence"], "frames": list(c["frames"])} for c in case["expect"]]


def got(candidates) -> list[dict]:
    return [{"name": c.name, "confidence": c.confidence, "frames": list(c.frames)} for c in candidates]


def test_every_row_of_the_issue_table_has_a_case_and_every_case_names_its_source():
    assert set(TABLE_ROWS) <= set(answer_case_names())
    for name in answer_case_names():
        first = (ANSWERS_DIR / f"{name}.yml").read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), f"{name}: the first line must say which server/model family writes it"


@pytest.mark.parametrize("name", answer_case_names())
def test_corpus_answer_is_read_into_the_expected_candidates(name):
    case = answer_case(name)
    if case["expect"] == "unusable":
        with pytest.raises(MalformedAnswer):
            read_answer(case["content"], frame_count=case.get("frames", 0))
        return
    reading = read_answer(case["content"], frame_count=case.get("frames", 0))
    assert got(reading.candidates) == expected(case)
    assert reading.zero_based == case.get("zero_based", False)


def test_each_dropped_tag_gets_one_note_saying_why():
    case = answer_case("negative_confidence_among_good")
    notes = read_answer(case["content"], frame_count=1).notes
    [dropped] = [n for n in notes if n.startswith("dropped tag")]
    assert "Snow" in dropped and "greater than or equal to 0" in dropped


def test_all_tags_bad_is_unusable_and_names_the_first_reason():
    with pytest.raises(MalformedAnswer, match="less than or equal to 1"):
        read_answer('{"tags": [{"name": "Cup", "confidence": 1.7}]}')


@pytest.mark.parametrize("text", ["I see [a dog] on the beach.", "No JSON here {just text}", "Done. [REDACTED]"])
def test_prose_with_brackets_is_not_repaired_into_tags(text):
    with pytest.raises(MalformedAnswer):
        read_answer(text)


def test_citations_in_range_without_zero_are_not_shifted():
    reading = read_answer('{"tags": [{"name": "A", "confidence": 0.5, "frames": [1]}]}', frame_count=2)
    assert not reading.zero_based and reading.candidates[0].frames == (1,)


BASE = "http://gateway.test/v1"
REQUEST = TagRequest(kind="image", pictures=[b"\xff\xd8fake"])


def provider(**extra) -> OpenAIProvider:
    settings = Settings.from_stash({"gatewayUrl": BASE, "model": "m", **extra})
    created = OpenAIProvider(GatewayConfig.from_settings(settings))
    created.http._sleep = lambda seconds: None
    return created


def completion(case: dict) -> dict:
    message = {"role": "assistant", "content": case["content"]}
    if case.get("reasoning"):
        message[case.get("reasoning_field", "reasoning_content")] = case["reasoning"]
    choice = {"message": message, "finish_reason": case.get("finish_reason", "stop")}
    return {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def sent(call) -> dict:
    return json.loads(call.request.body)


@responses.activate
def test_every_request_sends_max_tokens_sized_for_max_tags_per_item():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("bare_list")))
    provider(maxTagsPerItem=20).describe(REQUEST)
    provider(maxAnswerTokens=900).describe(REQUEST)
    assert [sent(c)["max_tokens"] for c in responses.calls] == [1024 + 64 * 20, 900]
    assert not {"think", "reasoning_effort", "chat_template_kwargs"} & set(sent(responses.calls[0]))


@responses.activate
def test_reasoning_fields_are_never_read_as_the_answer():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("reasoning_content_field")))
    answer = provider().describe(REQUEST)
    assert [c.name for c in answer.candidates] == ["Forest"] and answer.calls == 1


@responses.activate
def test_reasoning_that_uses_up_max_tokens_is_asked_again_with_twice_as_many():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("reasoning_exhausted_empty_content")))
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("bare_list")))
    answer = provider(maxAnswerTokens=1000).describe(REQUEST)
    assert [sent(c)["max_tokens"] for c in responses.calls] == [1000, 2000]
    assert [c.name for c in answer.candidates] == ["Lake"] and answer.calls == 2


@responses.activate
def test_truncation_twice_fails_the_item_naming_the_token_setting():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("reasoning_exhausted_empty_content")))
    with pytest.raises(GatewayError, match="maxAnswerTokens"):
        provider().describe(REQUEST)
    assert len(responses.calls) == 2


@responses.activate
def test_cut_answer_is_asked_again_with_more_tokens_and_its_complete_tags_kept_if_cut_again():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("truncated_by_length")))
    answer = provider(maxAnswerTokens=800).describe(REQUEST)
    assert [sent(c)["max_tokens"] for c in responses.calls] == [800, 1600]
    assert [c.name for c in answer.candidates] == ["dog"] and answer.calls == 2
    assert [n.level for n in answer.notes if "token limit" in n.text or "cut too" in n.text] == ["warning", "warning"]


@responses.activate
def test_cut_answer_is_replaced_by_the_complete_second_one():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("truncated_by_length")))
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("think_block_with_example_json")))
    answer = provider().describe(TagRequest(kind="scene", pictures=[b"a", b"b"]))
    assert [c.name for c in answer.candidates] == ["Dog", "Beach"]
    assert "could not be read" not in responses.calls[1].request.body.decode()


@responses.activate
def test_zero_based_frames_are_noted_once_per_run():
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("zero_based_frames")))
    shared = provider()
    request = TagRequest(kind="scene", pictures=[b"a", b"b"])
    first, second = shared.describe(request), shared.describe(request)
    assert first.candidates[0].frames == (1, 2)
    assert sum("from 0" in n.text for n in first.notes + second.notes) == 1


@responses.activate
def test_answer_only_in_the_reasoning_field_fails_naming_the_thinking_switch():
    only_reasoning = {"content": "", "reasoning_field": "reasoning", "reasoning": '{"tags": ["Dog"]}'}
    responses.post(f"{BASE}/chat/completions", json=completion(only_reasoning))
    with pytest.raises(GatewayError, match="turn its thinking off"):
        provider().describe(REQUEST)
    assert len(responses.calls) == 2


@responses.activate
def test_server_refusing_max_tokens_is_asked_with_max_completion_tokens():
    responses.post(
        f"{BASE}/chat/completions",
        status=400,
        json={"error": {"message": "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."}},
    )
    responses.post(f"{BASE}/chat/completions", json=completion(answer_case("bare_list")))
    provider(maxAnswerTokens=700).describe(REQUEST)
    retried = sent(responses.calls[1])
    assert retried["max_completion_tokens"] == 700 and "max_tokens" not in retried
