"""``openai``: any OpenAI-compatible chat-completions server.

LiteLLM, APIPark, Ollama (``/v1``), vLLM, llama.cpp server, OpenRouter and OpenAI itself all
speak this. Pictures go as ``image_url`` data URIs; the answer is asked for with a JSON schema
and read leniently, since several servers ignore ``response_format``.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from ai_tagger.gateway.answer import MalformedAnswer, answer_schema, parse_answer
from ai_tagger.gateway.base import GatewayConfig, GatewayError, TagAnswer, TagRequest, Usage, register
from ai_tagger.gateway.http import HttpFailure, RetryingSession, check_models, failure_error
from ai_tagger.gateway.prompt import SYSTEM_PROMPT, user_text


def _data_uri(picture: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(picture).decode("ascii")


@register
class OpenAIProvider:
    name: ClassVar[str] = "openai"

    def __init__(self, config: GatewayConfig) -> None:
        self.http = RetryingSession.for_gateway(config)
        self.base_url = str(config.url)
        self.model = str(config.model)
        self.use_schema = True

    def preflight(self) -> None:
        check_models(self.http, self.base_url, self.model)

    def _payload(self, request: TagRequest, *, strict: bool) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": user_text(request, strict=strict)}]
        for number, picture in enumerate(request.pictures, 1):
            image: dict[str, Any] = {"url": _data_uri(picture)}
            if request.detail != "auto":
                image["detail"] = request.detail
            if not request.grid:
                content.append({"type": "text", "text": f"Frame {number}:"})
            content.append({"type": "image_url", "image_url": image})
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}],
            "temperature": 0,
        }
        if self.use_schema:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tags", "schema": answer_schema(request.allowed_names), "strict": True},
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
            raise failure_error(failure, self.base_url, self.model) from None
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
