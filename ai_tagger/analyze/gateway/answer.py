"""Read a model's answer into candidates, however the server and the model wrote it.

Real vision models behind Ollama, vLLM, LM Studio, llama.cpp and LiteLLM rarely answer the
exact JSON asked for: reasoning models put ``<think>`` blocks first, servers that ignore
``response_format`` wrap the JSON in prose or a code fence, small models answer names only or
use their own key names, and the token limit cuts answers mid-entry. The reader, in order:

1. drops reasoning (``<think>…</think>``, an unclosed ``<think>`` up to the answer);
2. looks for a JSON value strictly (whole text, fenced blocks, each balanced ``{…}``/``[…]``
   nested at most :data:`MAX_NESTING` deep),
   and only when none holds tags, leniently with ``json-repair`` (trailing commas, single
   quotes, comments, unquoted keys), keeping only the complete entries of a cut answer;
3. finds the tag list (``{"tags": [...]}``, nested one level down, or a bare list);
4. validates each tag on its own: a bad tag is dropped with a note saying why, the good ones
   stay; a tag named without a confidence becomes an unscored candidate;
5. checks frame citations against the frames sent, reading an all-0-based answer as such.

Whatever the text, reading it costs time linear in its size, and an answer over
:data:`MAX_ANSWER_CHARS` is refused before any of this: a misbehaving gateway costs one item
(``AI_Errored``), never the run or minutes of CPU.
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
_REASONING_TAG = re.compile(rf"<(/?)({_REASONING_TAGS})>", re.IGNORECASE)
_BRACKETS = re.compile(r'[\[\]{}"\\\n]')
_PAIRS = {"]": "[", "}": "{"}
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
MAX_ANSWER_CHARS = 256_000
"""An answer longer than this (256 KB; a full tag list is a few KB) is refused unread, for that item only."""
MAX_NESTING = 32
"""Brackets nested deeper than this are never parsed (an answer is 3-4 deep): no recursion limit, no
quadratic rescans."""
MAX_LENIENT_STARTS = 3
MAX_INT_DIGITS = 30


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
    before the last ``</think>`` is then reasoning too. One pass over the tags: a block runs from
    an opening tag to the next closing tag of the same name, and an opening tag without one is
    left for the unclosed case (a regular expression retrying every opening tag was quadratic).
    """
    tags = [(m.start(), m.end(), m.group(1) == "/", m.group(2).lower()) for m in _REASONING_TAG.finditer(text)]
    closes: dict[str, list[int]] = {}
    for index, (_, _, closing, name) in enumerate(tags):
        if closing:
            closes.setdefault(name, []).append(index)
    next_close = dict.fromkeys(closes, 0)
    blocks: list[tuple[int, int]] = []
    remaining: list[int] = []
    index = 0
    while index < len(tags):
        start, end, closing, name = tags[index]
        if not closing:
            positions = closes.get(name, [])
            cursor = next_close.get(name, 0)
            while cursor < len(positions) and positions[cursor] <= index:
                cursor += 1
            next_close[name] = cursor
            if cursor < len(positions):
                close = positions[cursor]
                blocks.append((start, tags[close][1]))
                index = close + 1
                continue
        remaining.append(index)
        index += 1
    cut = 0
    for index in remaining:
        if tags[index][2]:
            cut = tags[index][1]
    opening = next((tags[i] for i in remaining if not tags[i][2] and tags[i][0] >= cut), None)
    if opening is None:
        return _without(text, blocks, cut, len(text)), False
    after = _without(text, blocks, opening[1], len(text))
    before = _without(text, blocks, cut, opening[0])
    if not _OPENING.search(after) and _OPENING.search(before):
        return before, False  # the answer came first, then a reasoning tag that never closed
    return after, True


def _without(text: str, blocks: list[tuple[int, int]], begin: int, end: int) -> str:
    """``text[begin:end]`` with each reasoning block in it replaced by a space."""
    pieces = []
    for start, stop in blocks:
        if stop <= begin or start >= end:
            continue
        pieces.append(text[begin : max(begin, start)] + " ")
        begin = max(begin, stop)
    pieces.append(text[begin:end])
    return "".join(pieces)


def _bounded_int(digits: str) -> int | float:
    """JSON integers: a number too long to be a frame or a score is read as a float (inf), never
    converted digit by digit (Python refuses integers over 4,300 digits)."""
    return int(digits) if len(digits) <= MAX_INT_DIGITS else float(digits)


_DECODER = json.JSONDecoder(parse_int=_bounded_int)


def _loads(text: str) -> Any:
    """Strict JSON, or :class:`ValueError` (deep nesting included)."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _regions(piece: str) -> list[tuple[int, int]]:
    """Each balanced ``{…}``/``[…]`` (start, end), in order of start, nested at most :data:`MAX_NESTING`.

    One pass with a stack. Quotes count only inside brackets and a string ends at a line break
    (JSON strings hold none), so a stray quote in prose cannot hide the JSON after it.
    """
    # The open brackets: their characters, starts and the deepest nesting below each (flat lists of
    # strings and ints, which the garbage collector never walks).
    chars: list[str] = []
    starts: list[int] = []
    depths: list[int] = []
    found: list[tuple[int, int]] = []
    in_string = False
    escaped_until = 0  # a backslash in a string escapes the character after it
    for match in _BRACKETS.finditer(piece):
        char = match.group()
        if in_string:
            if match.start() < escaped_until:
                pass
            elif char == "\\":
                escaped_until = match.end() + 1
            elif char in '"\n':
                in_string = False
            continue
        if char == '"':
            in_string = bool(chars)
        elif char in "[{":
            chars.append(char)
            starts.append(match.start())
            depths.append(0)
        elif char in "]}" and chars and chars[-1] == _PAIRS[char]:
            chars.pop()
            start, depth = starts.pop(), depths.pop()
            if depth < MAX_NESTING:
                found.append((start, match.end()))
            if depths:
                depths[-1] = max(depths[-1], depth + 1)
    found.sort()
    return found


def _strict_values(text: str) -> list[Any]:
    """JSON values in the text, strictly parsed: whole, fenced, then each balanced ``{…}``/``[…]``."""
    found: list[Any] = []
    for piece in [text, *_FENCE.findall(text)]:
        piece = piece.strip()
        try:
            found.append(_loads(piece))
            continue
        except ValueError:
            pass
        position = 0
        for start, end in _regions(piece):
            if start < position:
                continue
            try:
                found.append(_loads(piece[start:end]))
            except ValueError:
                continue
            position = end
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
        tag_objects = [m.start() for m in _TAGS_OBJECT.finditer(piece)]
        starts += tag_objects[:1] + tag_objects[-1:]  # a bounded number of repairs: each reads the rest
        for start in list(dict.fromkeys(starts))[:MAX_LENIENT_STARTS]:
            region = piece[start:]
            closing = max(region.rfind("}"), region.rfind("]"))
            if closing >= 0:
                found.append(_repaired(region[: closing + 1]))
            comma = region.rfind(",")
            if comma > closing:
                value = _repaired(region[:comma])
                entries = _tag_list(value)
                if entries and all(isinstance(entry, str) for entry in entries):
                    found.append(value)
    return found


def _repaired(text: str) -> Any:
    """``json-repair``'s reading, or None when even it cannot read the text (too deep, too long a number)."""
    try:
        return json_repair.loads(text)
    except (ValueError, RecursionError, TypeError, IndexError, KeyError):
        return None


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
        elif isinstance(item, str) and _digits(item.strip()):
            frames.append(int(item))
    return tuple(frames)


def _digits(text: str) -> bool:
    """Plain ASCII digits of a usable length (``str.isdigit`` also accepts ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= MAX_INT_DIGITS


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
    except (OverflowError, TypeError):
        return "confidence is not a usable number"
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
    if text is not None and len(text) > MAX_ANSWER_CHARS:
        raise MalformedAnswer(
            f"the model's answer is {len(text) // 1000} KB, over the {MAX_ANSWER_CHARS // 1000} KB an answer may "
            "have; not read"
        )
    try:
        return _read(text, frame_count)
    except MalformedAnswer:
        raise
    except (ValueError, RecursionError, OverflowError, TypeError) as exc:
        # A defect of this reader, not of the run: the item fails with a short reason, the run goes on.
        raise MalformedAnswer(f"the model's answer could not be read ({type(exc).__name__})") from None


def _read(text: str | None, frame_count: int) -> Reading:
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
    reason = f"no usable tag: {dropped[0][:200]}" if dropped else "no tag list found"
    shown = repr(answer.strip()[:120])
    shown = shown if len(shown) <= 150 else shown[:147] + "..."  # escapes may make a repr ten times longer
    raise MalformedAnswer(f"the model's answer is not the expected JSON ({reason}): {shown}")

