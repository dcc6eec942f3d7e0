"""The user's tag rules, read from a YAML file: synonyms, block/allow globs, per-tag thresholds.

Every name in a rule is compared by :func:`~ai_tagger.stash.names.key`, so the file can be
written in any case or spacing. A malformed file raises :class:`RulesError` naming the file and
the line, because the user edits it by hand and needs to know where to look.

The file is read on every run, so reading it must stay cheap whatever it holds: only a regular
file of at most :data:`MAX_BYTES` is opened, and YAML anchors, aliases and merge keys are refused
while the document is composed, so an alias bomb ("billion laughs") costs nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from yaml.composer import Composer, ComposerError
from yaml.events import AliasEvent

from ai_tagger.errors import RulesError
from ai_tagger.stash.names import key, singulars


class _EntryError(ValueError):
    """A validator's complaint about one entry, so the loader can point at that entry's line."""

    def __init__(self, message: str, entry: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.entry = entry


def _named(value: Any, entry: tuple[str | int, ...]) -> tuple[str, str]:
    """``(name as written, its key)``, computed once: a rules file may hold tens of thousands of names."""
    name_key = key(value) if isinstance(value, str) else ""
    if not name_key:
        raise _EntryError("must be a tag name", entry)
    return value.strip(), name_key


def _name(value: Any, entry: tuple[str | int, ...]) -> str:
    return _named(value, entry)[0]


def _flatten_synonyms(raw: dict[str, Any]) -> dict[str, str]:
    """Both accepted forms as one many-to-one map: spelling -> the user's tag."""
    flat: dict[str, str] = {}
    owner: dict[str, tuple[str, str]] = {}
    for left, right in raw.items():
        pairs: list[tuple[tuple[str, str], tuple[str, str], tuple[str | int, ...]]]
        if isinstance(right, list):
            target = _named(left, (left,))
            pairs = [(_named(s, (left, i)), target, (left, i)) for i, s in enumerate(right)]
        elif isinstance(right, str):
            pairs = [(_named(left, (left,)), _named(right, (left,)), (left,))]
        else:
            raise _EntryError("must be a tag name or a list of tag names", (left,))
        for (spelling, spelling_key), (target_name, target_key), entry in pairs:
            earlier = owner.get(spelling_key)
            if earlier is not None and earlier[1] != target_key:
                raise _EntryError(f"{spelling!r} already maps to {earlier[0]!r}", entry)
            owner[spelling_key] = (target_name, target_key)
            flat[spelling] = target_name
    return flat


class MarkerRule(BaseModel):
    """One tag's scene-marker settings: on or off, and how frames join into markers (seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    max_gap: float | None = Field(None, ge=0)
    min_duration: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """``Tag: off`` / ``Tag: on`` is the bare switch; a mapping sets the numbers (and ``enabled``)."""
        if isinstance(value, str) and value.strip().lower() in _SWITCH:
            return {"enabled": _SWITCH[value.strip().lower()]}
        if isinstance(value, bool):
            return {"enabled": value}
        return {} if value is None else value


_SWITCH = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}


class Rules(BaseModel):
    """The parsed rules; ``Rules()`` is the empty set that changes nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    synonyms: dict[str, str] = Field(default_factory=dict)
    block: tuple[str, ...] = ()
    allow: tuple[str, ...] | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    add_parents: bool = False
    markers: dict[str, MarkerRule] = Field(default_factory=dict)

    _synonym_index: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)
    _block_keys: tuple[tuple[str, str], ...] = PrivateAttr(default=())
    _allow_keys: tuple[str, ...] | None = PrivateAttr(default=None)
    _threshold_index: dict[str, tuple[str, float]] = PrivateAttr(default_factory=dict)
    _marker_index: dict[str, MarkerRule] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        """``block:`` with every entry commented out means no block list, not an error."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @field_validator("synonyms", mode="before")
    @classmethod
    def _synonyms(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise _EntryError("must be a mapping of names to your tags", ())
        return _flatten_synonyms(value)

    @field_validator("block", "allow", mode="before")
    @classmethod
    def _globs(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _EntryError("must be a list of tag names or glob patterns", ())
        return tuple(_name(v, (i,)) for i, v in enumerate(value))

    @field_validator("thresholds", mode="before")
    @classmethod
    def _percentages(cls, value: Any) -> Any:
        """Accept ``80`` and ``"80%"``; anything else must be a number from 0 to 100."""
        if not isinstance(value, dict):
            raise _EntryError("must be a mapping of tag name to percentage", ())
        checked: dict[str, float] = {}
        seen: set[str] = set()
        for name, raw in value.items():
            written = _name(name, (name,))
            if key(written) in seen:
                raise _EntryError(f"{written!r} is given twice", (name,))
            seen.add(key(written))
            number = raw.strip().removesuffix("%") if isinstance(raw, str) else raw
            try:
                if isinstance(number, bool):
                    raise ValueError
                percent = float(number)
            except (TypeError, ValueError):
                raise _EntryError(f"must be a percentage from 0 to 100, not {raw!r}", (name,)) from None
            if not 0 <= percent <= 100:
                raise _EntryError(f"must be a percentage from 0 to 100, not {raw!r}", (name,))
            checked[written] = percent
        return checked

    def model_post_init(self, _context: Any) -> None:
        self._synonym_index = {key(s): (s, t) for s, t in self.synonyms.items()}
        self._block_keys = tuple((p, key(p)) for p in self.block)
        self._allow_keys = None if self.allow is None else tuple(key(p) for p in self.allow)
        self._threshold_index = {key(n): (n, p) for n, p in self.thresholds.items()}
        self._marker_index = {key(n): rule for n, rule in self.markers.items()}

    def __hash__(self) -> int:
        """Hashable like the frozen :class:`~ai_tagger.decide.decision.Policy` that holds it."""
        return hash(
            (
                tuple(sorted(self.synonyms.items())),
                self.block,
                self.allow,
                tuple(sorted(self.thresholds.items())),
                self.add_parents,
                tuple(sorted(self.markers.items(), key=lambda item: item[0])),
            )
        )

    def marker_rule(self, names: Iterable[str]) -> tuple[MarkerRule, bool] | None:
        """The ``markers:`` entry for a tag (by name or alias, plural-tolerant) with True, else the
        ``"*"`` entry with False (it tunes markers but names no tag)."""
        if not self._marker_index:
            return None
        for name_key in _keys(names):
            if name_key in self._marker_index:
                return self._marker_index[name_key], True
        fallback = self._marker_index.get("*")
        return None if fallback is None else (fallback, False)

    def synonym(self, name: str) -> tuple[str, str] | None:
        """``(spelling as written in the rules, target tag)`` for a model's name, plural-tolerant."""
        if not self._synonym_index:
            return None
        name_key = key(name)
        for candidate in (name_key, *singulars(name_key)):
            found = self._synonym_index.get(candidate)
            if found:
                return found
        return None

    def blocked_by(self, names: Iterable[str]) -> str | None:
        """The first block pattern (as written) that matches any of the names."""
        if not self._block_keys:
            return None
        keys = _keys(names)
        for pattern, pattern_key in self._block_keys:
            if any(fnmatchcase(k, pattern_key) for k in keys):
                return pattern
        return None

    def allowed(self, names: Iterable[str]) -> bool:
        """True without an allow list, else when one of the names matches one of its globs."""
        if self._allow_keys is None:
            return True
        keys = _keys(names)
        return any(fnmatchcase(k, p) for p in self._allow_keys for k in keys)

    def names(self, name: str) -> str | None:
        """The allow pattern (as written) that names this tag on purpose: one with a literal part,
        so a catch-all ``*`` keeps everything else allowed without opting in to anything."""
        if self._allow_keys is None or self.allow is None:
            return None
        keys = _keys([name])
        for pattern, pattern_key in zip(self.allow, self._allow_keys, strict=True):
            if pattern_key.strip("*? ") and any(fnmatchcase(k, pattern_key) for k in keys):
                return pattern
        return None

    def threshold_for(self, names: Iterable[str]) -> tuple[str, float] | None:
        """``(name as written, percent)`` of the first name that has its own threshold."""
        if not self._threshold_index:
            return None
        for name_key in _keys(names):
            found = self._threshold_index.get(name_key)
            if found:
                return found
        return None


def _keys(names: Iterable[str]) -> list[str]:
    """The keys of the names, each followed by its singular guesses: a rule for "Dog" holds for "Dogs"."""
    keys: list[str] = []
    for name in names:
        name_key = key(name)
        keys += [name_key, *singulars(name_key)]
    return keys


SECTION_NAMES = {
    key(spelling): section
    for section, spellings in {
        "synonyms": ("synonyms", "synonym", "mapping", "mappings", "map", "aliases"),
        "block": ("block", "blocklist", "block list", "blocked", "deny", "denylist", "ignore"),
        "allow": ("allow", "allowlist", "allow list", "allowed", "only"),
        "thresholds": ("thresholds", "threshold", "per tag thresholds", "tag thresholds", "min confidence"),
        "add_parents": ("add parents", "add parent", "also add parents", "also add parent", "parents"),
        "markers": ("markers", "marker", "scene markers"),
    }.items()
    for spelling in spellings
}
"""Section names as written (any case, ``_``/``-``/space) -> the canonical section."""


MAX_BYTES = 1_000_000
"""Largest rules file read (1 MB): far above any hand-written file, small enough to read on every run."""

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL, _MERGE, _STR = "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:str"


class _NoAliasComposer(Composer):
    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse an anchor or alias before it is resolved: an alias bomb is stopped at its first ``&``."""
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed: write the names out",
                event.start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)


class RulesLoader(_NoAliasComposer, _BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader (libyaml's when installed: it is several times faster), composing without aliases."""

    def __init__(self, stream: str) -> None:
        _BaseLoader.__init__(self, stream)
        Composer.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """Plain scalars stay text (only null and ``<<`` matter here): YAML 1.1's regex guessing is skipped."""
        if kind is yaml.ScalarNode and implicit[0]:
            return _NULL if value in ("", "~", "null", "Null", "NULL") else _MERGE if value == "<<" else _STR
        return super().resolve(kind, value, implicit)


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file; raise :class:`RulesError` naming the file and line."""
    where = Path(path)
    try:
        text = _read_regular_file(where)
    except FileNotFoundError:
        raise RulesError(f"rules file {where} does not exist") from None
    except UnicodeDecodeError:
        raise RulesError(f"rules file {where} is not UTF-8 text") from None
    except OSError as exc:
        raise RulesError(f"rules file {where} cannot be read: {exc.strerror or exc}") from None
    return parse_rules(text, source=str(where))


def _read_regular_file(where: Path) -> str:
    """The file's text; a directory, FIFO, device or oversized file is refused before it is read."""
    if where.is_dir():
        raise RulesError(f"rules file {where} is a folder: rulesFile must name a YAML file")
    # Non-blocking, so that opening a FIFO cannot hang the run; fstat then refuses it.
    fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise RulesError(f"rules file {where} is not a regular file (a pipe or device): name a YAML file")
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise RulesError(f"rules file {where} is larger than {MAX_BYTES // 1_000_000} MB, the most a rules file may be")
    return data.decode("utf-8")


def parse_rules(text: str, *, source: str = "<rules>") -> Rules:
    """:func:`load_rules` for text already in memory (``source`` names it in errors)."""
    if len(text) > MAX_BYTES:
        raise RulesError(f"{source} is larger than {MAX_BYTES // 1_000_000} MB, the most a rules file may be")
    try:
        root = yaml.compose(text, Loader=RulesLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise RulesError(f"{source}, line {line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise RulesError(f"{source}: nested too deeply to be a rules file") from None
    if root is None:
        return Rules()
    if isinstance(root, yaml.MappingNode):
        for key_node, _ in root.value:
            if isinstance(key_node, yaml.ScalarNode):
                key_node.value = SECTION_NAMES.get(key(key_node.value), key_node.value)
    try:
        data = _plain(root, source)
    except RecursionError:
        raise RulesError(f"{source}: nested too deeply to be a rules file") from None
    if not isinstance(data, dict):
        raise RulesError(f"{source}, line {_line(root)}: the rules must be a mapping (synonyms:, block:, ...)")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError("; ".join(_explain(error, root, source) for error in exc.errors())) from None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _plain(node: yaml.Node, source: str) -> Any:
    """The node as Python data, every scalar kept as the text the user wrote.

    Tag names such as ``No``, ``On`` or ``1984`` stay names (YAML 1.1 would turn them into a
    boolean or a number); pydantic converts the scalars that must be numbers or booleans.
    """
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise RulesError(f"{source}, line {_line(key_node)}: YAML merge keys (<<) are not allowed")
            name = _plain(key_node, source)
            if not isinstance(name, str):
                raise RulesError(f"{source}, line {_line(key_node)}: a key must be a plain name")
            if name in mapping:
                raise RulesError(f"{source}, line {_line(key_node)}: {name!r} is given twice")
            mapping[name] = _plain(value_node, source)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, source) for item in node.value]
    if node.tag == _NULL and not node.style:  # plain style: None in Python, "" in libyaml
        return None
    return node.value


def _explain(error: Any, root: yaml.Node, source: str) -> str:
    """One pydantic error as ``file, line N: where: what``."""
    loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _EntryError):
        loc += cause.entry
        message = str(cause)
    elif error["type"] == "extra_forbidden":
        message = (
            "unknown key (expected synonyms, block, allow, thresholds, add_parents, markers)"
            if len(loc) == 1
            else "unknown key (expected enabled, max_gap, min_duration)"
        )
    else:
        message = error["msg"]
        if "input" in error and not isinstance(error["input"], (dict, list)):
            message += f" (got {error['input']!r})"
    where = ".".join(str(part) for part in loc)
    return f"{source}, line {_line(_locate(root, loc))}: {where}: {message}"


def _locate(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    """The node a pydantic location points at: a mapping entry's key, a list's item.

    Location parts that name no entry (pydantic's union branch names) are skipped.
    """
    shown, current = root, root
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    shown, current = key_node, value_node
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            shown = current = current.value[part]
    return shown
