"""Spread sampling takes the keyframe nearest each point, records the time each frame really shows,
falls back to exact times where keyframes are too sparse, and ``exactFrames`` restores exact times."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from ai_tagger.media import mp4
from ai_tagger.media.frames import extract_spread, keyframe_plan, timestamps
from tests import media
from tests.conftest import configure, run_plugin

COLOURS = ("red", "green", "blue", "yellow", "white", "black")


@pytest.fixture(scope="module")
def two_second_gop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 s, a colour every 6 s, a keyframe every 2 s."""
    path = tmp_path_factory.mktemp("gop") / "gop2.mp4"
    return media.make_long_video(path, minutes=0.6, size=(160, 120), fps=10, colours=COLOURS, gop=20)


def colour_at(seconds: float) -> str:
    return COLOURS[int(seconds // 6)]


def test_points_take_the_nearest_keyframe_and_a_taken_one_passes_to_the_next():
    assert keyframe_plan([2.0, 4.0, 6.0], [0.0, 2.5, 3.5, 7.5]) == [(2.5, True), (3.5, True), (7.5, True)]
    assert keyframe_plan([2.0, 4.0, 6.0], [3.0, 5.5]) == [(3.0, True), (5.5, True), (6.0, False)]


def test_points_without_a_keyframe_of_their_own_keep_their_exact_time():
    plan = keyframe_plan([2.0, 4.0, 6.0, 8.0], [0.5, 10.0])
    assert plan == [(0.5, True), (4.0, False), (6.0, False), (8.0, False)]
    times = [at for at, _ in plan]
    assert times == sorted(set(times))


def test_mp4_keyframe_times_come_from_the_sample_tables(two_second_gop):
    keys = mp4.keyframe_times(str(two_second_gop))
    assert keys is not None and keys[:4] == [0.0, 2.0, 4.0, 6.0] and len(keys) == 18


def test_spread_frames_are_keyframes_and_their_recorded_time_is_the_one_they_show(two_second_gop):
    timed = extract_spread(str(two_second_gop), duration=36.0, count=6, ffmpeg="ffmpeg", max_side=160)

    times = [at for at, _ in timed]
    assert len(timed) == 6 and times == sorted(set(times))
    assert all(at % 2 == 0 for at in times), times
    assert [media.mean_colour_name(frame) for _, frame in timed] == [colour_at(at) for at in times]


def test_exact_frames_restores_the_evenly_spaced_times(two_second_gop):
    timed = extract_spread(str(two_second_gop), duration=36.0, count=6, ffmpeg="ffmpeg", max_side=160, exact=True)

    assert [at for at, _ in timed] == timestamps(36.0, 6)
    assert [media.mean_colour_name(frame) for _, frame in timed] == [colour_at(at) for at in timestamps(36.0, 6)]


def test_sparse_keyframes_fall_back_to_exact_seeking_and_say_so(tmp_path, caplog):
    # Red then blue, 18 s each, a keyframe only where each starts.
    video = media.make_long_video(tmp_path / "sparse.mp4", minutes=0.6, size=(160, 120), fps=10, gop=360,
                                  colours=("red", "blue"))  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="ai_tagger.media.frames"):
        timed = extract_spread(str(video), duration=36.0, count=6, ffmpeg="ffmpeg", max_side=160)

    points = timestamps(36.0, 6)
    assert [at for at, _ in timed] == [0.0, points[1], 18.0, *points[3:]]
    assert [media.mean_colour_name(frame) for _, frame in timed] == ["red", "red", "blue", "blue", "blue", "blue"]
    assert any("keyframes too sparse" in record.getMessage() for record in caplog.records)


def test_files_without_mp4_sample_tables_find_their_keyframes_with_ffprobe(two_second_gop, tmp_path):
    mkv = tmp_path / "gop2.mkv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(two_second_gop), "-c", "copy", str(mkv)], check=True)

    timed = extract_spread(str(mkv), duration=36.0, count=6, ffmpeg="ffmpeg", max_side=160)

    times = [at for at, _ in timed]
    assert len(timed) == 6 and times == sorted(set(times))
    assert [media.mean_colour_name(frame) for _, frame in timed] == [colour_at(at) for at in times]


def test_answers_cached_with_exact_frames_are_reused_with_keyframe_sampling(stash, model, tmp_path):
    video = media.make_video(tmp_path / "four.mp4", ["red", "green", "blue", "yellow"], seconds_per_colour=2.5)
    scene = stash.add_scene(video)
    configure(stash, model, framesPerScene=4, minConfidence=42, exactFrames=True)
    run_plugin(stash, {"mode": "tag_scenes"})
    calls = model.completion_count

    configure(stash, model, framesPerScene=4, minConfidence=42)
    again = run_plugin(stash, {"mode": "reapply"})

    assert again.error is None, again.stderr
    assert model.completion_count == calls
    assert again.output["gateway_calls"] == 0 and again.output["cache_hits"] == 1
    assert "Red" in stash.tags_of_scene(scene)


def test_review_list_gives_the_time_each_evidence_frame_really_shows(stash, model, tmp_path):
    from tests.test_review import seeded
    from tests.test_undo import ok

    seeded(stash, model, tmp_path)  # red, green, blue, white for 2 s each; a keyframe every second
    listed = ok(run_plugin(stash, {"mode": "review_list", "kind": "scene"}))

    [item] = listed["items"]
    red = item["suggestions"][0]
    assert red["tag"] == "Red" and red["frames"] == [1]
    assert item["frame_times"]["1"] == 1.0  # the keyframe at 1 s, not the evenly spaced point at 1.3 s


def test_h264_keyframes_are_read_from_the_file_and_other_codecs_seek_to_them(two_second_gop, tmp_path):
    index = mp4.keyframes(str(two_second_gop))
    assert index is not None and index.annexb(str(two_second_gop), [0, 5])  # IDR pictures with their parameter sets
    hevc = media.make_video(tmp_path / "hevc.mp4", list(COLOURS), seconds_per_colour=6, codec="libx265")
    hevc_index = mp4.keyframes(str(hevc))
    assert hevc_index is not None and hevc_index.annexb(str(hevc), [0]) is None

    timed = extract_spread(str(hevc), duration=36.0, count=6, ffmpeg="ffmpeg", max_side=160)

    times = [at for at, _ in timed]
    assert len(timed) == 6 and times == sorted(set(times)) and all(at == int(at) for at in times)
    assert [media.mean_colour_name(frame) for _, frame in timed] == [colour_at(at) for at in times]
