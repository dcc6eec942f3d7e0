"""Every model an item needs through one real LiteLLM proxy: vision (chat) and Whisper (transcriptions).

The proxy's config is the one docs/descriptions-and-speech.md shows: a chat deployment and an
``audio_transcription`` deployment (``model_info: {mode: audio_transcription}``) on one master
key, both routed to the OpenAI-compatible test model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import PLUGIN_ID, run_plugin
from tests.litellm_gateway import MODEL_NAME, LiteLLMProxy, proxy_settings, venv_or_skip
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash
from tests.speech_media import SENTENCE, espeak, make_talking_video

pytestmark = [
    pytest.mark.litellm,
    pytest.mark.skipif(espeak() is None, reason="espeak-ng is not installed (.ci/setup installs it)"),
]

ASR = "whisper-1"


def whisper_deployment(upstream: FakeModel) -> dict:
    return {
        "model_name": ASR,
        "litellm_params": {"model": f"openai/{ASR}", "api_base": upstream.base_url, "api_key": upstream.api_key},
        "model_info": {"mode": "audio_transcription"},
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeModel]:
    with FakeModel(models=[MODEL_NAME, ASR], retry_after=0.05, transcript=SENTENCE) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: FakeModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    with LiteLLMProxy(upstream, venv=venv_or_skip(), workdir=tmp_path_factory.mktemp("litellm-speech"),
                      extra_deployments=[whisper_deployment(upstream)]) as running:  # fmt: skip
        yield running


@pytest.fixture
def stash(proxy: LiteLLMProxy, upstream: FakeModel) -> Iterator[FakeStash]:
    upstream.reset()
    upstream.fail_next = []
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, proxy_settings(proxy, transcribeAudio=True, asrModel=ASR))
        yield server


def test_vision_and_whisper_route_through_one_litellm_gateway(stash, upstream, tmp_path):
    scene = stash.add_scene(make_talking_video(tmp_path / "talking.mp4", ["red", "red"]))

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    [upload] = upstream.transcriptions
    assert upload["model"] == ASR and upload["status"] == 200 and upload["bytes"] > 100_000
    [chat] = upstream.requests
    assert chat["model"] == MODEL_NAME and SENTENCE in chat["text"]
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}


def test_preflight_through_litellm_names_the_speech_model_it_does_not_route(stash, proxy, upstream, tmp_path):
    stash.add_scene(make_talking_video(tmp_path / "talking.mp4", ["red", "red"]))
    stash.set_plugin_settings(PLUGIN_ID, proxy_settings(proxy, transcribeAudio=True, asrModel="whisper-large"))

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.returncode == 1 and "'whisper-large' (asrModel)" in run.error
    assert stash.mutation_count == 0 and upstream.transcriptions == [] and upstream.requests == []
