"""Keyframes from videos with ffmpeg: input seeking, one short decode per timestamp.

``-ss`` before ``-i`` makes ffmpeg jump to the keyframe before each timestamp and decode only
from there, so a two-hour file costs the same as a two-minute one. All of a scene's timestamps
go to one ffmpeg process (one input and one output pipe per timestamp), because starting ffmpeg
costs more than seeking; should that fail, each frame is taken by its own process and a bad
one is skipped. Frames are scaled down by
ffmpeg and come back as JPEG bytes on a pipe: nothing is written to disk.

Dense sampling (a frame every few seconds, for scene markers) is one sequential pass instead:
at hundreds of instants, one decode from start to end through an ``fps`` filter is cheaper than
hundreds of seeks, and decoding only keyframes (``-skip_frame nokey``) is cheaper still when the
interval is at least the file's keyframe spacing: an MP4's sample tables tell it (:mod:`.mp4`),
else ffprobe reads the packet flags, nothing decoded.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from ai_tagger.errors import MediaError
from ai_tagger.media import mp4

FFMPEG_TIMEOUT = 60
EDGE = 0.05


def timestamps(duration: float, count: int) -> list[float]:
    """``count`` instants spread evenly over the video, skipping the first and last 5 %."""
    if duration <= 0:
        return [0.0]
    span = duration * (1 - 2 * EDGE)
    return [round(duration * EDGE + span * (i + 0.5) / count, 3) for i in range(count)]


def _input_args(source: str, headers: Mapping[str, str] | None) -> list[str]:
    if not headers or not source.startswith(("http://", "https://")):
        return ["-i", source]
    header_block = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return ["-headers", header_block, "-i", source]


def probe_duration(source: str, *, ffprobe: str, headers: Mapping[str, str] | None = None) -> float:
    """Duration in seconds, for files Stash has not probed."""
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json"]
    if headers and source.startswith(("http://", "https://")):
        command += ["-headers", "".join(f"{k}: {v}\r\n" for k, v in headers.items())]
    try:
        result = subprocess.run(command + [source], capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
        return float(json.loads(result.stdout or b"{}").get("format", {}).get("duration", 0) or 0)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise MediaError(f"cannot probe video: {exc.__class__.__name__}") from None


def _scale(max_side: int) -> str:
    return f"scale='min({max_side},iw)':'min({max_side},ih)':force_original_aspect_ratio=decrease"


def _ffmpeg(command: list[str], what: str, timeout: float = FFMPEG_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg to the end; a missing ffmpeg or one over the time limit is a :class:`MediaError`.

    The limit is a timer that kills the process, not ``subprocess.run(timeout=)``, whose wait
    polls in sleeps of up to 50 ms: a tenth of a sub-second extraction.
    """
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise MediaError(f"ffmpeg not found at {command[0]!r}: install ffmpeg or set its path in Stash") from None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        stdout, stderr = process.communicate()
    finally:
        timer.cancel()
    if expired.is_set():
        raise MediaError(f"ffmpeg took over {timeout:.0f} s for {what}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _failure(result: subprocess.CompletedProcess[bytes], what: str) -> MediaError:
    detail = result.stderr.decode(errors="replace").strip().splitlines()
    reason = detail[-1] if detail else f"exit code {result.returncode}, no frame"
    return MediaError(f"ffmpeg could not read {what}: {reason}")


def _run(command: list[str], what: str) -> bytes:
    result = _ffmpeg(command, what)
    if result.returncode != 0 or not result.stdout.startswith(b"\xff\xd8"):
        raise _failure(result, what)
    return result.stdout


def extract_batch(
    source: str, stamps: list[float], *, ffmpeg: str, max_side: int, headers: Mapping[str, str] | None = None
) -> list[bytes]:
    """Every frame from one ffmpeg process: one seeking input and one output pipe per timestamp.

    Frames missing from the output (a timestamp past the real end) are left out; a run that
    yields no frame at all is a :class:`MediaError`.
    """
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    for at in stamps:
        command += ["-ss", f"{at:.3f}", *_input_args(source, headers)]
    pipes = [os.pipe() for _ in stamps]
    for index, (_, write_end) in enumerate(pipes):
        command += [
            "-map", f"{index}:v:0", "-frames:v", "1", "-vf", _scale(max_side),
            "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", f"pipe:{write_end}",
        ]  # fmt: skip
    try:
        process = subprocess.Popen(
            command,
            pass_fds=[write_end for _, write_end in pipes],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)
        raise MediaError(f"ffmpeg not found at {ffmpeg!r}: install ffmpeg or set its path in Stash") from None
    for _, write_end in pipes:
        os.close(write_end)
    try:
        frames = _read_all([read_end for read_end, _ in pipes], process)
        stderr = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    kept = [frame for frame in frames if frame.startswith(b"\xff\xd8")]
    if not kept:
        reason = stderr.splitlines()[-1] if stderr else f"exit code {process.returncode}, no frame"
        raise MediaError(f"ffmpeg could not read {len(stamps)} frames: {reason}")
    return kept


def _read_all(fds: list[int], process: subprocess.Popen[bytes]) -> list[bytes]:
    """Drain every output pipe at once (ffmpeg blocks on a full pipe), within the time limit."""
    buffers = {fd: bytearray() for fd in fds}
    deadline = time.monotonic() + FFMPEG_TIMEOUT
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    process.kill()
                    raise MediaError(f"ffmpeg took over {FFMPEG_TIMEOUT} s")
                for key, _ in selector.select(timeout=remaining):
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        buffers[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
        finally:
            for fd in fds:
                os.close(fd)
    return [bytes(buffers[fd]) for fd in fds]


def extract_frame(
    source: str, at: float, *, ffmpeg: str, max_side: int, headers: Mapping[str, str] | None = None
) -> bytes:
    """One JPEG frame at ``at`` seconds, long side at most ``max_side`` pixels."""
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-ss", f"{at:.3f}", *_input_args(source, headers),
        "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn",
        "-vf", _scale(max_side), "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1",
    ]  # fmt: skip
    return _run(command, f"a frame at {at:.1f} s")


def extract_frames(
    source: str,
    *,
    duration: float | None,
    count: int,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
) -> list[bytes]:
    """``count`` frames spread over the video; a frame past the real end is skipped, not fatal."""
    if not duration:
        duration = probe_duration(source, ffprobe=_ffprobe_beside(ffmpeg), headers=headers)
    stamps = timestamps(duration, count)
    if len(stamps) > 1 and os.name == "posix":
        try:
            return extract_batch(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers)
        except MediaError:
            pass
    frames: list[bytes] = []
    failure: MediaError | None = None
    for at in stamps:
        try:
            frames.append(extract_frame(source, at, ffmpeg=ffmpeg, max_side=max_side, headers=headers))
        except MediaError as exc:
            failure = exc
    if not frames:
        raise failure or MediaError("no frame could be read")
    return frames


def _ffprobe_beside(ffmpeg: str) -> str:
    path = Path(ffmpeg)
    if path.parent != Path("."):
        return str(path.with_name(path.name.replace("ffmpeg", "ffprobe")))
    return "ffprobe"


KEYFRAME_WINDOW = 60
"""Seconds of packets read to measure the keyframe spacing (flags only, nothing decoded)."""


def dense_plan(duration: float | None, interval: float, max_frames: int) -> tuple[float, int]:
    """``(interval, count)``: every ``interval`` s from 0 to the end, at most ``max_frames`` (then wider apart)."""
    if not duration or duration <= 0:
        return interval, max_frames
    count = max(1, math.ceil(duration / interval - 1e-9))
    if count > max_frames:
        return duration / max_frames, max_frames
    return interval, count


def keyframe_spacing(source: str, *, ffprobe: str, headers: Mapping[str, str] | None = None) -> float | None:
    """The widest gap between video keyframes in the first minute, from packet flags; None if unknown."""
    command = [
        ffprobe, "-v", "error", "-select_streams", "v:0", "-read_intervals", f"%+{KEYFRAME_WINDOW}",
        "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0",
    ]  # fmt: skip
    if headers and source.startswith(("http://", "https://")):
        command += ["-headers", "".join(f"{k}: {v}\r\n" for k, v in headers.items())]
    try:
        result = subprocess.run(command + [source], capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    keys = []
    for line in result.stdout.decode(errors="replace").splitlines():
        at, _, flags = line.partition(",")
        if flags.startswith("K"):
            try:
                keys.append(float(at))
            except ValueError:
                continue
    keys.sort()
    gaps = [b - a for a, b in zip(keys, keys[1:], strict=False)]
    return max(gaps) if gaps else None


def split_jpegs(stream: bytes) -> list[bytes]:
    """The complete JPEGs of an MJPEG pipe (ffmpeg writes no thumbnails, so EOI+SOI only joins pictures)."""
    parts = stream.split(b"\xff\xd9\xff\xd8")
    pictures = [(b"" if i == 0 else b"\xff\xd8") + part + (b"" if i == len(parts) - 1 else b"\xff\xd9")
                for i, part in enumerate(parts)]  # fmt: skip
    return [p for p in pictures if p.startswith(b"\xff\xd8") and p.endswith(b"\xff\xd9")]


def dense_command(
    source: str,
    *,
    interval: float,
    count: int,
    keyframes_only: bool,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """One sequential pass: an ``fps`` filter keeps the frame nearest each multiple of ``interval``."""
    skip = ["-skip_frame", "nokey"] if keyframes_only else []
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *skip, *_input_args(source, headers),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", f"fps=fps=1/{interval:.6f}:eof_action=pass,{_scale(max_side)}",
        "-frames:v", str(count), "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1",
    ]  # fmt: skip


def extract_dense(
    source: str,
    *,
    duration: float | None,
    interval: float,
    max_frames: int,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
) -> list[tuple[float, bytes]]:
    """``(seconds, JPEG)`` every ``interval`` s from one ffmpeg process; the frames that exist if the file is short.

    A file whose keyframes are at most ``interval`` apart is decoded keyframes only.
    """
    ffprobe = _ffprobe_beside(ffmpeg)
    if not duration:
        try:
            duration = probe_duration(source, ffprobe=ffprobe, headers=headers)
        except MediaError:
            duration = None
    step, count = dense_plan(duration, interval, max_frames)
    remote = source.startswith(("http://", "https://"))
    spacing = None if remote else mp4.keyframe_spacing(source, KEYFRAME_WINDOW)
    if spacing is None:
        spacing = keyframe_spacing(source, ffprobe=ffprobe, headers=headers)
    keyframes_only = spacing is not None and spacing <= step + 1e-6
    command = dense_command(
        source,
        interval=step,
        count=count,
        keyframes_only=keyframes_only,
        ffmpeg=ffmpeg,
        max_side=max_side,
        headers=headers,
    )
    what = f"a frame every {step:g} s"
    result = _ffmpeg(command, what, timeout=FFMPEG_TIMEOUT + (duration or 0))
    frames = split_jpegs(result.stdout)
    if not frames:
        raise _failure(result, what)
    return [(round(index * step, 3), frame) for index, frame in enumerate(frames)]
