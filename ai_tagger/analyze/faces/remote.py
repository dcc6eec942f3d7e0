"""Face embeddings from ``python3 -m ai_tagger.serve`` (``POST /faces``), for a plugin that cannot
import dlib (Stash's Alpine image): the same boxes and embeddings, computed on the sidecar.

Only the sidecar the user configured (``faceServerUrl``) ever sees a picture.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import requests

from ai_tagger.analyze.faces.engine import Face, PictureError
from ai_tagger.errors import RunError

TIMEOUT = (5, 120)


class FaceServerError(RunError):
    """The face server cannot be reached or does not serve faces: the run stops, nothing half-done."""


class RemoteFaceEngine:
    """Same ``faces`` call as :class:`~ai_tagger.analyze.faces.engine.FaceEngine`; boxes are the
    sidecar's (its NudeNet, else dlib's detector), so the caller's ``boxes`` and ``memo`` are unused."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/") + "/faces"
        self._session = requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def faces(
        self, picture: bytes, boxes: Sequence[tuple[int, int, int, int]] | None = None, memo: Any = None
    ) -> list[Face]:
        body = {"images": [base64.b64encode(picture).decode("ascii")]}
        try:
            response = self._session.post(self.url, json=body, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise FaceServerError(f"cannot reach the face server at {self.url}: {type(exc).__name__}") from None
        if response.status_code == 422:
            raise PictureError(_message(response))
        if not response.ok:
            status = response.status_code
            raise FaceServerError(f"the face server at {self.url} answered HTTP {status}: {_message(response)}")
        try:
            [found] = response.json()["faces"]
            return [Face(tuple(int(v) for v in f["box"]), tuple(float(v) for v in f["embedding"])) for f in found]  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError):
            raise FaceServerError(f"the face server at {self.url} answered something that is not faces") from None


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
