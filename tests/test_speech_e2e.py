"""Speech end to end (issue 22): the plugin run as Stash runs it, a transcript per scene with sound in its
tag request, nothing sent for images or silent videos, failures degrading to frames alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import media
from tests.conftest import PLUGIN_ID, gateway_settings, run_plugin
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash
from tests.speech_media import SENTENCE, espeak, make_talking_video

pytestmark = pytest.mark.skipif(espeak() is None, reason="espeak-ng is not installed (.ci/setup installs it)")

ASR = "whisper-1"


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel(models=["vision-test", ASR], retry_after=0.05, transcript=SENTENCE) as server:
        yield server


@pytest.fixture
def stash(model: FakeModel) -> Iterator[FakeStash]:
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, gateway_settings(model, transcribeAudio=True, asrModel=ASR))
        yield server


@pytest.fixture
def library(stash: FakeStash, tmp_path):
    """A scene that speaks, a silent scene and an image."""
    talking = stash.add_scene(make_talking_video(tmp_path / "talking.mp4", ["red", "red", "red"]))
    silent = stash.add_scene(media.make_video(tmp_path / "silent.mp4", ["green", "green"]))
    image = stash.add_image(media.make_image(tmp_path / "blue.png", "blue"))
    return talking, silent, image


def test_the_transcript_of_a_scene_with_sound_reaches_its_tag_request(stash, model, library):
    talking, silent, image = library

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.error is None, run.stderr
    [upload] = model.transcriptions
    assert upload["model"] == ASR and (upload["sample_rate"], upload["channels"]) == (16000, 1)
    spoken = [r for r in model.requests if SENTENCE in r["text"]]
    assert len(spoken) == 1 and spoken[0]["n_images"] >= 1
    assert len(model.requests) == 3  # one chat request per item, speech or not
    assert stash.tags_of_scene(talking) == {"Red", "AI_Tagged"}
    assert stash.tags_of_scene(silent) == {"Outdoors", "AI_Tagged"}
    assert stash.tags_of_image(image) == {"Water", "AI_Tagged"}
    rows = {(row["kind"], row["id"]): row for row in run.output["items"]}
    assert rows[("scene", str(talking))]["speech"].startswith("The quick brown fox")
    assert "speech" not in rows[("scene", str(silent))] and "speech" not in rows[("image", str(image))]
    assert any("The quick brown fox" in line for line in run.log_lines())


def test_a_retuned_run_reuses_the_cached_transcript(stash, model, library):
    run_plugin(stash, {"mode": "preview"})
    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.error is None, run.stderr
    assert len(model.transcriptions) == 1


def test_a_failed_transcription_tags_from_frames_alone_and_never_errors_the_scene(stash, model, library):
    talking, _, _ = library
    model.fail_next = [400]  # not retried: the transcription fails at once

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    assert stash.tags_of_scene(talking) == {"Red", "AI_Tagged"}
    assert run.output["errored"] == 0
    assert any("tagging from its frames alone" in line for line in run.log_lines("w"))
    assert not any(SENTENCE in r["text"] for r in model.requests)


def test_preflight_fails_fast_naming_the_speech_model_the_gateway_lacks(stash, model, library):
    model.models = ["vision-test"]

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1 and "asrModel" in run.error and ASR in run.error
    assert stash.mutation_count == 0 and model.transcriptions == [] and model.requests == []



def test_asr_model_local_hears_the_scene_offline_and_its_words_reach_the_tag_request(stash, model, library):
    talking, _, _ = library
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, transcribeAudio=True, asrModel="local"))

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    assert model.transcriptions == []  # nothing uploaded: heard in process
    [spoken] = [r for r in model.requests if "transcript" in r["text"]]
    heard = spoken["text"].lower()
    assert all(word in heard for word in ("quick", "lazy", "beach", "water")), spoken["text"]
    rows = {(row["kind"], row["id"]): row for row in run.output["items"]}
    assert "quick" in rows[("scene", str(talking))]["speech"].lower()
    assert run.output["gateway_calls"] == 2  # the two scenes' tag requests; offline speech is no gateway call
