"""Transcription through the gateway: ``POST {gatewayUrl}/audio/transcriptions``, OpenAI's upload.

A multipart form with the clip as ``file`` and ``model``; LiteLLM, OpenAI, vLLM and
whisper.cpp's server all take it. It rides the chat calls' session policy (timeouts, retries
on 408/409/429/5xx honouring ``Retry-After``, the key in the header only, never in a message)
and reports usage the same way: tokens when the server counts them (``gpt-4o-transcribe``),
else the seconds heard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ai_tagger.analyze.gateway.base import Usage
from ai_tagger.analyze.gateway.http import HttpFailure, RetryingSession, check_models, failure_error
from ai_tagger.analyze.speech.base import SpeechError, Transcript, register
from ai_tagger.errors import GatewayFatal

if TYPE_CHECKING:
    from ai_tagger.media.audio import AudioClip
    from ai_tagger.settings import Settings


def _usage(body: dict[str, Any]) -> Usage:
    """Token usage as OpenAI's transcription models report it (``input_tokens``/``output_tokens``)."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return Usage()
    prompt = usage.get("input_tokens", usage.get("prompt_tokens")) or 0
    completion = usage.get("output_tokens", usage.get("completion_tokens")) or 0
    try:
        return Usage(int(prompt), int(completion))
    except (TypeError, ValueError):
        return Usage()


@register
class GatewayTranscriber:
    name: ClassVar[str] = "gateway"

    def __init__(self, settings: Settings) -> None:
        self.model = str(settings.asr_model)
        self.base_url = str(settings.gateway_url)
        self.http = RetryingSession.for_gateway(settings, uploads=True)

    def preflight(self) -> None:
        check_models(self.http, self.base_url, self.model, setting="asrModel")

    def transcribe(self, clip: AudioClip) -> Transcript:
        url = f"{self.base_url}/audio/transcriptions"
        try:
            response = self.http.request(
                "POST", url, files={"file": (clip.filename, clip.wav, clip.mime)}, data={"model": self.model}
            )
        except HttpFailure as failure:
            error = failure_error(failure, self.base_url, self.model)
            raise SpeechError(str(error), fatal=isinstance(error, GatewayFatal)) from None
        try:
            body = response.json()
        except ValueError:
            return Transcript(response.text.strip(), clip.seconds, self.model)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise SpeechError("the gateway's answer to a transcription has no 'text'")
        return Transcript(body["text"].strip(), clip.seconds, self.model, _usage(body))
