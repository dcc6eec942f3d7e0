"""Dense sampling and marker spans, piece by piece: the frame plan, the one-pass extraction with
real ffmpeg, the split of frames into requests and the merge of their answers, the spans."""

from __future__ import annotations

import pytest

from ai_tagger.analyze.gateway.base import Candidate, TagAnswer, Usage
from ai_tagger.analyze.gateway.split import chunks, merge
from ai_tagger.decide.markers import MarkerChoice, spans
from ai_tagger.decide.rules import parse_rules
from ai_tagger.errors import MediaError, RulesError
from ai_tagger.media import mp4
from ai_tagger.media.frames import dense_plan, extract_dense, keyframe_spacing, split_jpegs
from tests import media

TIMES = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]


def test_a_scene_is_sampled_from_start_to_end_and_capped_by_spreading_wider():
    assert dense_plan(20, 2, 600) == (2, 10)
    assert dense_plan(21, 2, 600) == (2, 11)
    assert dense_plan(1, 2, 600) == (2, 1)  # at least one frame
    assert dense_plan(3600, 2, 600) == (6, 600)
    assert dense_plan(None, 2, 50) == (2, 50)  # unknown length: the cap stops the pass


@pytest.mark.parametrize("interval", [1, 2, 3])
def test_one_pass_yields_a_frame_per_interval_with_its_time_and_colour(tmp_path, interval):
    video = media.make_video(tmp_path / "halves.mp4", ["red", "blue"], seconds_per_colour=6)
    frames = extract_dense(str(video), duration=12, interval=interval, max_frames=600, ffmpeg="ffmpeg", max_side=128)

    assert [at for at, _ in frames] == [i * interval for i in range(-(-12 // interval))]
    for at, picture in frames:
        assert media.mean_colour_name(picture) == ("red" if at < 6 else "blue")


def test_keyframe_spacing_is_read_from_packet_flags(tmp_path):
    video = media.make_video(tmp_path / "gop.mp4", ["red"], seconds_per_colour=5)  # a keyframe every second
    assert keyframe_spacing(str(video), ffprobe="ffprobe") == pytest.approx(1)


def test_a_file_that_is_not_a_video_is_a_media_error(tmp_path):
    broken = media.make_corrupt(tmp_path / "broken.mp4")
    with pytest.raises(MediaError, match="ffmpeg could not read a frame every 2 s"):
        extract_dense(str(broken), duration=10, interval=2, max_frames=10, ffmpeg="ffmpeg", max_side=128)


def test_an_mjpeg_pipe_splits_into_whole_pictures_and_drops_a_cut_one():
    one, two = b"\xff\xd8abc\xff\xd9", b"\xff\xd8def\xff\xd9"
    assert split_jpegs(one + two + b"\xff\xd8cut") == [one, two]


def test_frames_split_into_requests_and_their_answers_merge_with_global_frame_numbers():
    assert chunks(10, 4) == [(0, 4), (4, 4), (8, 2)]
    first = TagAnswer([Candidate(name="Red", confidence=0.9, frames=(1, 2))], Usage(10, 1))
    second = TagAnswer(
        [Candidate(name="red", confidence=0.7, frames=(1,)), Candidate(name="Water", confidence=0.8, frames=(2,))],
        Usage(20, 2),
    )
    merged = merge([(0, first), (4, second)])

    assert [(c.name, c.confidence, c.frames) for c in merged.candidates] == [
        ("Red", 0.9, (1, 2, 5)),
        ("Water", 0.8, (6,)),
    ]
    assert (merged.usage.total_tokens, merged.calls) == (33, 2)


def test_frames_close_enough_join_and_short_markers_are_dropped():
    assert spans([1, 2, 3, 4, 5], TIMES, max_gap=4, min_duration=0) == [(0, 8)]
    assert spans([1, 2, 4, 5, 9], TIMES, max_gap=4, min_duration=0) == [(0, 8), (16, 16)]
    assert spans([1, 2, 4, 5, 9], TIMES, max_gap=2, min_duration=0) == [(0, 2), (6, 8), (16, 16)]
    assert spans([1, 2, 4, 5, 9], TIMES, max_gap=4, min_duration=1) == [(0, 8)]
    assert spans([0, 11, 99], TIMES, max_gap=4, min_duration=0) == []  # out-of-range frames ignored


def test_marker_tags_and_the_rules_markers_section_choose_and_tune_tags():
    rules = parse_rules("markers:\n  Kissing: {max_gap: 10, min_duration: 4}\n  Outdoors: off\n")
    every = MarkerChoice.parse("*")
    named = MarkerChoice.parse(" dog , Beach ")

    assert every.wants(["Outdoors"], rules) == (False, None, None)
    assert every.wants(["Kiss", "Kissing"], rules) == (True, 10, 4)
    assert named.wants(["DOG"], rules)[0] and not named.wants(["Cat"], rules)[0]
    assert MarkerChoice.parse("").wants(["Kissing"], rules)[0]  # named in the rules: on
    assert not MarkerChoice.parse("").wants(["Dog"], rules)[0]


def test_a_bad_markers_entry_names_its_line():
    with pytest.raises(RulesError, match=r"line 3: markers.Kissing.gap: unknown key"):
        parse_rules("markers:\n  Dog: on\n  Kissing: {gap: 3}\n")


@pytest.mark.parametrize("gop", [10, 25, 50])
def test_an_mp4s_keyframe_spacing_is_read_from_its_sample_tables_as_ffprobe_reads_it(tmp_path, gop):
    video = tmp_path / "v.mp4"
    media._run([
        "ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48:r=10:d=12", "-c:v", "libx264",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(video),
    ])  # fmt: skip
    spacing = mp4.keyframe_spacing(str(video))
    assert spacing == pytest.approx(gop / 10) == pytest.approx(keyframe_spacing(str(video), ffprobe="ffprobe"))


def test_a_file_that_is_not_an_mp4_leaves_the_spacing_to_ffprobe(tmp_path):
    video = media.make_video(tmp_path / "v.mkv", ["red"], seconds_per_colour=3)
    assert mp4.keyframe_spacing(str(video)) is None
    assert mp4.keyframe_spacing(str(media.make_corrupt(tmp_path / "bad.mp4"))) is None
    assert keyframe_spacing(str(video), ffprobe="ffprobe") == pytest.approx(1)
