"""Match a face against every performer's faces: nearest performer, clearly ahead of the next one.

All embeddings sit in one float32 matrix (10,000 performers x a few faces x 128 floats is a few
MB), rows grouped by performer, so one face is matched with one matrix-vector product (squared
distances as ``|row|^2 - 2 row.face + |face|^2``, the rows' norms computed once) and a
per-performer minimum (``numpy.minimum.reduceat``), with no Python loop over performers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MARGIN = 0.06
"""The nearest performer must be at least this much nearer (in dlib's face distance) than the
second nearest, or the face is too ambiguous to name anyone."""


@dataclass(frozen=True)
class Match:
    """A face's nearest performer: ``score`` is 1 - dlib's face distance (0.6 = distance 0.4)."""

    performer_id: str
    score: float
    distance: float


def score_of(distance: float) -> float:
    return max(0.0, min(1.0, 1.0 - distance))


class FaceIndex:
    def __init__(self, performers: Sequence[str], starts: Any, matrix: Any, numpy: Any) -> None:
        self._performers = list(performers)
        self._starts = starts
        self._matrix = matrix
        self._norms = numpy.einsum("ij,ij->i", matrix, matrix)
        self._np = numpy

    @classmethod
    def build(cls, rows: Iterable[tuple[str, bytes]]) -> FaceIndex:
        """From ``(performer id, packed float32 embedding)`` rows grouped by performer (the store's order)."""
        import numpy

        performers: list[str] = []
        starts: list[int] = []
        blobs: list[bytes] = []
        for number, (performer_id, blob) in enumerate(rows):
            if not performers or performers[-1] != performer_id:
                performers.append(performer_id)
                starts.append(number)
            blobs.append(blob)
        matrix = numpy.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, 128) if blobs else numpy.zeros((0, 128))
        matrix = numpy.array(matrix, dtype=numpy.float32, order="C")  # owned: the joined bytes can go
        return cls(performers, numpy.asarray(starts, dtype=numpy.intp), matrix, numpy)

    def __len__(self) -> int:
        return len(self._performers)

    @property
    def nbytes(self) -> int:
        return int(self._matrix.nbytes + self._starts.nbytes + self._norms.nbytes)

    def nearest(self, embedding: Sequence[float]) -> tuple[Match | None, float]:
        """The nearest performer and the distance to the second nearest (inf with one performer)."""
        np = self._np
        if not self._performers:
            return None, float("inf")
        face = np.asarray(embedding, dtype=np.float32)
        # einsum, not ``@``: a matrix-vector product this small is memory-bound, and BLAS's threads
        # only fight for the cores that ffmpeg and Stash are using (3-10x slower on a busy machine).
        squared = self._norms - 2.0 * np.einsum("ij,j->i", self._matrix, face) + float(np.dot(face, face))
        per_performer = np.sqrt(np.maximum(np.minimum.reduceat(squared, self._starts), 0.0))
        if len(per_performer) == 1:
            best, second = 0, float("inf")
        else:
            two = np.argpartition(per_performer, 1)[:2]
            best, other = (two[0], two[1]) if per_performer[two[0]] <= per_performer[two[1]] else (two[1], two[0])
            second = float(per_performer[other])
        distance = float(per_performer[best])
        return Match(self._performers[int(best)], score_of(distance), distance), second

    def match(self, embedding: Sequence[float], floor: float) -> Match | None:
        """The nearest performer when its score reaches ``floor`` and no other performer comes close."""
        found, second = self.nearest(embedding)
        if found is None or found.score < floor or second - found.distance < MARGIN:
            return None
        return found
