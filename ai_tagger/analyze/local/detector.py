"""NudeNet's 320n detector on CPU: loaded once, a scene's frames in one batch, names and frames.

Only the standard library is imported at module level. numpy, OpenCV and onnxruntime (the
optional ``requirements-local.txt``) are imported by :meth:`Detector.load`, so the names table
and :func:`aggregate` work, and import fast, without them: the hook and the gateway providers
never pay for them. Nothing here imports the plugin's gateway or Stash code, so a sidecar
server can serve the same detector.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_tagger.deps import LOCAL_REQUIREMENTS
from ai_tagger.media import pixels

MODEL_NAME = "nudenet-320n"
MODELS = (MODEL_NAME,)
INPUT_SIZE = 320
BATCH = 16
PRE_FLOOR = 0.2
FLOOR = 0.25
"""NudeNet keeps boxes scoring at least this (its non-maximum suppression threshold)."""
NMS_OVERLAP = 0.45

NAMES: Mapping[str, str] = {
    "FACE_FEMALE": "Female Face",
    "FACE_MALE": "Male Face",
    "FEMALE_BREAST_EXPOSED": "Exposed Breasts",
    "FEMALE_GENITALIA_EXPOSED": "Exposed Female Genitalia",
    "MALE_GENITALIA_EXPOSED": "Exposed Male Genitalia",
    "MALE_BREAST_EXPOSED": "Exposed Male Chest",
    "BUTTOCKS_EXPOSED": "Exposed Buttocks",
    "ANUS_EXPOSED": "Exposed Anus",
    "FEET_EXPOSED": "Bare Feet",
}
"""Reported by default: NudeNet class -> tag name (users map these with ``synonyms``)."""

OPT_IN_NAMES: Mapping[str, str] = {
    "FEMALE_BREAST_COVERED": "Covered Breasts",
    "FEMALE_GENITALIA_COVERED": "Covered Female Genitalia",
    "BUTTOCKS_COVERED": "Covered Buttocks",
    "ANUS_COVERED": "Covered Anus",
    "FEET_COVERED": "Covered Feet",
    "ARMPITS_COVERED": "Covered Armpits",
    "ARMPITS_EXPOSED": "Exposed Armpits",
    "BELLY_COVERED": "Covered Belly",
    "BELLY_EXPOSED": "Exposed Belly",
}
"""Reported only when the rules file's ``allow`` list names them: most pictures of people show
these, so by default they would tag nearly everything."""

RECENT = 64
"""Pictures whose detections the run's shared detector remembers: the face analyzer asks again for
the face boxes of the frames the local provider just looked at, and gets them without a second
inference. A detector from :meth:`Detector.load` (the sidecar's) remembers nothing."""
_SHARED: list[Detector] = []
_SHARED_LOCK = threading.Lock()


class DetectorUnavailable(Exception):
    """The optional dependencies are missing or the model cannot be loaded; the message says what to run."""


class PictureError(Exception):
    """One picture cannot be decoded; it fails its item only."""


class PictureTooLarge(PictureError):
    """One picture declares more pixels than :data:`~ai_tagger.media.pixels.MAX_PIXELS`; it was not decoded."""


@dataclass(frozen=True)
class Label:
    """One tag for an item: the best score of its class and the 1-based frames that show it."""

    name: str
    score: float
    frames: tuple[int, ...]
    opt_in: bool = False


def install_command() -> str:
    """The exact command that installs the local model into the Python running this code."""
    return f"{sys.executable} -m pip install -r {LOCAL_REQUIREMENTS}"


def tag_name(detector_class: str) -> tuple[str, bool] | None:
    """``(tag name, opt-in)`` for a NudeNet class; None for a class this table does not know."""
    if detector_class in NAMES:
        return NAMES[detector_class], False
    if detector_class in OPT_IN_NAMES:
        return OPT_IN_NAMES[detector_class], True
    return None


def aggregate(frames: Sequence[Sequence[Mapping[str, Any]]]) -> list[Label]:
    """Per-frame detections (NudeNet's ``{"class", "score", "box"}``) -> one label per tag.

    A label's score is the highest score of its class in any frame; its frames are the frames
    with a detection of it at or above :data:`FLOOR`. Best score first, then by name.
    """
    best: dict[str, float] = {}
    shown: dict[str, set[int]] = {}
    opt_in: dict[str, bool] = {}
    for number, detections in enumerate(frames, 1):
        for detection in detections:
            named = tag_name(str(detection.get("class")))
            score = float(detection.get("score") or 0.0)
            if named is None or score < FLOOR:
                continue
            name = named[0]
            opt_in[name] = named[1]
            best[name] = max(best.get(name, 0.0), min(score, 1.0))
            shown.setdefault(name, set()).add(number)
    labels = [Label(name, best[name], tuple(sorted(shown[name])), opt_in[name]) for name in best]
    return sorted(labels, key=lambda label: (-label.score, label.name))


def available_cores() -> int:
    """The cores this process may use, container limits included."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_threads() -> int:
    """The cores this process may use, at most 8: past that a 320x320 batch gains little and a
    shared server loses more."""
    return max(1, min(8, available_cores()))


class Detector:
    """One onnxruntime session for the whole run; :meth:`detect` may be called from any thread.

    Decoding and pre-processing run in the caller's thread; the inference itself runs one batch
    at a time on all of :func:`cpu_threads` (``parallel`` at a time in the sidecar server), so
    concurrent items queue instead of fighting for the cores, and idle inference threads sleep
    rather than spin while ffmpeg extracts frames.
    """

    def __init__(self, session: Any, nudenet: Any, numpy: Any, cv2: Any, parallel: int = 1) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._nudenet = nudenet
        self._labels: list[str] = list(getattr(nudenet, "__labels"))
        self._np = numpy
        self._cv2 = cv2
        self._runs = threading.BoundedSemaphore(parallel)
        self._recent: OrderedDict[bytes, list[dict[str, Any]]] = OrderedDict()
        self.remember = 0
        self._recent_lock = threading.Lock()

    @classmethod
    def shared(cls) -> Detector:
        """The process's one detector (the local provider and the face analyzer share it), loaded once."""
        with _SHARED_LOCK:
            if not _SHARED:
                detector = cls.load()
                detector.remember = RECENT
                _SHARED.append(detector)
            return _SHARED[0]

    @classmethod
    def load(cls, threads: int | None = None, parallel: int = 1) -> Detector:
        """Import the optional dependencies and load the model; :class:`DetectorUnavailable` if that fails.

        ``parallel`` batches may run at once (the sidecar's ``--workers``), each on ``threads``.
        """
        # OpenCV's own limit for formats whose header we do not read (checked before decoding too).
        os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(pixels.MAX_PIXELS))
        try:
            import cv2
            import nudenet.nudenet as nudenet
            import numpy
            import onnxruntime
        except (ImportError, OSError) as exc:
            raise DetectorUnavailable(
                f"the local model needs nudenet and onnxruntime, which this Python cannot import ({exc}); "
                f"install them with: {install_command()}"
            ) from None
        if not all(hasattr(nudenet, f) for f in ("_read_image", "__labels")):
            raise DetectorUnavailable(f"this nudenet version is not supported; install with: {install_command()}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or cpu_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: ffmpeg and Stash share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = Path(nudenet.__file__).with_name("320n.onnx")
        try:
            session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise DetectorUnavailable(f"cannot load the local model {model}: {exc}") from None
        return cls(session, nudenet, numpy, cv2, parallel)

    def _prepare(self, number: int, picture: bytes) -> tuple[Any, tuple[Any, ...]]:
        try:
            pixels.check_data(picture, what=f"picture {number}")
        except pixels.TooManyPixels as exc:
            raise PictureTooLarge(str(exc)) from None
        array = self._np.frombuffer(picture, self._np.uint8)
        image = self._cv2.imdecode(array, self._cv2.IMREAD_COLOR) if array.size else None
        if image is None or image.size == 0:
            raise PictureError(f"the local model cannot decode picture {number}")
        blob, *meta = self._nudenet._read_image(image, INPUT_SIZE)
        return blob, tuple(meta)

    def _postprocess(self, output: Any, meta: tuple[Any, ...]) -> list[dict[str, Any]]:
        """NudeNet's ``_postprocess`` for one picture's output, with numpy instead of a Python loop.

        Same arithmetic in the same order, so the same boxes and scores (a test compares them);
        NudeNet's loop over all 2,100 candidate boxes took 15 % of the detector's time.
        """
        np = self._np
        _, _, x_pad, y_pad, width, height = meta
        rows = np.transpose(np.squeeze(output, 0))
        scores = rows[:, 4:]
        best = np.amax(scores, axis=1)
        keep = best >= PRE_FLOOR
        if not keep.any():
            return []
        rows, best, class_ids = rows[keep], best[keep], np.argmax(scores[keep], axis=1)
        x, y, w, h = (rows[:, i] for i in range(4))
        x, y = x - w / 2, y - h / 2
        x, w = x * (width + x_pad) / INPUT_SIZE, w * (width + x_pad) / INPUT_SIZE
        y, h = y * (height + y_pad) / INPUT_SIZE, h * (height + y_pad) / INPUT_SIZE
        x, y = np.clip(x, 0, width), np.clip(y, 0, height)
        w, h = np.minimum(w, width - x), np.minimum(h, height - y)
        boxes = np.stack([x, y, w, h], axis=1)
        kept = self._cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), FLOOR, NMS_OVERLAP)
        return [
            {"class": self._labels[class_ids[i]], "score": float(best[i]), "box": [int(v) for v in boxes[i]]}
            for i in kept
        ]

    def detect(self, pictures: Sequence[bytes]) -> list[list[dict[str, Any]]]:
        """NudeNet's detections for each picture (encoded JPEG/PNG bytes), in order; pictures seen
        lately are answered from memory (by the shared detector)."""
        if not self.remember:
            return self._detect(pictures, range(1, len(pictures) + 1))
        keys = [hashlib.blake2b(picture, digest_size=16).digest() for picture in pictures]
        with self._recent_lock:
            known = [self._recent.get(key) for key in keys]
        missing = [i for i, found in enumerate(known) if found is None]
        if missing:
            fresh = self._detect([pictures[i] for i in missing], [i + 1 for i in missing])
            with self._recent_lock:
                for i, found in zip(missing, fresh, strict=True):
                    known[i] = found
                    self._recent[keys[i]] = found
                    self._recent.move_to_end(keys[i])
                while len(self._recent) > self.remember:
                    self._recent.popitem(last=False)
        return [list(found or []) for found in known]

    def _detect(self, pictures: Sequence[bytes], numbers: Sequence[int]) -> list[list[dict[str, Any]]]:
        """Inference on ``pictures``; ``numbers`` are their 1-based places in the caller's list (for errors)."""
        results: list[list[dict[str, Any]]] = []
        for start in range(0, len(pictures), BATCH):
            chunk = zip(numbers[start : start + BATCH], pictures[start : start + BATCH], strict=True)
            prepared = [self._prepare(number, picture) for number, picture in chunk]
            batch = self._np.vstack([blob for blob, _ in prepared])
            with self._runs:
                output = self._session.run(None, {self._input: batch})[0]
            results += [self._postprocess(output[i : i + 1], meta) for i, (_, meta) in enumerate(prepared)]
        return results
