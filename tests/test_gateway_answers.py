"""Model answers are read however the server wraps them; HTTP edge cases map to clear errors."""

from __future__ import annotations

import json
import threading

import pytest
import responses

from ai_tagger.analyze.gateway.answer import MalformedAnswer, read_answer
from ai_tagger.analyze.gateway.base import GatewayConfig, TagRequest
from ai_tagger.analyze.providers.openai import OpenAIProvider
from ai_tagger.errors import GatewayError, GatewayFatal
from ai_tagger.retry import retry_after
from ai_tagger.settings import Settings
from tests import media

ANSWER = {"tags": [{"name": "Dog", "confidence": 0.8, "frames": [1]}]}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(ANSWER),  # response_format honoured
        "```json\n" + json.dumps(ANSWER) + "\n```",  # Ollama / llama.cpp code fence
        "Sure! Here are the tags: " + json.dumps(ANSWER) + " Hope this helps.",  # prose around it
        json.dumps(ANSWER["tags"]),  # a bare list of tags
        '{"tags": [{"name": "Dog", "confidence": 80, "frames": [1]}]}',  # a percentage
    ],
)
def test_answers_are_read_in_any_wrapping(text):
    [candidate] = read_answer(text).candidates
    assert candidate.name == "Dog" and candidate.confidence == 0.8


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty answer
        '{"tags": [{"name": "x", "confidence": "very"',  # truncated JSON
        '{"labels": ["dog"]}',  # the wrong shape
        "I cannot help with that.",
    ],
)
def test_unreadable_answers_are_malformed(text):
    with pytest.raises(MalformedAnswer):
        read_answer(text)


def test_retry_after_accepts_seconds_and_litellm_header():
    assert retry_after({"retry-after": "2"}) == 2
    assert retry_after({"llm_provider-retry-after": "1.5"}) == 1.5
    assert retry_after({}) is None


BASE = "http://gateway.test/v1"


def provider(**extra) -> OpenAIProvider:
    settings = Settings.from_stash({"gatewayUrl": BASE, "model": "m", "apiKey": "sk-k", **extra})
    created = OpenAIProvider(GatewayConfig.from_settings(settings))
    created.http._sleep = lambda seconds: None
    return created


def completion(content: str, **extra) -> dict:
    return {"choices": [{"message": {"content": content}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


REQUEST = TagRequest(kind="image", pictures=[b"\xff\xd8fake"])


@responses.activate
def test_401_is_fatal_and_names_the_key_setting():
    responses.get(f"{BASE}/models", status=401, json={"error": {"message": "bad key"}})
    with pytest.raises(GatewayFatal, match="apiKey"):
        provider().preflight()


@responses.activate
def test_unknown_model_is_fatal_and_lists_what_is_served():
    responses.get(f"{BASE}/models", json={"data": [{"id": "llava"}, {"id": "qwen"}]})
    with pytest.raises(GatewayFatal, match="llava"):
        provider().preflight()


@responses.activate
def test_404_model_on_completion_is_fatal():
    responses.post(f"{BASE}/chat/completions", status=404, json={"error": {"message": "model m not found"}})
    with pytest.raises(GatewayFatal, match="not found"):
        provider().describe(REQUEST)


@responses.activate
def test_429_then_500_are_retried():
    responses.post(f"{BASE}/chat/completions", status=429, headers={"Retry-After": "1"})
    responses.post(f"{BASE}/chat/completions", status=500)
    responses.post(f"{BASE}/chat/completions", json=completion(json.dumps(ANSWER)))
    answer = provider().describe(REQUEST)
    assert [c.name for c in answer.candidates] == ["Dog"]
    assert len(responses.calls) == 3


@responses.activate
def test_persistent_500_fails_the_item_not_the_run():
    for _ in range(5):
        responses.post(f"{BASE}/chat/completions", status=500, json={"error": {"message": "boom"}})
    with pytest.raises(GatewayError) as caught:
        provider().describe(REQUEST)
    assert not isinstance(caught.value, GatewayFatal)


def test_timeout_is_retried(model, tmp_path):
    """A read timeout is retried by the transport's policy (a real server: ``responses`` skips urllib3)."""
    model.latency = 1.5  # the first request outlasts the 1 s timeout; the retry is answered at once
    threading.Timer(0.3, setattr, (model, "latency", 0.0)).start()
    settings = Settings.from_stash(
        {"gatewayUrl": model.base_url, "model": model.models[0], "apiKey": model.api_key, "requestTimeout": 1}
    )
    picture = media.make_image(tmp_path / "red.jpg", "red").read_bytes()

    provider = OpenAIProvider(GatewayConfig.from_settings(settings))

    answer = provider.describe(TagRequest(kind="image", pictures=[picture]))

    assert [c.name for c in answer.candidates] == ["Red"]
    assert model.completion_count == 2


@responses.activate
def test_connection_refused_is_fatal_with_the_url_to_check():
    with pytest.raises(GatewayFatal, match="gatewayUrl"):
        provider().preflight()


@responses.activate
def test_server_rejecting_response_format_is_asked_again_without_it():
    responses.post(f"{BASE}/chat/completions", status=400, json={"error": {"message": "response_format not supported"}})
    responses.post(f"{BASE}/chat/completions", json=completion(json.dumps(ANSWER)))
    created = provider()
    assert created.describe(REQUEST).candidates[0].name == "Dog"
    assert "response_format" not in json.loads(responses.calls[1].request.body)


@responses.activate
def test_malformed_answer_is_retried_once_with_a_stricter_instruction():
    responses.post(f"{BASE}/chat/completions", json=completion("no idea"))
    responses.post(f"{BASE}/chat/completions", json=completion(json.dumps(ANSWER)))
    answer = provider().describe(REQUEST)
    assert answer.calls == 2 and answer.usage.total_tokens == 30
    assert "could not be read" in responses.calls[1].request.body.decode()


@responses.activate
def test_raw_key_auth_scheme_for_apipark():
    responses.post(f"{BASE}/chat/completions", json=completion(json.dumps(ANSWER)))
    provider(authScheme="none").describe(REQUEST)
    assert responses.calls[0].request.headers["Authorization"] == "sk-k"
