"""End to end: the plugin, run as Stash runs it, tags untagged scenes and images.

Every test here goes through real HTTP to a Stash-compatible GraphQL server and to a model
server whose answers come from the pixels it receives, with media made by ffmpeg and Pillow.
"""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from tests import media
from tests.conftest import configure, run_plugin


def bulk_updates(stash) -> list[dict]:
    return [v["input"] for op, v in stash.operations if op in ("BulkSceneUpdate", "BulkImageUpdate")]


def test_untagged_scene_and_image_get_tags_from_their_pixels(stash, model, tmp_path, red_video):
    scene = stash.add_scene(red_video)
    image = stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 0, run.stderr
    assert run.error is None
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}
    assert stash.tags_of_image(image) == {"Water", "AI_Tagged"}
    assert run.output["tagged"] == 2 and run.output["errored"] == 0


def test_only_untagged_items_are_selected(stash, model, red_video):
    mine = stash.add_tag("Favourite")
    tagged = stash.add_scene(red_video, tag_ids=[mine])
    untagged = stash.add_scene(red_video)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.output["processed"] == 1
    assert stash.tags_of_scene(tagged) == {"Favourite"}
    assert "AI_Tagged" in stash.tags_of_scene(untagged)
    assert model.completion_count == 1


def test_model_names_match_existing_tags_by_alias_and_case(stash, model, tmp_path, red_video):
    crimson = stash.add_tag("Crimson", aliases=["RED"])
    stash.add_tag("water")
    scene = stash.add_scene(red_video)
    image = stash.add_image(media.make_image(tmp_path / "blue.png", "blue"))

    run_plugin(stash, {"mode": "tag_untagged"})

    assert stash.tags_of_scene(scene) == {"Crimson", "AI_Tagged"}
    assert stash.tags_of_image(image) == {"water", "AI_Tagged"}
    created = [v["input"]["name"] for op, v in stash.operations if op == "TagCreate"]
    assert "Red" not in created and "Water" not in created
    assert stash.scene(scene)["tag_ids"] >= {crimson}  # the user's tag itself, not a new one named alike


def test_new_tags_are_created_once_under_the_ai_parent(stash, model, tmp_path):
    images = [stash.add_image(media.make_image(tmp_path / f"g{i}.jpg", "green")) for i in range(5)]
    configure(stash, model, concurrency=4)

    run = run_plugin(stash, {"mode": "tag_images"})

    creates = [v["input"] for op, v in stash.operations if op == "TagCreate"]
    assert [c["name"] for c in creates].count("Outdoors") == 1
    outdoors = stash.tag_by_name("Outdoors")
    parent = stash.tag_by_name("AI")
    assert [str(p) for p in outdoors["parent_ids"]] == [str(parent["id"])]
    assert outdoors["ignore_auto_tag"] is True
    assert all(stash.tags_of_image(i) == {"Outdoors", "AI_Tagged"} for i in images)
    assert "Outdoors" in run.output["created_tags"]


def test_threshold_and_cap_keep_the_most_confident_tags(stash, model, tmp_path):
    video = media.make_video(tmp_path / "four.mp4", ["red", "green", "blue", "yellow"], seconds_per_colour=2.5)
    scene = stash.add_scene(video)
    configure(stash, model, framesPerScene=4, minConfidence=38, maxTagsPerItem=2)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    # Each colour fills one frame in four: score = confidence * sqrt(1/4). Red .45 and green
    # .425 fill the cap of 2, blue .40 is over the cap, yellow .35 is under 38 %.
    assert stash.tags_of_scene(scene) == {"Red", "Outdoors", "AI_Tagged"}
    outcomes = {c["name"]: c["outcome"] for c in run.output["items"][0]["candidates"]}
    assert outcomes == {"Red": "create", "Outdoors": "create", "Water": "over cap", "Beach": "below threshold"}


def test_tag_below_threshold_is_not_applied_but_item_is_marked_tagged(stash, model, tmp_path):
    white = stash.add_image(media.make_image(tmp_path / "w.jpg", "white"))
    configure(stash, model, minConfidence=40)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(white) == {"AI_Tagged"}
    [item] = run.output["items"]
    assert item["candidates"][0]["outcome"] == "below threshold"


def test_writes_add_tags_and_status_in_one_mutation_per_item(stash, model, tmp_path, red_video):
    scene = stash.add_scene(red_video)
    image = stash.add_image(media.make_image(tmp_path / "b.jpg", "blue"))

    run_plugin(stash, {"mode": "tag_untagged"})

    updates = bulk_updates(stash)
    assert len(updates) == 2
    for update in updates:
        assert update["tag_ids"]["mode"] == "ADD"
        assert len(update["ids"]) == 1
    tagged_id = str(stash.tag_by_name("AI_Tagged")["id"])
    assert all(tagged_id in u["tag_ids"]["ids"] for u in updates)
    assert {u["ids"][0] for u in updates} == {scene, image}


def test_second_run_makes_no_gateway_calls(stash, model, tmp_path, red_video):
    stash.add_scene(red_video)
    stash.add_scene(media.make_corrupt(tmp_path / "broken.mp4"))
    stash.add_image(media.make_image(tmp_path / "b.jpg", "blue"))
    run_plugin(stash, {"mode": "tag_untagged"})
    calls = model.completion_count

    again = run_plugin(stash, {"mode": "tag_untagged"})

    assert again.returncode == 0
    assert again.output["processed"] == 0
    assert model.completion_count == calls


def test_preview_reports_decisions_and_writes_nothing(stash, model, red_video):
    scene = stash.add_scene(red_video)
    stash.reset_log()

    run = run_plugin(stash, {"mode": "preview"})

    assert run.returncode == 0
    assert stash.mutation_count == 0
    assert stash.tags_of_scene(scene) == set()
    [item] = run.output["items"]
    assert item["status"] == "preview" and item["tags"] == ["Red"]
    assert item["candidates"][0]["outcome"] == "create"


def test_corrupt_video_is_marked_errored_and_the_run_goes_on(stash, model, tmp_path, red_video):
    broken = stash.add_scene(media.make_corrupt(tmp_path / "broken.mp4"), duration=10)
    good = stash.add_scene(red_video)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.returncode == 0
    assert stash.tags_of_scene(broken) == {"AI_Errored"}
    assert stash.tags_of_scene(good) == {"Red", "AI_Tagged"}
    assert any(f"scene {broken}" in line for line in run.log_lines("e"))
    assert run.output["errored"] == 1


def test_unreadable_video_path_is_read_through_the_stream_url(stash, model, red_video):
    scene = stash.add_scene(red_video)
    stash.scenes[int(scene)]["file"]["path"] = "/data/in/docker/only/red.mp4"

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}, run.stderr
    assert stash.media_requests[f"/scene/{scene}/stream"] > 0


def test_zipped_image_is_fetched_through_stash(stash, model, tmp_path):
    inner = media.make_image(tmp_path / "inner.jpg", "yellow")
    archive = media.make_zip(tmp_path / "gallery.zip", {"photos/inner.jpg": inner})
    image = stash.add_image("photos/inner.jpg", zip_path=archive)

    run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(image) == {"Beach", "AI_Tagged"}
    assert stash.media_requests[f"/image/{image}/image"] == 1


def test_frames_are_spread_over_the_scene_and_scaled_down(stash, model, tmp_path):
    video = media.make_video(
        tmp_path / "four.mp4", ["red", "green", "blue", "yellow"], seconds_per_colour=2.5, size=(1280, 720)
    )
    scene = stash.add_scene(video)
    configure(stash, model, framesPerScene=4, minConfidence=10)

    run_plugin(stash, {"mode": "tag_scenes"})

    [request] = model.requests
    assert request["n_images"] == 4
    assert all(max(size) <= 768 for size in request["image_sizes"])
    # One frame inside each colour segment: each colour's tag, each seen in one frame.
    assert stash.tags_of_scene(scene) == {"Red", "Outdoors", "Water", "Beach", "AI_Tagged"}


def test_stash_configured_ffmpeg_is_used(stash, model, tmp_path, red_video):
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "my-ffmpeg"
    wrapper.write_text(f'#!/bin/sh\necho called >> "{calls}"\nexec ffmpeg "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    stash.set_ffmpeg_path(wrapper)
    stash.add_scene(red_video)
    configure(stash, model, framesPerScene=3)

    run_plugin(stash, {"mode": "tag_scenes"})

    assert calls.read_text().count("called") == 1  # all frames of a scene come from one ffmpeg process


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"minConfidence": 150}, "minConfidence"),  # a percentage above 100
        ({"gatewayUrl": "localhost:4000"}, "gatewayUrl"),  # no scheme: requests would fail obscurely
        ({"framesPerScene": 0}, "framesPerScene"),
        ({"concurrency": "many"}, "concurrency"),
    ],
)
def test_invalid_settings_end_the_run_before_any_write(stash, model, red_video, settings, named):
    stash.add_scene(red_video)
    configure(stash, model, **settings)
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert named in run.error
    assert stash.mutation_count == 0
    assert model.completion_count == 0


def test_unconfigured_gateway_says_what_to_set(stash, model, red_video):
    stash.add_scene(red_video)
    stash.set_plugin_settings("ai_tagger", {})

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "gatewayUrl" in run.error and "model" in run.error
    assert stash.mutation_count == 0


def test_secrets_and_image_data_never_reach_the_log(stash, model, tmp_path, red_video):
    stash.add_scene(red_video)
    stash.add_scene(media.make_corrupt(tmp_path / "broken.mp4"))
    model.malformed_colour = "red"
    configure(stash, model, concurrency=1)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    everything = run.stdout + run.stderr
    assert model.api_key not in everything
    assert stash.session_cookie["Value"] not in everything
    assert "base64," not in everything
    sample = base64.b64encode(media.extract_frame(red_video, 1.0)[:300]).decode()[:40]
    assert sample not in everything


def test_stdout_is_exactly_one_json_line(stash, model, red_video):
    stash.add_scene(red_video)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    lines = run.stdout.splitlines()
    assert len(lines) == 1
    assert set(json.loads(lines[0])) == {"output", "error"}
    assert all(line.startswith("\x01") for line in run.stderr.splitlines())


def test_progress_bar_is_reported(stash, model, tmp_path):
    for i in range(3):
        stash.add_image(media.make_image(tmp_path / f"{i}.jpg", "red"))

    run = run_plugin(stash, {"mode": "tag_images"})

    progress = [float(p) for p in run.log_lines("p")]
    assert progress and progress[-1] == 1.0


def test_listen_all_host_connects_to_localhost(stash, model, red_video):
    scene = stash.add_scene(red_video)

    run_plugin(stash, {"mode": "tag_scenes"}, connection=stash.server_connection(Host="0.0.0.0"))

    assert "AI_Tagged" in stash.tags_of_scene(scene)


def test_wrong_session_cookie_fails_with_a_clear_error(stash, model, red_video):
    stash.add_scene(red_video)
    bad = stash.server_connection(SessionCookie={"Name": "session", "Value": "stale"})

    run = run_plugin(stash, {"mode": "tag_untagged"}, connection=bad)

    assert run.returncode == 1
    assert "credentials" in run.error
    assert model.completion_count == 0


def test_gateway_answers_wrapped_in_prose_are_understood(stash, model, red_video):
    scene = stash.add_scene(red_video)
    model.honour_response_format = False
    model.answer_style = "fenced"

    run_plugin(stash, {"mode": "tag_scenes"})

    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}


def test_busy_gateway_is_retried_honouring_retry_after(stash, model, red_video):
    scene = stash.add_scene(red_video)
    model.fail_next = [429, 500, 503]

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}, run.stderr
    assert run.output["errored"] == 0
    retries = [line for line in run.log_lines("w") if "retry" in line]
    assert [line.split(";")[0] for line in retries] == ["gateway: HTTP 429", "gateway: HTTP 500", "gateway: HTTP 503"]
    assert retries[0] == "gateway: HTTP 429; retry 1 of 4 in 0.05 s as it asked"  # the server's Retry-After
    assert retries[2].startswith("gateway: HTTP 503; retry 3 of 4 in")


def test_malformed_answer_is_retried_once_then_marks_only_that_item(stash, model, tmp_path):
    bad = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    good = stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))
    model.malformed_colour = "red"

    run = run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(bad) == {"AI_Errored"}
    assert stash.tags_of_image(good) == {"Water", "AI_Tagged"}
    assert model.completion_count == 3  # the bad one: first try + one stricter retry; the good one: once
    assert any("not the expected JSON" in line for line in run.log_lines("e"))


def test_gateway_requests_in_flight_never_exceed_concurrency(stash, model, tmp_path):
    for i in range(8):
        stash.add_image(media.make_image(tmp_path / f"{i}.jpg", "green"))
    model.latency = 0.2
    configure(stash, model, concurrency=2)

    run_plugin(stash, {"mode": "tag_images"})

    assert model.completion_count == 8
    assert model.max_in_flight == 2


def test_unreachable_gateway_fails_fast_and_marks_nothing(stash, model, red_video):
    stash.add_scene(red_video)
    configure(stash, model, gatewayUrl="http://127.0.0.1:9/v1")
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "unreachable" in run.error and "gatewayUrl" in run.error
    assert stash.mutation_count == 0


def test_runs_from_any_working_directory(stash, model, tmp_path, red_video):
    scene = stash.add_scene(red_video)
    elsewhere = tmp_path / "stash-home"
    elsewhere.mkdir()

    run_plugin(stash, {"mode": "tag_scenes"}, cwd=elsewhere)

    assert "AI_Tagged" in stash.tags_of_scene(scene)
    assert not (elsewhere / "ai_tagger").exists()
    assert os.listdir(elsewhere) == []
