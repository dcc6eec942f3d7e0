"""``labels``: a plain REST contract for local classifier servers (CLIP, ONNX, WD14 style).

    POST {gatewayUrl}/labels   {"model": "<model>", "images": ["<base64 JPEG>", ...]}
    200                        {"labels": [{"name": "Dog", "score": 0.91, "frames": [1, 3]}, ...]}

``score`` is 0..1; ``frames`` (optional) lists the 1-based images showing the label; ``opt_in``
(optional) marks a label applied only when the rules' allow list names it. A server
may offer ``GET {gatewayUrl}/models`` (OpenAI list shape) for the preflight check. The key, if
any, is sent as ``Authorization: <authScheme> <apiKey>``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai_tagger.analyze.gateway.base import Candidate, GatewayConfig, TagAnswer, TagRequest, register
from ai_tagger.analyze.gateway.http import HttpFailure, RetryingSession, check_models, failure_error
from ai_tagger.errors import GatewayError

if TYPE_CHECKING:
    from ai_tagger.settings import Settings


class Label(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    score: float
    frames: list[int] = Field(default_factory=list)
    opt_in: bool = False


class LabelsAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    labels: list[Label]


@register
class LabelsProvider:
    name: ClassVar[str] = "labels"

    def __init__(self, config: GatewayConfig | Settings) -> None:
        config = GatewayConfig.of(config)
        self.http = RetryingSession.for_gateway(config)
        self.base_url = str(config.url)
        self.model = str(config.model)

    def preflight(self) -> None:
        check_models(self.http, self.base_url, self.model)

    def describe(self, request: TagRequest) -> TagAnswer:
        payload = {"model": self.model, "images": [base64.b64encode(p).decode("ascii") for p in request.pictures]}
        try:
            response = self.http.request("POST", f"{self.base_url}/labels", json=payload)
            answer = LabelsAnswer.model_validate(response.json())
        except HttpFailure as failure:
            raise failure_error(failure, self.base_url, self.model) from None
        except (ValueError, ValidationError):
            raise GatewayError('the classifier\'s answer is not {"labels": [...]}') from None
        candidates = []
        for label in answer.labels:
            try:
                candidates.append(
                    Candidate(name=label.name, confidence=label.score, frames=tuple(label.frames), opt_in=label.opt_in)
                )
            except ValidationError:
                continue
        return TagAnswer(candidates)
