"""End to end through a real LiteLLM proxy: plugin -> LiteLLM -> pixel-reading model.

The proxy (see tests/litellm_gateway.py) is started once per session; each test gets its own
Stash whose plugin settings point at the proxy with its master key, and the upstream model is
reset around each test. Tests that need upstream misbehaviour set it on ``upstream``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests import media
from tests.conftest import run_plugin
from tests.litellm_gateway import (  # noqa: F401 - fixtures used by name
    MODEL_NAME,
    LiteLLMProxy,
    configure_proxy,
    litellm_proxy,
    litellm_upstream,
    upstream,
)
from tests.servers.stash_server import FakeStash

pytestmark = pytest.mark.litellm


@pytest.fixture
def stash(litellm_proxy: LiteLLMProxy) -> Iterator[FakeStash]:
    """A Stash whose plugin settings send everything through the proxy (overrides conftest's)."""
    with FakeStash() as server:
        configure_proxy(server, litellm_proxy)
        yield server


def test_tags_land_through_litellm(stash, upstream, tmp_path, red_video):
    scene = stash.add_scene(red_video)
    image = stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 0, run.stderr
    assert run.error is None
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}
    assert stash.tags_of_image(image) == {"Water", "AI_Tagged"}
    assert run.output["tagged"] == 2 and run.output["errored"] == 0
    assert upstream.completion_count == 2


def test_litellm_forwards_images_and_response_format_and_returns_usage(stash, upstream, tmp_path):
    stash.add_image(media.make_image(tmp_path / "green.png", "green"))

    run = run_plugin(stash, {"mode": "tag_images"})

    [request] = upstream.requests
    assert request["model"] == MODEL_NAME
    assert request["n_images"] == 1  # the image_url data URI reached the model intact
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["tags"]
    assert request["status"] == 200
    tokens = run.output["tokens"]
    assert tokens["prompt"] > 85 and tokens["completion"] > 0  # 85: one image's base cost
    assert tokens["total"] == tokens["prompt"] + tokens["completion"]


def test_wrong_key_fails_preflight_and_marks_nothing(stash, upstream, litellm_proxy, red_video):
    stash.add_scene(red_video)
    configure_proxy(stash, litellm_proxy, apiKey="sk-not-the-master-key")
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "apiKey" in run.error, run.error
    assert "sk-not-the-master-key" not in run.stdout + run.stderr
    assert stash.mutation_count == 0
    assert upstream.completion_count == 0


def test_missing_key_fails_preflight_and_marks_nothing(stash, upstream, litellm_proxy, red_video):
    stash.add_scene(red_video)
    configure_proxy(stash, litellm_proxy, apiKey="")
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "apiKey" in run.error and "401" in run.error, run.error
    assert stash.mutation_count == 0
    assert upstream.completion_count == 0


def test_model_the_proxy_does_not_serve_is_named_before_any_write(stash, upstream, litellm_proxy, red_video):
    stash.add_scene(red_video)
    configure_proxy(stash, litellm_proxy, model="gpt-nope")
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "gpt-nope" in run.error and MODEL_NAME in run.error, run.error
    assert stash.mutation_count == 0
    assert upstream.completion_count == 0


def test_litellm_passes_upstream_429_through_with_its_retry_after(litellm_proxy, upstream):
    """What the plugin's retry logic relies on: with num_retries 0, LiteLLM answers 429 itself
    and forwards the upstream's Retry-After only as ``llm_provider-retry-after``."""
    upstream.fail_next = [429, 500]
    upstream.retry_after = 7
    headers = {"Authorization": f"Bearer {litellm_proxy.master_key}"}
    body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "hello"}]}

    busy = requests.post(f"{litellm_proxy.base_url}/chat/completions", json=body, headers=headers, timeout=30)
    broken = requests.post(f"{litellm_proxy.base_url}/chat/completions", json=body, headers=headers, timeout=30)

    assert busy.status_code == 429
    assert busy.headers.get("llm_provider-retry-after") == "7"
    assert broken.status_code == 500
    assert [r["status"] for r in upstream.requests] == [429, 500]  # LiteLLM itself did not retry


def test_upstream_429_and_500_are_retried_by_the_plugin(stash, upstream, red_video):
    scene = stash.add_scene(red_video)
    upstream.fail_next = [429, 500]
    upstream.retry_after = 1.5  # longer than the plugin's own first backoff: shows the header was used

    started = time.monotonic()
    run = run_plugin(stash, {"mode": "tag_scenes"})
    elapsed = time.monotonic() - started

    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}, run.stderr
    assert run.output["errored"] == 0
    assert [r["status"] for r in upstream.requests] == [429, 500, 200]
    assert elapsed >= 1.5


def test_upstream_failing_for_good_marks_only_that_item_errored(stash, upstream, tmp_path):
    bad = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    # 503 carries a short Retry-After (via LiteLLM's llm_provider-retry-after), so the plugin's
    # first try and its 4 retries take no backoff time.
    upstream.fail_next = [503] * 5

    run = run_plugin(stash, {"mode": "tag_images"})

    assert run.returncode == 0, run.stderr
    assert stash.tags_of_image(bad) == {"AI_Errored"}
    assert run.output["errored"] == 1
    assert [r["status"] for r in upstream.requests] == [503] * 5
