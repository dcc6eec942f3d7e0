"""``openai``: any OpenAI-compatible chat-completions server.

LiteLLM, APIPark, Ollama (``/v1``), vLLM, llama.cpp server, OpenRouter and OpenAI itself all
speak this. Pictures go as ``image_url`` data URIs; the answer is asked for with a JSON schema
and read leniently, since several servers ignore ``response_format``.
"""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

from ai_tagger.gateway.answer import ANSWER_SCHEMA, MalformedAnswer, parse_answer
from ai_tagger.gateway.base import GatewayError, GatewayFatal, TagAnswer, TagRequest, Usage, register
from ai_tagger.gateway.http import HttpFailure, RetryingSession
from ai_tagger.settings import Settings

PROMPT_VERSION = "1"

SYSTEM_PROMPT = (
    "You tag media for a personal library. Look at the pictures and name what they show: "
    "setting, objects, activities, people count, style. Answer only with JSON of the form "
    '{"tags": [{"name": "<tag>", "confidence": <0..1>, "frames": [<numbers of the pictures showing it>]}]}. '
    "Use short tag names in Title Case. Confidence is how sure you are the tag applies."
)
STRICT_REMINDER = (
    "Your previous answer could not be read. Reply with the JSON object only: no prose, no code fence."
)


def _data_uri(picture: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(picture).decode("ascii")


def _error_message(failure: HttpFailure) -> str:
    """The server's own error text, when it sent one."""
    try:
        error = json.loads(failure.body).get("error")
    except (ValueError, AttributeError):
        return failure.body[:200]
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or "")[:300]


@register("openai")
class OpenAIProvider:
    name: ClassVar[str] = "openai"

    def __init__(self, settings: Settings) -> None:
        settings.require_gateway()
        self.base_url = str(settings.gateway_url)
        self.model = str(settings.model)
        headers = {"Content-Type": "application/json"}
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        if key:
            scheme = settings.auth_scheme.strip()
            headers["Authorization"] = key if scheme.lower() in ("", "none") else f"{scheme} {key}"
        self.http = RetryingSession(headers=headers, timeout=settings.request_timeout)
        self.use_schema = True

    def preflight(self) -> None:
        try:
            response = self.http.request("GET", f"{self.base_url}/models", timeout=30, retries=1)
        except HttpFailure as failure:
            raise self._fatal(failure) from None
        try:
            served = [m.get("id") for m in response.json().get("data", [])]
        except (ValueError, AttributeError):
            return
        if served and self.model not in served:
            shown = ", ".join(str(s) for s in served[:10])
            raise GatewayFatal(
                f"model {self.model!r} is not served by {self.base_url}; it serves: {shown}. Fix 'model' in settings."
            )

    def _fatal(self, failure: HttpFailure) -> GatewayError:
        """Map a failure to a per-item error, or to a run-ending one with what to fix."""
        detail = _error_message(failure)
        if failure.status in (401, 403):
            return GatewayFatal(
                f"the gateway at {self.base_url} refused the API key (HTTP {failure.status}: {detail}). "
                "Fix 'apiKey' (or 'authScheme') in settings."
            )
        if failure.status == 404:
            return GatewayFatal(
                f"the gateway at {self.base_url} answered 404 ({detail}): check that 'gatewayUrl' ends in /v1 "
                f"and that model {self.model!r} exists."
            )
        if failure.status is None:
            return GatewayFatal(f"the gateway is unreachable: {failure}. Check 'gatewayUrl' ({self.base_url}).")
        return GatewayError(f"gateway answered {failure}: {detail}")

    def _payload(self, request: TagRequest, *, strict: bool) -> dict[str, Any]:
        text = [
            f"{len(request.pictures)} picture(s) from one {request.kind}, numbered 1 to {len(request.pictures)}.",
        ]
        if request.vocabulary:
            text.append("Prefer these tag names when they fit: " + "; ".join(request.vocabulary))
        if request.context:
            text.append(request.context)
        if strict:
            text.append(STRICT_REMINDER)
        content: list[dict[str, Any]] = [{"type": "text", "text": "\n".join(text)}]
        for number, picture in enumerate(request.pictures, 1):
            content.append({"type": "text", "text": f"Picture {number}:"})
            content.append({"type": "image_url", "image_url": {"url": _data_uri(picture)}})
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}],
            "temperature": 0,
        }
        if self.use_schema:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tags", "schema": ANSWER_SCHEMA, "strict": True},
            }
        return payload

    def _complete(self, request: TagRequest, *, strict: bool) -> tuple[str, Usage]:
        url = f"{self.base_url}/chat/completions"
        try:
            response = self.http.request("POST", url, json=self._payload(request, strict=strict))
        except HttpFailure as failure:
            if failure.status == 400 and self.use_schema and "response_format" in failure.body:
                self.use_schema = False
                return self._complete(request, strict=strict)
            raise self._fatal(failure) from None
        try:
            body = response.json()
            message = body["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise GatewayError("the gateway's answer is not a chat completion") from None
        usage = body.get("usage") or {}
        return (
            message.get("content") or "",
            Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
        )

    def describe(self, request: TagRequest) -> TagAnswer:
        text, usage = self._complete(request, strict=False)
        try:
            return TagAnswer(parse_answer(text), usage)
        except MalformedAnswer:
            pass
        text, retry_usage = self._complete(request, strict=True)
        usage.add(retry_usage)
        try:
            return TagAnswer(parse_answer(text), usage, calls=2)
        except MalformedAnswer as exc:
            raise GatewayError(str(exc)) from None
