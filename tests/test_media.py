"""The generated media must be what the tests believe it is, or tagging tests lie."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from tests.media import (
    extract_frame,
    make_animated,
    make_corrupt,
    make_image,
    make_long_video,
    make_video,
    make_zip,
    mean_colour_name,
    probe_duration,
)
from tests.servers.model_server import classify_image


def test_video_duration_and_colours_at_timestamps(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", ["red", "green", (20, 20, 220), "yellow", "black"])
    assert probe_duration(video) == pytest.approx(10.0, abs=0.05)
    expected = {0.0: "red", 1.5: "red", 2.0: "green", 3.9: "green", 4.0: "blue", 6.5: "yellow", 9.5: "black"}
    for seconds, name in expected.items():
        assert mean_colour_name(extract_frame(video, seconds)) == name, seconds
    codec = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,pix_fmt,width,height", "-of", "csv=p=0", str(video)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert codec == "h264,320,240,yuv420p"


def test_short_long_video(tmp_path: Path) -> None:
    # The benchmark generator, shrunk: 30 s, two colours, stream-copied GOP clips.
    video = make_long_video(tmp_path / "long.mp4", minutes=0.5, size=(320, 180), fps=25,
                            colours=["white", "blue"], gop=125)
    assert probe_duration(video) == pytest.approx(30.0, abs=0.1)
    assert mean_colour_name(extract_frame(video, 7.0)) == "white"
    assert mean_colour_name(extract_frame(video, 14.9)) == "white"
    assert mean_colour_name(extract_frame(video, 15.1)) == "blue"
    assert mean_colour_name(extract_frame(video, 29.5)) == "blue"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_orientation_image(tmp_path: Path, suffix: str) -> None:
    path = make_image(tmp_path / f"rotated{suffix}", "red", exif_orientation=6, other="green")
    stored = Image.open(path)
    assert stored.size == (300, 400)  # stored rotated; EXIF says "rotate 90 deg CW"
    assert stored.getexif()[0x0112] == 6
    shown = ImageOps.exif_transpose(stored)
    w, h = shown.size
    assert (w, h) == (400, 300)
    assert classify_image(shown.crop((0, 0, w, h // 2))).name == "red"  # top half
    assert classify_image(shown.crop((0, h // 2, w, h))).name == "green"  # bottom half
    # Ignoring EXIF gives a different picture: the top half is mixed, the left half is red.
    assert classify_image(stored.crop((0, 0, 150, 400))).name == "red"


def test_plain_images_by_suffix(tmp_path: Path) -> None:
    for suffix, fmt in ((".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP"), (".gif", "GIF")):
        path = make_image(tmp_path / f"plain{suffix}", "yellow", size=(80, 60))
        with Image.open(path) as im:
            assert im.format == fmt and im.size == (80, 60)
        assert mean_colour_name(path.read_bytes()) == "yellow"


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animated_has_one_frame_per_colour(tmp_path: Path, suffix: str) -> None:
    colours = ["red", "red", "green", "white"]
    with Image.open(make_animated(tmp_path / f"anim{suffix}", colours)) as im:
        assert im.n_frames == 4
        seen = []
        for i in range(im.n_frames):
            im.seek(i)
            seen.append(classify_image(im).name)
    assert seen == colours


def test_zip_contents(tmp_path: Path) -> None:
    a = make_image(tmp_path / "a.jpg", "red")
    b = make_image(tmp_path / "b.png", "blue")
    archive = make_zip(tmp_path / "gallery.zip", {"001.jpg": a, "sub/002.png": b})
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["001.jpg", "sub/002.png"]
        assert mean_colour_name(zf.read("sub/002.png")) == "blue"


def test_corrupt_file_fails_ffprobe(tmp_path: Path) -> None:
    bad = make_corrupt(tmp_path / "broken.mp4")
    assert bad.stat().st_size == 4096
    assert make_corrupt(tmp_path / "again.mp4").read_bytes() == bad.read_bytes()  # deterministic
    with pytest.raises(RuntimeError):
        probe_duration(bad)
    proc = subprocess.run(["ffprobe", "-v", "error", str(bad)], capture_output=True)
    assert proc.returncode != 0
