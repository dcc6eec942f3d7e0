"""Read a model's answer into candidates, however the server wrapped the JSON.

Servers that honour ``response_format`` return bare JSON. Others (Ollama, llama.cpp, many
proxies) wrap it in a code fence or a sentence; the first JSON object that validates is used.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ai_tagger.errors import MalformedAnswer
from ai_tagger.gateway.base import Candidate

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "confidence": {"type": "number"},
                    "frames": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["name", "confidence", "frames"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["tags"],
    "additionalProperties": False,
}


MAX_ENUM = 500


def answer_schema(allowed_names: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema asked for; a closed vocabulary becomes an ``enum`` when providers allow its size."""
    if not allowed_names or len(allowed_names) > MAX_ENUM:
        return ANSWER_SCHEMA
    schema = copy.deepcopy(ANSWER_SCHEMA)
    schema["properties"]["tags"]["items"]["properties"]["name"]["enum"] = list(allowed_names)
    return schema


class ModelAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tags: list[Candidate]


def _json_objects(text: str) -> list[Any]:
    """Candidate JSON values in the text: whole, fenced, then each balanced ``{...}``."""
    found: list[Any] = []
    pieces = [text, *_FENCE.findall(text)]
    decoder = json.JSONDecoder()
    for piece in pieces:
        piece = piece.strip()
        try:
            found.append(json.loads(piece))
            continue
        except ValueError:
            pass
        for start in [m.start() for m in re.finditer(r"\{", piece)]:
            try:
                value, _ = decoder.raw_decode(piece, start)
            except ValueError:
                continue
            found.append(value)
            break
    return found


def parse_answer(text: str | None) -> list[Candidate]:
    if not text or not text.strip():
        raise MalformedAnswer("the model returned an empty answer")
    errors = []
    for value in _json_objects(text):
        if isinstance(value, list):
            value = {"tags": value}
        try:
            return ModelAnswer.model_validate(value).tags
        except ValidationError as exc:
            errors.append(exc.errors()[0]["msg"])
    reason = errors[0] if errors else "no JSON object found"
    raise MalformedAnswer(f"the model's answer is not the expected JSON ({reason}): {text[:120]!r}")
