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

import bisect
import json
import logging
import math
import os
import selectors
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from ai_tagger.errors import MediaError, SettingsError
from ai_tagger.media import mp4

FFMPEG_TIMEOUT = 60
_log = logging.getLogger(__name__)
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


def _cannot_run(ffmpeg: str) -> str | None:
    """Why ffmpeg cannot be started, or None. Not run: a scene's frames stay one ffmpeg process."""
    if shutil.which(ffmpeg):
        return None
    if os.sep not in ffmpeg:
        return "not on PATH"
    return "not executable" if os.path.exists(ffmpeg) else "no such file"


def require_ffmpeg(ffmpeg: str) -> None:
    """:class:`SettingsError` when ffmpeg cannot be started, checked before each scene's first frame (a
    stat): a configuration error, not the item's, since every scene would fail the same way."""
    why = _cannot_run(ffmpeg)
    if why:
        raise SettingsError(
            f"ffmpeg cannot run at {ffmpeg!r} ({why}): install ffmpeg or set its path in Stash (Settings > "
            "System > Application Paths), or put it on the PATH of the user Stash runs as. No scene was marked."
        )


def _scale(max_side: int) -> str:
    return f"scale='min({max_side},iw)':'min({max_side},ih)':force_original_aspect_ratio=decrease"


def _ffmpeg(
    command: list[str], what: str, timeout: float = FFMPEG_TIMEOUT, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg to the end; a missing ffmpeg or one over the time limit is a :class:`MediaError`.

    The limit is a timer that kills the process, not ``subprocess.run(timeout=)``, whose wait
    polls in sleeps of up to 50 ms: a tenth of a sub-second extraction.
    """
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError:  # not found, not executable, not a program (a run checks first: require_ffmpeg)
        raise MediaError(f"ffmpeg not found at {command[0]!r}: install ffmpeg or set its path in Stash") from None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        stdout, stderr = process.communicate(stdin)
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
    kept = [f for f in _batch(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers) if f]
    if not kept:
        raise MediaError(f"ffmpeg could not read {len(stamps)} frames: no frame")
    return kept


def _batch(
    source: str,
    stamps: list[float],
    *,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
    input_options: list[str] | None = None,
) -> list[bytes | None]:
    """Each timestamp's frame (None where the output has none), one ffmpeg process; a
    :class:`MediaError` when it yields no frame at all."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    for at in stamps:
        command += [*(input_options or []), "-ss", f"{at:.3f}", *_input_args(source, headers)]
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
    except OSError:  # not found, not executable, not a program (a run checks first: require_ffmpeg)
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
    found = [frame if frame.startswith(b"\xff\xd8") else None for frame in frames]
    if not any(found):
        reason = stderr.splitlines()[-1] if stderr else f"exit code {process.returncode}, no frame"
        raise MediaError(f"ffmpeg could not read {len(stamps)} frames: {reason}")
    return found


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
    """``count`` frames at exactly spread times; a frame past the real end is skipped, not fatal."""
    if not duration:
        duration = probe_duration(source, ffprobe=_ffprobe_beside(ffmpeg), headers=headers)
    stamps = timestamps(duration, count)
    return [f for f in _positions(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers) if f]


SNAP = 0.005
"""Seconds past a keyframe time that its seek aims at, when the next keyframe is not known."""


def keyframe_plan(stamps: list[float], keys: list[float]) -> list[tuple[float, bool]]:
    """``(seconds, is a keyframe)`` for each point: the nearest keyframe not taken yet, else the exact time.

    Frames stay distinct and in order: a point takes the keyframe nearest it among those after
    the previous point's frame (so two points that land on the same keyframe take the next one),
    and only one less than a point spacing away, so the frames stay spread over the video. A
    point with no such keyframe (keyframes sparser than the points) keeps its exact time.
    """
    keys = sorted(set(keys))
    step = min((b - a for a, b in zip(stamps, stamps[1:], strict=False)), default=math.inf)
    plan: list[tuple[float, bool]] = []
    first, last = 0, -math.inf
    for at in stamps:
        first = bisect.bisect_right(keys, last, lo=first)
        nearest = bisect.bisect_left(keys, at, lo=first)
        best = min(keys[max(first, nearest - 1) : nearest + 1], key=lambda k: abs(k - at), default=None)
        if best is not None and abs(best - at) < step:
            plan.append((best, True))
            last = best
        else:
            plan.append((at, False))
            last = max(last, at)
    return plan


def _seek_targets(plan: list[tuple[float, bool]], keys: list[float], complete: bool) -> list[float]:
    """Where to seek for each planned keyframe: a little past it, so the seek lands on it and no other.

    With the whole keyframe list (``complete``) that is up to half way to the next keyframe
    (robust to a keyframe's presentation time differing from its decoding time by a frame or two).
    """
    keys = sorted(set(keys))
    targets = []
    for at, _ in plan:
        later = keys[bisect.bisect_right(keys, at)] if complete and bisect.bisect_right(keys, at) < len(keys) else None
        targets.append(at + (min((later - at) / 2, 0.5) if later is not None else SNAP))
    return targets


def probe_keyframes(
    source: str, stamps: list[float], *, ffprobe: str, headers: Mapping[str, str] | None = None
) -> list[float]:
    """The keyframe ffprobe's seek finds near each point (one packet read per point, nothing decoded)."""
    return _packet_keyframes(source, ",".join(f"{at:.3f}%+#1" for at in stamps), ffprobe=ffprobe, headers=headers)


def _packet_keyframes(source: str, intervals: str, *, ffprobe: str, headers: Mapping[str, str] | None) -> list[float]:
    """Sorted times of the video keyframes among the packets ffprobe reads in ``intervals`` (flags only)."""
    command = [
        ffprobe, "-v", "error", "-select_streams", "v:0", "-read_intervals", intervals,
        "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0",
    ]  # fmt: skip
    if headers and source.startswith(("http://", "https://")):
        command += ["-headers", "".join(f"{k}: {v}\r\n" for k, v in headers.items())]
    try:
        result = subprocess.run(command + [source], capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    keys = []
    for line in result.stdout.decode(errors="replace").splitlines():
        at, _, flags = line.partition(",")
        if flags.startswith("K"):
            try:
                keys.append(float(at))
            except ValueError:
                continue
    return sorted(set(keys))


def _concat_script(source: str, targets: list[float]) -> bytes:
    """An ffconcat list: the file once per frame, each entry starting at its seek target."""
    path = "file:" + os.path.abspath(source)
    quoted = "'" + path.replace("'", "'\\''") + "'"
    entries = "".join(f"file {quoted}\ninpoint {at:.3f}\noutpoint {at + 0.001:.3f}\n" for at in targets)
    return ("ffconcat version 1.0\n" + entries).encode()


def extract_keyframes(
    source: str,
    targets: list[float],
    *,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
    pictures: bytes | None = None,
) -> list[bytes]:
    """The keyframe at or before each target, decoding nothing else; one JPEG per target, in order.

    One ffmpeg process with one decoder. Cheapest, an H.264 MP4's keyframes read from the file
    (``pictures``, :meth:`.mp4.Keyframes.annexb`) go through a pipe: one open, one decode per
    frame. Else a local file goes through the concat demuxer, one entry per frame, so each seek
    reads a handful of packets (one input per frame would cost three times that: each decoder
    holds its picture back until the next keyframe arrives, so every input reads and decodes two
    keyframes), and a URL, or a file whose decoder gives more or fewer pictures than entries
    (HEVC with open GOPs), takes one seeking input per frame. Frames missing from that are a
    :class:`MediaError`.
    """
    skip = ["-skip_frame", "nokey", "-threads", "1"]
    output = [
        "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", f"settb=1,setpts=N,{_scale(max_side)}",
        "-fps_mode", "passthrough", "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1",
    ]  # fmt: skip
    what = f"{len(targets)} keyframes"
    head = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if pictures:
        command = [*head, "-threads", "1", "-f", "h264", "-i", "pipe:0", *output]
        frames = split_jpegs(_ffmpeg(command, what, stdin=pictures).stdout)
        if len(frames) == len(targets):
            return frames
        _log.debug("%d of %d keyframes decoded from the file's packets: seeking instead", len(frames), len(targets))
    if not source.startswith(("http://", "https://")):
        command = [*head, *skip, "-f", "concat", "-safe", "0", "-protocol_whitelist", "file,pipe", "-i", "pipe:0",
                   *output]  # fmt: skip
        frames = split_jpegs(_ffmpeg(command, what, stdin=_concat_script(source, targets)).stdout)
        if len(frames) == len(targets):
            return frames
        _log.debug("%d of %d keyframes from one decoder: one input per keyframe instead", len(frames), len(targets))
    found = _batch(source, targets, ffmpeg=ffmpeg, max_side=max_side, headers=headers,
                   input_options=[*skip, "-noaccurate_seek"])  # fmt: skip
    read = [frame for frame in found if frame is not None]
    if len(read) != len(targets):
        raise MediaError(f"ffmpeg read {len(read)} of {len(targets)} keyframes")
    return read


def extract_spread(
    source: str,
    *,
    duration: float | None,
    count: int,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None = None,
    exact: bool = False,
) -> list[tuple[float, bytes]]:
    """``count`` frames spread over the video with the time each one shows, in seconds.

    By default each is the keyframe nearest its evenly spaced point (:func:`keyframe_plan`):
    decoding one keyframe costs a fraction of decoding from the keyframe before a point up to
    it, and a frame a few seconds off its point tags the same. Points without a keyframe of
    their own are taken exactly (logged at debug level), as is everything with ``exact``.
    """
    if not duration:
        duration = probe_duration(source, ffprobe=_ffprobe_beside(ffmpeg), headers=headers)
    stamps = timestamps(duration, count)
    if exact or duration <= 0:
        return _exact(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers)
    index = None if source.startswith(("http://", "https://")) else mp4.keyframes(source)
    complete = index is not None
    keys = index.times if index else probe_keyframes(source, stamps, ffprobe=_ffprobe_beside(ffmpeg), headers=headers)
    plan = keyframe_plan(stamps, [k for k in keys if k < duration])
    chosen = [at for at, key in plan if key]
    missing = [at for at, key in plan if not key]
    if missing:
        _log.debug(
            "%d of %d frames at exact times: keyframes too sparse (%d found)", len(missing), len(plan), len(keys)
        )
    timed: dict[float, bytes] = {}
    if chosen:
        targets = _seek_targets([(at, True) for at in chosen], keys, complete)
        pictures = index.annexb(source, [bisect.bisect_left(index.times, at) for at in chosen]) if index else None
        try:
            timed.update(zip(chosen, extract_keyframes(source, targets, ffmpeg=ffmpeg, max_side=max_side,
                                                       headers=headers, pictures=pictures), strict=True))  # fmt: skip
        except MediaError as exc:
            _log.debug("keyframe sampling failed (%s): exact times instead", exc)
            return _exact(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers)
    if missing:
        timed.update(_exact(source, missing, ffmpeg=ffmpeg, max_side=max_side, headers=headers, strict=bool(timed)))
    return sorted(timed.items())


def _exact(
    source: str,
    stamps: list[float],
    *,
    ffmpeg: str,
    max_side: int,
    headers: Mapping[str, str] | None,
    strict: bool = False,
) -> list[tuple[float, bytes]]:
    """Frames at exactly ``stamps``; one past the real end is skipped (an error only if none is read
    and ``strict`` is off: with other frames in hand, missing ones are just left out)."""
    try:
        frames = _positions(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers)
    except MediaError:
        if strict:
            return []
        raise
    return [(at, frame) for at, frame in zip(stamps, frames, strict=True) if frame]


def _positions(
    source: str, stamps: list[float], *, ffmpeg: str, max_side: int, headers: Mapping[str, str] | None
) -> list[bytes | None]:
    """Each stamp's exact frame or None, in one process (else one per frame); a :class:`MediaError` if none."""
    if len(stamps) > 1 and os.name == "posix":
        try:
            frames = _batch(source, stamps, ffmpeg=ffmpeg, max_side=max_side, headers=headers)
            if any(frames):
                return frames
        except MediaError:
            pass
    found: list[bytes | None] = []
    failure: MediaError | None = None
    for at in stamps:
        try:
            found.append(extract_frame(source, at, ffmpeg=ffmpeg, max_side=max_side, headers=headers))
        except MediaError as exc:
            found.append(None)
            failure = exc
    if not any(found):
        raise failure or MediaError("no frame could be read")
    return found


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
    keys = _packet_keyframes(source, f"%+{KEYFRAME_WINDOW}", ffprobe=ffprobe, headers=headers)
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
