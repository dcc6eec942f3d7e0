"""Real media files made by the tests themselves.

Why: the tagger decodes videos with ffmpeg and images with Pillow; fixtures checked
into the repo go stale and hide codec problems. Everything here is generated from
solid palette colours (the same palette the fake model server classifies with, see
``tests.servers.model_server``), so a test knows which tag each frame must produce.

All functions are pure helpers (no pytest), take a colour as a palette name
("red") or an RGB tuple, and return the Path they wrote.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

from tests.servers.model_server import DEFAULT_PALETTE, Colour, classify_image, find_colour

ColourSpec = str | tuple[int, int, int]

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
DEFAULT_LONG_COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".gif": "GIF"}

# Inverse of what ImageOps.exif_transpose applies per EXIF orientation: storing the
# displayed image through this makes a viewer's transpose restore it.
_STORE_FOR_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # viewer rotates 90 deg CW (ROTATE_270) to display
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def rgb_of(colour: ColourSpec, palette: Sequence[Colour] = DEFAULT_PALETTE) -> tuple[int, int, int]:
    """RGB of a palette name or pass-through of an RGB tuple."""
    if isinstance(colour, str):
        return find_colour(colour, palette).rgb
    r, g, b = colour
    return (int(r), int(g), int(b))


def _hex(colour: ColourSpec) -> str:
    r, g, b = rgb_of(colour)
    return f"0x{r:02X}{g:02X}{b:02X}"


def _run(cmd: list[str]) -> None:
    """Run ffmpeg quietly; raise with its stderr so failures are readable."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _codec_args(codec: str, fps: int, gop: int, preset: str) -> list[str]:
    args = ["-c:v", codec, "-g", str(gop), "-keyint_min", str(gop)]
    if codec in ("libx264", "libx265"):
        # No scene-cut keyframes: keyframes land exactly every `gop` frames.
        args += ["-preset", preset, "-sc_threshold", "0"]
    if codec == "libx265":
        args += ["-x265-params", "log-level=error", "-tag:v", "hvc1"]
    return args + ["-pix_fmt", "yuv420p", "-r", str(fps)]


# --------------------------------------------------------------------------- video


def make_video(
    path: str | Path,
    colours: Sequence[ColourSpec],
    *,
    seconds_per_colour: float = 2.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
    codec: str = "libx264",
) -> Path:
    """Solid-colour segments, one per colour, in that order; keyframe every second.

    Colour ``i`` covers ``[i * seconds_per_colour, (i + 1) * seconds_per_colour)``.
    """
    if not colours:
        raise ValueError("need at least one colour")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    for colour in colours:
        cmd += ["-f", "lavfi", "-i", f"color=c={_hex(colour)}:s={w}x{h}:r={fps}:d={seconds_per_colour}"]
    if len(colours) > 1:
        inputs = "".join(f"[{i}:v]" for i in range(len(colours)))
        cmd += ["-filter_complex", f"{inputs}concat=n={len(colours)}:v=1:a=0[v]", "-map", "[v]"]
    cmd += _codec_args(codec, fps, gop=max(1, round(fps)), preset="veryfast")
    cmd += ["-an", "-movflags", "+faststart", str(path)]
    _run(cmd)
    return path


def make_long_video(
    path: str | Path,
    *,
    minutes: float = 10,
    size: tuple[int, int] = (1920, 1080),
    fps: int = 25,
    colours: Sequence[ColourSpec] = DEFAULT_LONG_COLOURS,
    gop: int = 250,
) -> Path:
    """Long H.264 video for benchmarks: equal solid segments, one per colour, in order.

    Encoding 10 min of 1080p directly takes ~1 min, so one GOP-long clip per colour is
    encoded and the clips are stream-copied (concat demuxer) into the full length: a
    few seconds in total, and a real decodable file with a keyframe every ``gop`` frames.
    """
    if not colours:
        raise ValueError("need at least one colour")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    seg_frames = round(minutes * 60 * fps / len(colours))
    full, rest = divmod(seg_frames, gop)
    with tempfile.TemporaryDirectory(prefix="long-video-") as tmp:
        tmpdir = Path(tmp)
        jobs: dict[Path, tuple[ColourSpec, int]] = {}
        entries: list[Path] = []
        for colour in colours:
            for frames, count in ((gop, full), (rest, 1 if rest else 0)):
                if count:
                    clip = tmpdir / f"{_hex(colour)}-{frames}.mp4"
                    jobs[clip] = (colour, frames)
                    entries += [clip] * count

        def encode(item: tuple[Path, tuple[ColourSpec, int]]) -> None:
            out, (colour, frames) = item
            _run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                  "-i", f"color=c={_hex(colour)}:s={w}x{h}:r={fps},format=yuv420p", "-frames:v", str(frames),
                  *_codec_args("libx264", fps, gop, preset="ultrafast"), "-an", str(out)])

        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), (os.cpu_count() or 2) // 2))) as pool:
            list(pool.map(encode, jobs.items()))
        listing = tmpdir / "list.txt"
        listing.write_text("".join(f"file '{p.as_posix()}'\n" for p in entries))
        _run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
              "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(path)])
    return path


def probe_duration(path: str | Path) -> float:
    """Container duration in seconds (ffprobe); raises if ffprobe cannot read the file."""
    proc = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", str(path)],
        capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"ffprobe failed on {path}: {proc.stderr.strip()}")
    return float(proc.stdout.strip())


def extract_frame(path: str | Path, seconds: float) -> bytes:
    """PNG bytes of the frame shown at ``seconds`` (exact seek), for checking colours."""
    proc = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-ss", f"{seconds:.3f}",
         "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"],
        capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"ffmpeg could not extract a frame at {seconds}s from {path}: {proc.stderr.decode()}")
    return proc.stdout


# --------------------------------------------------------------------------- images


def _format_for(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt.upper()
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"cannot infer image format from {path.name!r}; pass fmt=") from None


def make_image(
    path: str | Path,
    colour: ColourSpec,
    *,
    size: tuple[int, int] = (400, 300),
    fmt: str | None = None,
    exif_orientation: int | None = None,
    other: ColourSpec = "blue",
) -> Path:
    """A solid image, or with ``exif_orientation`` an image that needs EXIF to look right.

    With ``exif_orientation`` the *displayed* image (after applying the EXIF
    orientation, e.g. ``ImageOps.exif_transpose``) is ``size`` large, its TOP half is
    ``colour`` and its BOTTOM half is ``other``. The stored pixels are transformed so
    that a reader ignoring EXIF sees something else: for orientation 6 the stored
    image is ``(h, w)`` with ``colour`` on the LEFT half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _format_for(path, fmt)
    image = Image.new("RGB", size, rgb_of(colour))
    save_kwargs: dict[str, object] = {}
    if exif_orientation is not None:
        if exif_orientation not in _STORE_FOR_ORIENTATION:
            raise ValueError(f"EXIF orientation must be 1..8, got {exif_orientation}")
        if fmt == "GIF":
            raise ValueError("GIF cannot carry EXIF orientation")
        w, h = size
        ImageDraw.Draw(image).rectangle((0, h // 2, w, h), fill=rgb_of(other))
        transpose = _STORE_FOR_ORIENTATION[exif_orientation]
        if transpose is not None:
            image = image.transpose(transpose)
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        save_kwargs["exif"] = exif.tobytes()
    if fmt == "JPEG":
        save_kwargs["quality"] = 95
    elif fmt == "WEBP":
        save_kwargs["quality"] = 95
    image.save(path, format=fmt, **save_kwargs)
    return path


def make_animated(
    path: str | Path,
    colours: Sequence[ColourSpec],
    *,
    size: tuple[int, int] = (200, 150),
    frame_ms: int = 200,
) -> Path:
    """Animated GIF or WebP (by suffix), one frame per colour, looping.

    Each frame carries its index in a tiny corner mark so encoders never merge
    repeated colours into one frame (mean colour is unaffected in practice).
    """
    if not colours:
        raise ValueError("need at least one colour")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _format_for(path, None)
    if fmt not in ("GIF", "WEBP"):
        raise ValueError("animated images must be .gif or .webp")
    frames = []
    for index, colour in enumerate(colours):
        frame = Image.new("RGB", size, rgb_of(colour))
        mark = (index * 37 % 256, index * 91 % 256, index * 53 % 256)
        ImageDraw.Draw(frame).rectangle((0, 0, 1, 1), fill=mark)
        frames.append(frame)
    kwargs: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": frame_ms, "loop": 0}
    if fmt == "WEBP":
        kwargs.update(lossless=True)
    else:
        kwargs.update(optimize=False, disposal=1)
    frames[0].save(path, format=fmt, **kwargs)
    return path


def make_zip(zip_path: str | Path, members: Mapping[str, str | Path]) -> Path:
    """Zip holding each given file under its member name (like a Stash gallery zip)."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in members.items():
            archive.write(Path(source), arcname=name)
    return zip_path


def make_corrupt(path: str | Path, size: int = 4096, *, seed: int = 1234) -> Path:
    """Deterministic garbage under a media suffix: no decoder can read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(random.Random(seed).randbytes(size))
    data[:8] = b"\x00GARBAGE"[: min(8, size)]  # no accidental magic number
    path.write_bytes(bytes(data[:size]))
    return path


def mean_colour_name(image_bytes: bytes, palette: Sequence[Colour] = DEFAULT_PALETTE) -> str:
    """Palette name of an encoded image's mean colour (same classifier as the fake model)."""
    with Image.open(io.BytesIO(image_bytes)) as image:
        return classify_image(image, palette).name


# --------------------------------------------------------------------------- real photographs


PHOTOS = ("astronaut", "camera", "chelsea", "coffee")
"""Public-domain photographs bundled in scikit-image's wheel (``skimage.data``), loaded at run
time and never copied into this repository: a woman's face, a man's face, a cat, a cup."""


def photo(name: str) -> Image.Image:
    """A scikit-image sample photograph as an RGB (or greyscale ``L``) Pillow image."""
    from skimage import data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    return Image.fromarray(getattr(data, name)())


def make_photo(path: str | Path, name: str, *, mode: str | None = None, fmt: str | None = None) -> Path:
    """Save a sample photograph (optionally converted to ``mode``, e.g. CMYK) under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = photo(name)
    if mode:
        image = image.convert(mode)
    image.save(path, format=_format_for(path, fmt))
    return path


def make_still_video(path: str | Path, picture: str | Path, *, seconds: float = 20, fps: int = 10) -> Path:
    """An H.264 video showing one picture for ``seconds``: every frame shows the same thing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-loop", "1", "-framerate", str(fps),
          "-i", str(picture), "-t", f"{seconds:g}", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
          *_codec_args("libx264", fps, gop=fps, preset="veryfast"), "-an", "-movflags", "+faststart", str(path)])
    return path
