"""``openai``: any OpenAI-compatible chat-completions server.

LiteLLM, APIPark, Ollama (``/v1``), vLLM, llama.cpp server, OpenRouter and OpenAI itself all
speak this. Pictures go as ``image_url`` data URIs; the answer is asked for with a JSON schema
and read leniently, since several servers ignore ``response_format``.

The request stays plain chat-completions (``max_tokens`` included): thinking switches differ per
server and some reject the others', so they are set server-side (see README). Reasoning that a
server returns in ``reasoning_content``/``reasoning`` is never read as the answer.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ai_tagger.analyze.gateway.answer import MalformedAnswer, Reading, answer_schema, read_answer
from ai_tagger.analyze.gateway.base import GatewayConfig, Note, TagAnswer, TagRequest, Usage, register
from ai_tagger.analyze.gateway.http import HttpFailure, RetryingSession, check_models, failure_error
from ai_tagger.analyze.gateway.prompt import SYSTEM_PROMPT, user_text
from ai_tagger.errors import GatewayError

if TYPE_CHECKING:
    from ai_tagger.settings import Settings


def _data_uri(picture: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(picture).decode("ascii")


MAX_RETRY_TOKENS = 32768


@dataclass(frozen=True)
class Completion:
    """One chat completion: the answer text, what it cost, and whether the token limit cut it."""

    text: str
    usage: Usage
    max_tokens: int
    cut: bool = False
    reasoned: bool = False


def _content(message: dict[str, Any]) -> str:
    """``content`` as text; some servers send a list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


@register
class OpenAIProvider:
    name: ClassVar[str] = "openai"

    def __init__(self, config: GatewayConfig | Settings) -> None:
        config = GatewayConfig.of(config)
        self.http = RetryingSession.for_gateway(config)
        self.base_url = str(config.url)
        self.model = str(config.model)
        self.use_schema = True
        self.token_field = "max_tokens"
        self.max_tokens = config.answer_tokens
        self.retry_tokens = max(self.max_tokens, min(2 * self.max_tokens, MAX_RETRY_TOKENS))
        self._told = threading.Lock()
        self._told_zero_based = False

    def preflight(self) -> None:
        check_models(self.http, self.base_url, self.model)

    def _payload(self, request: TagRequest, *, strict: bool, max_tokens: int) -> dict[str, Any]:
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
            self.token_field: max_tokens,
        }
        if self.use_schema:
            schema = answer_schema(request.allowed_names, describe=request.describe)
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tags", "schema": schema, "strict": True},
            }
        return payload

    def _complete(self, request: TagRequest, *, strict: bool, max_tokens: int) -> Completion:
        url = f"{self.base_url}/chat/completions"
        try:
            response = self.http.request("POST", url, json=self._payload(request, strict=strict, max_tokens=max_tokens))
        except HttpFailure as failure:
            if failure.status == 400 and self.use_schema and "response_format" in failure.body:
                self.use_schema = False
                return self._complete(request, strict=strict, max_tokens=max_tokens)
            if failure.status == 400 and self.token_field == "max_tokens" and "max_completion_tokens" in failure.body:
                self.token_field = "max_completion_tokens"  # OpenAI's reasoning models refuse max_tokens
                return self._complete(request, strict=strict, max_tokens=max_tokens)
            raise failure_error(failure, self.base_url, self.model) from None
        try:
            body = response.json()
            choice = body["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise GatewayError("the gateway's answer is not a chat completion") from None
        usage = body.get("usage") or {}
        return Completion(
            _content(message),
            Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
            max_tokens,
            cut=choice.get("finish_reason") == "length",
            reasoned=bool(message.get("reasoning_content") or message.get("reasoning")),
        )

    def _read(self, completion: Completion, request: TagRequest) -> Reading:
        """The usable candidates of one completion; :class:`MalformedAnswer` when there are none."""
        try:
            return read_answer(completion.text, frame_count=request.frame_count)
        except MalformedAnswer as exc:
            if not completion.cut and completion.reasoned and not completion.text.strip():
                raise MalformedAnswer(
                    "the model answered only in its reasoning field and left content empty: turn its thinking "
                    "off on the server (README, Thinking switches)"
                ) from None
            if not completion.cut:
                raise
            spent = "on reasoning " if completion.reasoned or not completion.text.strip() else ""
            raise MalformedAnswer(
                f"the answer was cut by the token limit (max_tokens {completion.max_tokens}) {spent}"
                f"before any complete tag; raise maxAnswerTokens ({exc})"
            ) from None

    def _answer(self, reading: Reading, usage: Usage, calls: int, notes: list[Note]) -> TagAnswer:
        notes += [Note("debug", text) for text in reading.notes]
        if reading.zero_based:
            with self._told:
                told, self._told_zero_based = self._told_zero_based, True
            if not told:
                notes.append(Note("info", "the model numbers frames from 0: its citations are shifted by one"))
        return TagAnswer(reading.candidates, usage, calls=calls, notes=notes, description=reading.description)

    def describe(self, request: TagRequest) -> TagAnswer:
        """Ask once, and once more when the answer is unusable or was cut by the token limit.

        A cut answer is asked again with ``retry_tokens`` (twice ``maxAnswerTokens``); its
        complete tags are kept in case the second answer is no better.
        """
        first = self._complete(request, strict=False, max_tokens=self.max_tokens)
        kept: Reading | None = None
        problem = ""
        try:
            kept = self._read(first, request)
        except MalformedAnswer as exc:
            problem = str(exc)
        if kept is not None and not first.cut:
            return self._answer(kept, first.usage, 1, [])
        tokens = self.retry_tokens if first.cut else self.max_tokens
        if kept is not None:
            complete = len(kept.candidates)
            problem = f"answer cut by the token limit (max_tokens {first.max_tokens}) after {complete} complete tag(s)"
        notes = [Note("warning" if first.cut else "debug", f"{problem}; asking again with max_tokens {tokens}")]
        second = self._complete(request, strict=not first.cut, max_tokens=tokens)
        usage = first.usage
        usage.add(second.usage)
        try:
            reading = self._read(second, request)
        except MalformedAnswer as exc:
            if kept is None:
                raise GatewayError(str(exc)) from None
            notes.append(Note("warning", f"second answer unusable ({exc}); keeping the first one's complete tags"))
            return self._answer(kept, usage, 2, notes)
        if second.cut:
            complete = len(reading.candidates)
            cut_again = f"second answer cut too (max_tokens {tokens}): kept its {complete} complete tag(s)"
            notes.append(Note("warning", cut_again))
        return self._answer(reading, usage, 2, notes)
