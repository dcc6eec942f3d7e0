"""Per-capability models on one gateway (issue 22): vision (`model`), speech (`asrModel`) and
descriptions (`descriptionModel`) are names the same gateway serves, each checked before any item.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import media
from tests.conftest import PLUGIN_ID, gateway_settings, run_plugin
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash
from tests.speech_media import SENTENCE, espeak, make_talking_video

RED = "The pictures are mostly red."


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel(models=["vision-test", "describer", "whisper-1"], transcript=SENTENCE) as server:
        yield server


@pytest.fixture
def stash(model: FakeModel) -> Iterator[FakeStash]:
    with FakeStash() as server:
        yield server


def configure(stash: FakeStash, model: FakeModel, **settings: object) -> None:
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, writeDetails=True, **settings))


def details(stash: FakeStash, scene_id: str) -> str | None:
    with stash.lock:
        return stash.scenes[int(scene_id)]["details"]


def test_without_a_description_model_the_vision_request_also_describes(stash, model, tmp_path):
    scene = stash.add_scene(media.make_video(tmp_path / "red.mp4", ["red"], seconds_per_colour=4))
    configure(stash, model)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    assert [r["model"] for r in model.requests] == ["vision-test"]
    assert details(stash, scene) == RED


@pytest.mark.skipif(espeak() is None, reason="espeak-ng is not installed (.ci/setup installs it)")
def test_a_description_model_describes_from_the_same_frames_and_transcript(stash, model, tmp_path):
    scene = stash.add_scene(make_talking_video(tmp_path / "talking.mp4", ["red", "red"]))
    configure(stash, model, descriptionModel="describer", transcribeAudio=True, asrModel="whisper-1")

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    vision, describer = sorted(model.requests, key=lambda r: r["model"] != "vision-test")
    assert (vision["model"], describer["model"]) == ("vision-test", "describer")
    assert '"description"' not in vision["text"] and "description" in describer["response_format"]["json_schema"][
        "schema"]["properties"]
    assert SENTENCE in vision["text"] and SENTENCE in describer["text"]
    assert vision["n_images"] == describer["n_images"]
    assert details(stash, scene) == RED
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}
    assert len(model.transcriptions) == 1


@pytest.mark.parametrize(
    ("setting", "value"),
    [("descriptionModel", "describer-xl"), ("asrModel", "whisper-9")],
)
def test_preflight_names_the_one_configured_model_the_gateway_does_not_serve(stash, model, tmp_path, setting, value):
    stash.add_scene(media.make_video(tmp_path / "red.mp4", ["red"], seconds_per_colour=4))
    configure(stash, model, **{"transcribeAudio": True, "asrModel": "whisper-1", setting: value})

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.returncode == 1 and f"'{value}' ({setting}) is not served" in run.error
    assert f"Fix '{setting}'" in run.error
    assert stash.mutation_count == 0 and model.requests == [] and model.transcriptions == []
