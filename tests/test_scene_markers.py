"""Scene markers from dense sampling, end to end: the plugin run as Stash runs it, a video whose
first half is red and second half blue, the pixel model, and the Stash-compatible server."""

from __future__ import annotations

import sqlite3

import pytest
from graphql import execute, parse

from ai_tagger.stash import queries
from tests import media
from tests.conftest import configure, run_plugin
from tests.servers import stash_server
from tests.test_graphql_conformance import real_schema

INTERVAL = 2
DENSE = {"frameInterval": INTERVAL, "markerTags": "*", "minConfidence": 40}


@pytest.fixture
def halves(tmp_path):
    """20 s: red for the first 10 s ("Red"), blue for the last 10 s ("Water")."""
    return media.make_video(tmp_path / "halves.mp4", ["red", "blue"], seconds_per_colour=10)


def empty(path):
    path.write_bytes(b"")
    return path


def spans(stash, scene):
    return [(m["tag"], m["seconds"], m["end_seconds"]) for m in stash.markers_of_scene(scene)]


def marker_inputs(stash):
    return [v["input"] for op, v in stash.operations if op == "SceneMarkerCreate"]


def assert_two_markers(found, *, with_end=True):
    assert [tag for tag, _, _ in found] == ["Red", "Water"]
    (_, red_start, red_end), (_, water_start, water_end) = found
    assert red_start == pytest.approx(0, abs=INTERVAL) and water_start == pytest.approx(10, abs=INTERVAL)
    if with_end:
        assert red_end == pytest.approx(10 - INTERVAL, abs=INTERVAL)
        assert water_end == pytest.approx(20 - INTERVAL, abs=INTERVAL)
    else:
        assert red_end is None and water_end is None


def test_a_two_colour_video_sampled_every_two_seconds_gets_one_marker_per_colour(stash, model, halves):
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    assert {"Red", "Water"} <= stash.tags_of_scene(scene)
    assert_two_markers(spans(stash, scene))
    red = stash.tag_by_name("Red")
    [first, _] = marker_inputs(stash)
    assert first["primary_tag_id"] == str(red["id"]) and first["title"] == "Red" and first["scene_id"] == scene
    assert run.output["markers"] == run.output["markers_created"] == 2
    # The marker writes come after the scene's one tag write.
    names = [op for op, _ in stash.operations]
    assert names.index("BulkSceneUpdate") < names.index("SceneMarkerCreate")


def test_rerun_and_reapply_create_no_duplicates_and_leave_the_users_marker_alone(stash, model, halves, tmp_path):
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)
    red = stash.add_tag("Red")
    mine = stash.add_marker(scene, red, 1.0, 5.0, title="my red bit")
    data = {"dataDir": str(tmp_path / "data")}

    run_plugin(stash, {"mode": "tag_scenes", **data})
    run_plugin(stash, {"mode": "tag_scenes", **data})
    run = run_plugin(stash, {"mode": "reapply", **data})

    assert run.error is None, run.stderr
    assert run.output["markers"] == 2 and run.output["markers_created"] == 0
    found = stash.markers_of_scene(scene)
    assert [(m["id"], m["seconds"], m["end_seconds"], m["title"]) for m in found if m["tag"] == "Red"] == [
        (mine, 1.0, 5.0, "my red bit")
    ]  # the plugin's Red marker would overlap the user's one: not created, and the user's is untouched
    assert [m["tag"] for m in found] == ["Red", "Water"]
    assert model.completion_count == 2  # 10 frames in requests of 8: paid once, re-applied from the cache


def test_reapply_removes_markers_of_tags_no_longer_applied_and_never_recreates_deleted_ones(
    stash, model, halves, tmp_path
):
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)
    data = {"dataDir": str(tmp_path / "data")}
    run_plugin(stash, {"mode": "tag_scenes", **data})
    [red, water] = stash.markers_of_scene(scene)

    stash.markers = [m for m in stash.markers if str(m["id"]) != red["id"]]  # the user deletes the Red marker
    configure(stash, model, **{**DENSE, "minConfidence": 60})  # Water (0.8 x sqrt(1/2) = 0.57) no longer passes
    run = run_plugin(stash, {"mode": "reapply", **data})

    assert run.error is None, run.stderr
    assert stash.tags_of_scene(scene) >= {"Red"} and "Water" not in stash.tags_of_scene(scene)
    assert stash.markers_of_scene(scene) == []  # Water's marker removed, Red's not re-created
    with sqlite3.connect(tmp_path / "data" / "cache.sqlite3") as db:
        states = dict(db.execute("SELECT marker_id, state FROM markers").fetchall())
    assert states == {red["id"]: "rejected", water["id"]: "removed"}


def test_an_older_stash_gets_markers_without_end_seconds(stash, model, halves, monkeypatch):
    monkeypatch.setattr(stash_server, "STASH_VERSION", "v0.27.2")
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    assert all("end_seconds" not in i for i in marker_inputs(stash))
    assert_two_markers(spans(stash, scene), with_end=False)


@pytest.mark.parametrize(("per_request", "layout"), [(3, "separate"), (10, "separate"), (4, "grid"), (9, "grid")])
def test_a_frames_per_request_split_gives_the_same_markers_as_one_request(stash, model, halves, per_request, layout):
    configure(stash, model, **DENSE, framesPerRequest=per_request, frameLayout=layout)
    scene = stash.add_scene(halves)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    requests = -(-10 // per_request)
    assert model.completion_count == requests == run.output["gateway_calls"]
    pictures = sorted(r["n_images"] for r in model.requests)
    cells = [min(per_request, 10 - offset) for offset in range(0, 10, per_request)]
    assert pictures == ([1] * requests if layout == "grid" else sorted(cells))  # grid: one contact sheet each
    assert_two_markers(spans(stash, scene))


def test_every_marker_document_and_its_variables_validate_against_stashs_schema(stash, model, halves):
    configure(stash, model, **DENSE)
    stash.add_scene(halves)
    run_plugin(stash, {"mode": "tag_scenes"})

    sent = [(op, v) for op, v in stash.operations if op and "Marker" in op]
    assert {op for op, _ in sent} >= {"SceneMarkers", "SceneMarkerCreate"}
    documents = {"SceneMarkers": queries.SCENE_MARKERS, "SceneMarkerCreate": queries.SCENE_MARKER_CREATE}
    for op, variables in sent:
        result = execute(real_schema(), parse(documents[op]), variable_values=variables)
        assert not [e for e in result.errors or [] if "Variable" in e.message], result.errors


def test_preview_lists_the_markers_each_scene_would_get_and_writes_none(stash, model, halves):
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)

    run = run_plugin(stash, {"mode": "preview"})

    [row] = run.output["items"]
    assert [(m["tag"], m["at"]) for m in row["markers"]] == [("Red", "0:00-0:08"), ("Water", "0:10-0:18")]
    assert stash.markers_of_scene(scene) == [] and not marker_inputs(stash)
    # The token estimate is built from every request the dense frames took (two of eight frames at most).
    assert run.output["gateway_calls"] == 2
    assert run.output["estimate"]["tokens_per_item"] == run.output["tokens"]["total"] > 0


def test_markers_planned_before_a_kill_are_created_by_the_next_run(stash, model, halves, tmp_path):
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)
    data = {"dataDir": str(tmp_path / "data")}
    run_plugin(stash, {"mode": "tag_scenes", **data})
    # As if killed between the scene's tag write and its marker writes: rows planned, nothing in Stash.
    stash.markers = []
    with sqlite3.connect(tmp_path / "data" / "cache.sqlite3") as db:
        db.execute("UPDATE markers SET state = 'planned', marker_id = NULL")

    run = run_plugin(stash, {"mode": "tag_scenes", **data})

    assert run.error is None, run.stderr
    assert run.output["processed"] == 0  # the scene is tagged: the run skips it, yet finishes its markers
    assert_two_markers(spans(stash, scene))


@pytest.mark.parametrize(
    ("make", "duration", "outcome"),
    [
        (lambda d: empty(d / "empty.mp4"), 20.0, "errored"),
        (lambda d: media.make_video(d / "short.mp4", ["red"], seconds_per_colour=6), 60.0, "tagged"),
        (lambda d: media.make_video(d / "unknown.mp4", ["red"], seconds_per_colour=6), None, "tagged"),
    ],
    ids=["zero-byte file", "duration that lies", "no duration"],
)
def test_bad_files_degrade_to_the_frames_that_exist_or_error_and_the_run_goes_on(
    stash, model, halves, tmp_path, make, duration, outcome
):
    configure(stash, model, **DENSE)
    bad = stash.add_scene(make(tmp_path), duration=duration)
    good = stash.add_scene(halves)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    rows = {row["id"]: row for row in run.output["items"]}
    assert rows[bad]["status"] == outcome, rows[bad]
    assert rows[good]["status"] == "tagged"
    if outcome == "errored":
        assert "AI_Errored" in stash.tags_of_scene(bad) and "ffmpeg" in rows[bad]["error"]
    else:
        [marker] = stash.markers_of_scene(bad)
        assert (marker["tag"], marker["seconds"]) == ("Red", 0) and marker["end_seconds"] <= 6


def test_an_audio_only_file_is_errored_with_a_reason(stash, model, halves, tmp_path):
    audio = tmp_path / "audio.m4a"
    media._run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=3", "-c:a", "aac", str(audio)])
    configure(stash, model, **DENSE)
    bad = stash.add_scene(audio, duration=3.0)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    [row] = [r for r in run.output["items"] if r["id"] == bad]
    assert row["status"] == "errored" and "ffmpeg" in row["error"]


def test_a_tag_left_for_review_gets_no_marker(stash, model, halves):
    configure(stash, model, **{**DENSE, "minConfidence": 60, "reviewConfidence": 40})  # Water scores 0.57
    scene = stash.add_scene(halves)

    run_plugin(stash, {"mode": "tag_scenes"})

    assert "AI_Review" in stash.tags_of_scene(scene)
    assert [m["tag"] for m in stash.markers_of_scene(scene)] == ["Red"]


def test_marker_tags_names_which_applied_tags_get_markers(stash, model, halves):
    configure(stash, model, **{**DENSE, "markerTags": "water, Something Else"})
    scene = stash.add_scene(halves)

    run_plugin(stash, {"mode": "tag_scenes"})

    assert {"Red", "Water"} <= stash.tags_of_scene(scene)
    assert [m["tag"] for m in stash.markers_of_scene(scene)] == ["Water"]


def test_markers_are_written_without_the_cache_too(stash, model, halves):
    configure(stash, model, **DENSE, disableCache=True)
    scene = stash.add_scene(halves)

    run = run_plugin(stash, {"mode": "tag_scenes"})

    assert run.error is None, run.stderr
    assert_two_markers(spans(stash, scene))


def test_undo_last_takes_back_the_runs_markers(stash, model, halves, tmp_path):
    configure(stash, model, **DENSE)
    scene = stash.add_scene(halves)
    red = stash.add_tag("Red")
    mine = stash.add_marker(scene, red, 30.0, 31.0, title="mine")  # after the video's end: overlaps nothing
    data = {"dataDir": str(tmp_path / "data")}
    run_plugin(stash, {"mode": "tag_scenes", **data})
    assert len(stash.markers_of_scene(scene)) == 3

    run = run_plugin(stash, {"mode": "undo_last", **data})

    assert run.error is None, run.stderr
    assert [m["id"] for m in stash.markers_of_scene(scene)] == [mine]
    with sqlite3.connect(tmp_path / "data" / "cache.sqlite3") as db:
        assert {state for (state,) in db.execute("SELECT state FROM markers")} == {"removed"}
