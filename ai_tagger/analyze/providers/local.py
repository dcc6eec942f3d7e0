"""``local``: the built-in NudeNet detector, in this process, on CPU: no gateway, no network.

``gatewayUrl``, ``apiKey`` and the vocabulary settings do not apply; ``model`` names the
detector (``nudenet-320n``). The detector is loaded once, in :meth:`preflight`, before any item,
so missing optional dependencies end the run with the command that installs them.
"""

from __future__ import annotations

from typing import ClassVar

from ai_tagger.analyze.gateway.base import Candidate, GatewayConfig, TagAnswer, TagRequest, register
from ai_tagger.analyze.local.detector import Detector, DetectorUnavailable, PictureError, aggregate
from ai_tagger.deps import TASK_NAME
from ai_tagger.errors import GatewayError, GatewayFatal


@register
class LocalProvider:
    name: ClassVar[str] = "local"

    def __init__(self, config: GatewayConfig) -> None:
        """``config.model`` is already checked to be one of the detector's models."""
        self.detector: Detector | None = None

    def preflight(self) -> None:
        try:
            self.detector = Detector.shared()
        except DetectorUnavailable as exc:
            raise GatewayFatal(
                f'{exc}; or run the task "{TASK_NAME}" (Settings > Tasks > Plugin Tasks > AI Tagger), which '
                "installs them into the plugin's own folder when provider is local"
            ) from None

    def describe(self, request: TagRequest) -> TagAnswer:
        if self.detector is None:
            self.preflight()
        assert self.detector is not None
        try:
            per_frame = self.detector.detect(request.pictures)
        except PictureError as exc:
            raise GatewayError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors fail this item, not the run
            raise GatewayError(f"the local model failed: {type(exc).__name__}: {exc}") from None
        candidates = [
            Candidate(name=label.name, confidence=label.score, frames=label.frames, opt_in=label.opt_in)
            for label in aggregate(per_frame)
        ]
        return TagAnswer(candidates)
