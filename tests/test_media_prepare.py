"""The media stage: pictures the model sees are upright, RGB, small, and from the right place."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ai_tagger.errors import MediaError
from ai_tagger.media.frames import extract_frames, timestamps
from ai_tagger.media.images import prepare_image
from tests import media
from tests.servers.model_server import classify_image


def open_jpeg(data: bytes) -> Image.Image:
    assert data[:2] == b"\xff\xd8"
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_exif_orientation_is_applied(tmp_path):
    path = media.make_image(tmp_path / "rotated.jpg", "red", other="blue", size=(400, 300), exif_orientation=6)
    shown = open_jpeg(prepare_image(path.read_bytes(), max_side=768))
    assert shown.size == (400, 300)
    top = shown.crop((0, 0, 400, 100))
    bottom = shown.crop((0, 200, 400, 300))
    assert classify_image(top).name == "red" and classify_image(bottom).name == "blue"


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animated_images_use_their_first_frame(tmp_path, suffix):
    path = media.make_animated(tmp_path / f"anim{suffix}", ["green", "red", "red"])
    assert classify_image(open_jpeg(prepare_image(path.read_bytes(), max_side=768))).name == "green"


def test_transparency_is_flattened_on_white_not_black():
    image = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    assert classify_image(open_jpeg(prepare_image(out.getvalue(), max_side=768))).name == "white"


def test_large_images_are_scaled_to_the_long_side_and_small_ones_kept(tmp_path):
    big = media.make_image(tmp_path / "big.png", "blue", size=(3000, 1000))
    small = media.make_image(tmp_path / "small.png", "blue", size=(200, 100))
    assert open_jpeg(prepare_image(big.read_bytes(), max_side=768)).size == (768, 256)
    assert open_jpeg(prepare_image(small.read_bytes(), max_side=768)).size == (200, 100)


def test_unreadable_image_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="cannot read image"):
        prepare_image(media.make_corrupt(tmp_path / "x.jpg").read_bytes(), max_side=768)


def test_timestamps_skip_the_very_start_and_end():
    stamps = timestamps(100, 4)
    assert stamps == sorted(stamps) and len(stamps) == 4
    assert stamps[0] > 5 and stamps[-1] < 95


def test_frames_come_from_their_timestamps(tmp_path):
    video = media.make_video(tmp_path / "v.mp4", ["red", "green", "blue"], seconds_per_colour=2, size=(640, 360))
    frames = extract_frames(str(video), duration=6.0, count=3, ffmpeg="ffmpeg", max_side=320)
    assert [classify_image(open_jpeg(f)).name for f in frames] == ["red", "green", "blue"]
    assert all(open_jpeg(f).size == (320, 180) for f in frames)


def test_missing_duration_is_probed(tmp_path):
    video = media.make_video(tmp_path / "v.mp4", ["red", "blue"], seconds_per_colour=2)
    frames = extract_frames(str(video), duration=None, count=2, ffmpeg="ffmpeg", max_side=320)
    assert [classify_image(open_jpeg(f)).name for f in frames] == ["red", "blue"]


def test_corrupt_video_is_a_media_error(tmp_path):
    broken = media.make_corrupt(tmp_path / "broken.mp4")
    with pytest.raises(MediaError, match="ffmpeg"):
        extract_frames(str(broken), duration=10, count=2, ffmpeg="ffmpeg", max_side=320)


def test_missing_ffmpeg_says_how_to_fix_it(tmp_path):
    video = media.make_video(tmp_path / "v.mp4", ["red"], seconds_per_colour=1)
    with pytest.raises(MediaError, match="install ffmpeg"):
        extract_frames(str(video), duration=1, count=1, ffmpeg=str(tmp_path / "nope"), max_side=320)


def test_one_ffmpeg_process_extracts_all_frames_of_a_scene(tmp_path):
    from ai_tagger.media.frames import extract_batch

    video = media.make_video(tmp_path / "v.mp4", ["red", "green", "blue", "yellow"], seconds_per_colour=2)
    frames = extract_batch(str(video), [1.0, 3.0, 5.0, 7.0], ffmpeg="ffmpeg", max_side=160)
    assert [classify_image(open_jpeg(f)).name for f in frames] == ["red", "green", "blue", "yellow"]


def test_a_frame_past_the_end_is_skipped_not_fatal(tmp_path):
    video = media.make_video(tmp_path / "v.mp4", ["red", "blue"], seconds_per_colour=2)
    # Stash says 40 s, the file has 4: the batch fails, frame by frame keeps what exists.
    frames = extract_frames(str(video), duration=40.0, count=10, ffmpeg="ffmpeg", max_side=160)
    assert 1 <= len(frames) < 10
