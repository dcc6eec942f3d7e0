"""Read a model's answer into candidates, however the server and the model wrote it.

Real vision models behind Ollama, vLLM, LM Studio, llama.cpp and LiteLLM rarely answer the
exact JSON asked for: reasoning models put ``<think>`` blocks first, servers that ignore
``response_format`` wrap the JSON in prose or a code fence, small models answer names only or
use their own key names, and the token limit cuts answers mid-entry. The reader, in order:

1. drops reasoning (``<think>…</think>``, an unclosed ``<think>`` up to the answer);
2. looks for a JSON value strictly (whole text, fenced blocks, each balanced ``{…}``/``[…]``),
   and only when none holds tags, leniently with ``json-repair`` (trailing commas, single
   quotes, comments, unquoted keys), keeping only the complete entries of a cut answer;
3. finds the tag list (``{"tags": [...]}``, nested one level down, or a bare list);
4. validates each tag on its own: a bad tag is dropped with a note saying why, the good ones
   stay; a tag named without a confidence becomes an unscored candidate;
5. checks frame citations against the frames sent, reading an all-0-based answer as such.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import json_repair
from pydantic import ValidationError

from ai_tagger.analyze.gateway.base import Candidate
from ai_tagger.errors import MalformedAnswer

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_REASONING_TAGS = "think|thinking|reasoning"
_REASONING_BLOCK = re.compile(rf"<({_REASONING_TAGS})>.*?</\1>", re.DOTALL | re.IGNORECASE)
_REASONING_OPEN = re.compile(rf"<(?:{_REASONING_TAGS})>", re.IGNORECASE)
_REASONING_CLOSE = re.compile(rf"</(?:{_REASONING_TAGS})>", re.IGNORECASE)
_OPENING = re.compile(r"[\[{]")
_TAGS_OBJECT = re.compile(r"""\{\s*["']?tags["']?\s*:""", re.IGNORECASE)
_JSONISH = re.compile(r"""\{\s*["']?[\w-]+["']?\s*:|\[\s*[{"']""")

NAME_KEYS = ("name", "tag", "label", "class")
CONFIDENCE_KEYS = ("confidence", "score", "probability", "prob")

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


def answer_schema(allowed_names: Sequence[str] = (), *, describe: bool = False) -> dict[str, Any]:
    """The JSON schema asked for; a closed vocabulary becomes an ``enum`` when providers allow its size,
    and ``describe`` adds the ``description`` string next to the tags."""
    closed = bool(allowed_names) and len(allowed_names) <= MAX_ENUM
    if not closed and not describe:
        return ANSWER_SCHEMA
    schema = copy.deepcopy(ANSWER_SCHEMA)
    if closed:
        schema["properties"]["tags"]["items"]["properties"]["name"]["enum"] = list(allowed_names)
    if describe:
        schema["properties"]["description"] = {"type": "string"}
        schema["required"] = ["tags", "description"]
    return schema


@dataclass
class Reading:
    """What an answer yielded: the usable candidates and one note per thing fixed or dropped."""

    candidates: list[Candidate]
    notes: list[str] = field(default_factory=list)
    zero_based: bool = False
    repaired: bool = False
    description: str | None = None


def strip_reasoning(text: str) -> tuple[str, bool]:
    """The text without reasoning blocks, and whether an unclosed ``<think>`` preceded the answer.

    Some templates emit only the closing tag (the opening one is in the prompt): everything
    before the last ``</think>`` is then reasoning too.
    """
    text = _REASONING_BLOCK.sub(" ", text)
    closes = list(_REASONING_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    opened = _REASONING_OPEN.search(text)
    if opened is None:
        return text, False
    return text[opened.end() :], True


def _strict_values(text: str) -> list[Any]:
    """JSON values in the text, strictly parsed: whole, fenced, then each balanced ``{…}``/``[…]``."""
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for piece in [text, *_FENCE.findall(text)]:
        piece = piece.strip()
        try:
            found.append(json.loads(piece))
            continue
        except ValueError:
            pass
        position = 0
        while (opening := _OPENING.search(piece, position)) is not None:
            try:
                value, position = decoder.raw_decode(piece, opening.start())
            except ValueError:
                position = opening.start() + 1
                continue
            found.append(value)
    return found


def _lenient_values(text: str) -> list[Any]:
    """JSON values repaired by ``json-repair``, from complete entries only.

    Only text that looks like JSON is repaired (an object opening with a key, a list opening
    with an object or a string), so prose such as "a dog [see frame 1]" never becomes a tag.
    The text is cut after its last closing bracket, so a tag cut mid-entry by the token limit
    is left out rather than repaired into a half-named tag; a names-only list cut inside its
    last name keeps the names before it.
    """
    found: list[Any] = []
    for piece in [*_FENCE.findall(text), text]:
        first = _JSONISH.search(piece)
        starts = [first.start()] if first else []
        starts += [m.start() for m in _TAGS_OBJECT.finditer(piece)]
        for start in dict.fromkeys(starts):
            region = piece[start:]
            closing = max(region.rfind("}"), region.rfind("]"))
            if closing >= 0:
                found.append(json_repair.loads(region[: closing + 1]))
            comma = region.rfind(",")
            if comma > closing:
                value = json_repair.loads(region[:comma])
                entries = _tag_list(value)
                if entries and all(isinstance(entry, str) for entry in entries):
                    found.append(value)
    return found


def _tags_in(value: dict[Any, Any]) -> list[Any] | None:
    tags = next((v for k, v in value.items() if str(k).lower() == "tags"), None)
    if isinstance(tags, list):
        return tags
    if isinstance(tags, dict) and tags and all(isinstance(v, (int, float, str)) for v in tags.values()):
        return [{"name": name, "confidence": confidence} for name, confidence in tags.items()]
    return None


def _tag_list(value: Any) -> list[Any] | None:
    """The tag list: ``{"tags": [...]}``, such an object one level down, or a bare list."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return None
    found = _tags_in(value)
    if found is not None:
        return found
    for inner in value.values():
        if isinstance(inner, dict) and (found := _tags_in(inner)) is not None:
            return found
    return None


def _description(value: Any) -> str | None:
    """The answer's ``description`` (when asked for one): plain text, whitespace collapsed."""
    text = value.get("description") if isinstance(value, dict) else None
    return " ".join(text.split()) or None if isinstance(text, str) else None


def _frames(value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        return ()
    frames = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            frames.append(item)
        elif isinstance(item, str) and item.strip().isdigit():
            frames.append(int(item))
    return tuple(frames)


def _candidate(raw: Any) -> Candidate | str:
    """One tag entry as a candidate, or the reason it is dropped."""
    if isinstance(raw, str):
        name: Any = raw
        confidence: Any = None
        frames: tuple[int, ...] = ()
    elif isinstance(raw, dict):
        fields = {str(k).lower(): v for k, v in raw.items()}
        name = next((fields[k] for k in NAME_KEYS if k in fields), None)
        if name is None:
            return "no name (expected one of " + ", ".join(NAME_KEYS) + ")"
        confidence = next((fields[k] for k in CONFIDENCE_KEYS if k in fields), None)
        frames = _frames(fields.get("frames"))
    else:
        return "not a tag object or name"
    try:
        return Candidate(name=name, confidence=confidence, frames=frames)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where} {error['msg'].removeprefix('Value error, ')}"


def _shown(raw: Any) -> str:
    return json.dumps(raw, ensure_ascii=False, default=str)[:120]


def _read_frames(candidates: list[Candidate], frame_count: int, notes: list[str]) -> tuple[list[Candidate], bool]:
    """Citations checked against ``frame_count``; an answer citing only 0..n-1, 0 included, is 0-based."""
    cited = {f for c in candidates for f in c.frames}
    zero_based = bool(cited) and 0 in cited and max(cited) < frame_count and min(cited) >= 0
    checked = []
    for candidate in candidates:
        frames = tuple(f + 1 for f in candidate.frames) if zero_based else candidate.frames
        kept = tuple(f for f in frames if 1 <= f <= frame_count)
        if kept != frames:
            outside = sorted(set(frames) - set(kept))
            notes.append(f"tag {candidate.name!r}: dropped frame(s) {outside} outside 1..{frame_count}")
            candidate = candidate.model_copy(update={"frames": kept})
        elif zero_based:
            candidate = candidate.model_copy(update={"frames": kept})
        checked.append(candidate)
    return checked, zero_based


def _salvage(entries: list[Any]) -> tuple[list[Candidate], list[str]]:
    candidates: list[Candidate] = []
    notes: list[str] = []
    for raw in entries:
        read = _candidate(raw)
        if isinstance(read, str):
            notes.append(f"dropped tag {_shown(raw)}: {read}")
        else:
            candidates.append(read)
    return candidates, notes


def read_answer(text: str | None, *, frame_count: int = 0) -> Reading:
    """The usable candidates in a model's answer; :class:`MalformedAnswer` when there are none.

    ``frame_count`` (frames or grid cells sent) enables the citation checks; 0 skips them.
    A valid tag list with no entries is usable: the model saw nothing to tag.
    """
    answer, unclosed = strip_reasoning(text or "")
    if not answer.strip():
        reason = "only reasoning, no answer" if text and text.strip() else "an empty answer"
        raise MalformedAnswer(f"the model returned {reason}")
    dropped: list[str] = []
    for lenient in (False, True):
        values = _lenient_values(answer) if lenient else _strict_values(answer)
        for value in reversed(values) if unclosed else values:
            entries = _tag_list(value)
            if entries is None or (value == [] and answer.strip() != "[]"):
                continue
            candidates, notes = _salvage(entries)
            if entries and not candidates:
                dropped = dropped or notes
                continue
            zero_based = False
            if frame_count > 0:
                candidates, zero_based = _read_frames(candidates, frame_count, notes)
            if lenient:
                notes.insert(0, "answer was not strict JSON; read it leniently")
            return Reading(candidates, notes, zero_based, lenient, _description(value))
    reason = f"no usable tag: {dropped[0]}" if dropped else "no tag list found"
    raise MalformedAnswer(f"the model's answer is not the expected JSON ({reason}): {answer.strip()[:120]!r}")

