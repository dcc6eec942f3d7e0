"""Find faces in a picture and embed each as dlib's 128-d ResNet descriptor.

The models are the CC0 files that ``face-recognition-models`` ships (5-point landmarks and the
ResNet), loaded with dlib directly: the ``face_recognition`` package would add a dependency on
``pkg_resources`` and an abandoned API for three calls. Faces come from NudeNet's face boxes when
the local detector ran (it finds faces dlib's HOG detector misses, such as a head bent down),
else from dlib's HOG detector. Loaded once per run; :meth:`FaceEngine.faces` is thread-safe
(dlib's calls are serialised: its models are not documented as re-entrant).
"""

from __future__ import annotations

import importlib.util
import io
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ai_tagger.deps import FACES_REQUIREMENTS

LANDMARKS = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"
MAX_SIDE = 1024
"""Pictures are shrunk to this long side before detection: HOG's cost grows with the pixels, and
a face smaller than 1/20 of a 1024-pixel picture is too small to recognise anyway."""
MIN_FACE = 20
"""Faces narrower than this many pixels (after shrinking) are ignored: their embeddings are noise."""
HOG_FLOOR = 0.3
"""dlib's HOG detections scoring below this are dropped: on the astronaut photo the false faces
(her shoulder patch) score 0.12 and below, her face 1.16 and above."""
FACE_CLASSES = ("FACE_FEMALE", "FACE_MALE")
"""NudeNet's classes whose boxes are faces."""
BOX_FLOOR = 0.3
"""NudeNet face boxes scoring below this are not trusted as faces."""


SAME_CROP = 2.0
"""Mean absolute difference (0-255 grey levels, on the 32x32 face chip aligned on its landmarks)
under which a face is the same picture as one already embedded for this item: its embedding is
reused. A still shot or a static camera repeats the same face frame after frame; the ResNet is
90 % of the cost of recognising a face, and identical pixels give an identical embedding."""
THUMB = 32


class FaceMemo:
    """The faces already embedded for one item: thumbnails of their crops and their embeddings."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, tuple[float, ...]]] = []
        self.reused = 0


class Embedder(Protocol):
    """Finds and embeds faces: :class:`FaceEngine` in process, or the sidecar's ``/faces``."""

    def faces(
        self,
        picture: bytes,
        boxes: Sequence[tuple[int, int, int, int]] | None = None,
        memo: FaceMemo | None = None,
    ) -> list[Face]: ...


class FacesUnavailable(Exception):
    """dlib, numpy or the model files are missing; the message names the command that installs them."""


class PictureError(Exception):
    """One picture cannot be decoded; it fails its item only."""


@dataclass(frozen=True)
class Face:
    """One face: its box in the picture's pixels (x, y, width, height) and its unit-free 128-d embedding."""

    box: tuple[int, int, int, int]
    embedding: tuple[float, ...]

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


def install_command() -> str:
    """The command that installs the face packages into the Python running this code."""
    return f"{sys.executable} -m pip install -r {FACES_REQUIREMENTS}"


def model_folder() -> Path:
    """Where ``face_recognition_models`` keeps its model files, found without importing it (its
    ``__init__`` imports ``pkg_resources``, which new setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "models"
        if (folder / LANDMARKS).is_file() and (folder / RESNET).is_file():
            return folder
    raise FacesUnavailable(
        "recognizing performers needs the face-recognition-models package, which this Python cannot find; "
        f"install it with: {install_command()}"
    )


def face_boxes(detections: Sequence[dict[str, Any]]) -> list[tuple[int, int, int, int]]:
    """The face boxes among one picture's NudeNet detections (``{"class", "score", "box"}``)."""
    return [
        tuple(int(v) for v in d["box"])  # type: ignore[misc]
        for d in detections
        if d.get("class") in FACE_CLASSES and float(d.get("score") or 0) >= BOX_FLOOR and len(d.get("box") or ()) == 4
    ]


class FaceEngine:
    def __init__(self, dlib: Any, numpy: Any, folder: Path) -> None:
        self._dlib = dlib
        self._np = numpy
        self._hog = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(folder / LANDMARKS))
        self._resnet = dlib.face_recognition_model_v1(str(folder / RESNET))
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> FaceEngine:
        """Import dlib and numpy and load both models; :class:`FacesUnavailable` says what to install."""
        try:
            import dlib
            import numpy
        except (ImportError, OSError) as exc:
            raise FacesUnavailable(
                f"recognizing performers needs dlib-bin, which this Python cannot import ({exc}); "
                f"install it with: {install_command()}"
            ) from None
        folder = model_folder()
        try:
            return cls(dlib, numpy, folder)
        except RuntimeError as exc:
            raise FacesUnavailable(f"cannot load the face models in {folder}: {exc}") from None

    def decode(self, picture: bytes) -> tuple[Any, float]:
        """``(RGB array shrunk to MAX_SIDE, scale from the original's pixels to the array's)``."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(picture)) as opened:
                original = opened.width
                opened.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a fraction of the size, much faster
                image = opened.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise PictureError(f"cannot decode the picture: {exc}") from None
        if not original or not image.width:
            raise PictureError("the picture is empty")
        if max(image.size) > MAX_SIDE:
            shrink = MAX_SIDE / max(image.size)
            image = image.resize((max(1, round(image.width * shrink)), max(1, round(image.height * shrink))))
        # NudeNet's boxes are in the original's pixels; draft() may already have shrunk the decode.
        return self._np.asarray(image), image.width / original

    def _chip(self, array: Any, shape: Any) -> Any:
        """The face aligned on its landmarks, THUMB x THUMB grey levels: the same face in the next
        frame gives the same chip even when its box moved by a few pixels (NudeNet's boxes jitter)."""
        chip = self._dlib.get_face_chip(array, shape, size=THUMB, padding=0.25)
        return self._np.asarray(chip, dtype=self._np.float32).mean(axis=2)

    def _embed(self, array: Any, rect: Any, memo: FaceMemo | None) -> tuple[float, ...]:
        shape = self._landmarks(array, rect)
        chip = self._chip(array, shape) if memo is not None else None
        if memo is not None:
            for seen, embedding in memo.seen:
                if float(self._np.abs(seen - chip).mean()) < SAME_CROP:
                    memo.reused += 1
                    return embedding
        embedding = tuple(float(v) for v in self._resnet.compute_face_descriptor(array, shape))
        if memo is not None:
            memo.seen.append((chip, embedding))
        return embedding

    def faces(
        self,
        picture: bytes,
        boxes: Sequence[tuple[int, int, int, int]] | None = None,
        memo: FaceMemo | None = None,
    ) -> list[Face]:
        """Every face in ``picture``, largest first. ``boxes`` (NudeNet's faces, in the picture's
        pixels) replace dlib's HOG detector when given, even empty: NudeNet already looked.
        ``memo`` (one per item) reuses the embedding of a face crop identical to one seen before."""
        array, scale = self.decode(picture)
        height, width = array.shape[:2]
        dlib = self._dlib
        with self._lock:
            if boxes is None:
                found_rects, _, _ = self._hog.run(array, 1 if max(width, height) <= 640 else 0, HOG_FLOOR)
                rects = list(found_rects)
            else:
                rects = [
                    dlib.rectangle(
                        max(0, round(x * scale)),
                        max(0, round(y * scale)),
                        min(width - 1, round((x + w) * scale)),
                        min(height - 1, round((y + h) * scale)),
                    )
                    for x, y, w, h in boxes
                ]
            rects = [r for r in rects if r.width() >= MIN_FACE]
            found = []
            for rect in rects:
                vector = self._embed(array, rect, memo)
                box = (
                    round(rect.left() / scale),
                    round(rect.top() / scale),
                    round(rect.width() / scale),
                    round(rect.height() / scale),
                )
                found.append(Face(box, vector))
        return sorted(found, key=lambda face: -face.area)
