"""The review queue, as operations the review page calls through ``runPluginOperation``.

``review_list`` pages through items with pending suggestions (the review tier's verdicts, kept
in the cache's ``items.review``), newest first, with what Stash shows of each item and the
content tags runs applied to it. ``review_decide`` applies the accepted suggestions exactly as
a run does (existing tag, or created under the ``AI`` parent unless ``onlyExistingTags``),
journaled as accepted by the user, and records rejections (suggestions or applied tags) so no
run re-adds them; the item changes in one mutation. A suggestion leaves the queue by compare
and swap before Stash is written, so two tabs deciding the same item never apply it twice; a
name decided already is reported as such, so the same call twice changes nothing.

Suggestions carry a ``kind`` (:class:`~ai_tagger.decide.item.SuggestionKind`): tags (entries
without one are tags), performers. ``accept``/``reject`` take tag names, and performers as
``{"kind": "performer", "id": "<performer id>"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ai_tagger.decide.decision import APPLY, Verdict
from ai_tagger.decide.item import NEW_TAG, PERFORMER, SuggestionKind
from ai_tagger.errors import InputError, StashError
from ai_tagger.log import Log
from ai_tagger.settings import STATUS_REVIEW, STATUS_TAGS, Settings
from ai_tagger.stash.client import ReviewItem, StashClient
from ai_tagger.stash.models import ItemUpdate, Tag
from ai_tagger.stash.names import key
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.cache import Cache
from ai_tagger.store.journal import Field, FieldWrite, Journal, Write
from ai_tagger.tasks.modes import REVIEW_DECISION, SCENES_AND_IMAGES, Mode
from ai_tagger.write.tagbook import TagBook

PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_NAMES = 200
SWAP_TRIES = 5
ACCEPTED = "accepted by the user"


def _whole(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high} (got {json.dumps(str(value)[:40])})")
    return int(text)


def _kind(value: Any, *, optional: bool) -> str | None:
    if optional and value in (None, ""):
        return None
    if value not in SCENES_AND_IMAGES:
        raise InputError(f"kind must be one of {', '.join(SCENES_AND_IMAGES)} (got {json.dumps(str(value)[:40])})")
    return str(value)


def _item_id(value: Any) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0):
        raise InputError(f"id must be a Stash item id, a positive whole number (got {json.dumps(str(value)[:40])})")
    return str(int(text))


def _names(args: dict[str, Any], field: str) -> tuple[list[str], list[str]]:
    """``(tag names, performer ids)`` named in ``accept`` or ``reject``."""
    value = args.get(field)
    if value in (None, ""):
        return [], []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_NAMES:
        raise InputError(f"{field} must be a list of at most {MAX_NAMES} tag names")
    names, performers = [], []
    for name in value:
        if isinstance(name, dict) and name.get("kind") == SuggestionKind.PERFORMER:
            performers.append(_item_id(name.get("id")))
            continue
        if not isinstance(name, str) or not key(name) or len(name) > 200:
            raise InputError(f"{field}: {json.dumps(str(name)[:40])} is not a tag name")
        names.append(name.strip())
    return list(dict.fromkeys(names)), list(dict.fromkeys(performers))


def _entries(raw: str | None) -> list[dict[str, Any]]:
    try:
        found = json.loads(raw or "[]")
    except ValueError:
        return []
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def _suggestions(raw: str | None) -> list[dict[str, Any]]:
    """The tag suggestions (entries from before kinds existed are tags)."""
    return [s for s in _entries(raw) if s.get("kind", SuggestionKind.TAG) == SuggestionKind.TAG and isinstance(
        s.get("tag"), str)]  # fmt: skip


def _performers(raw: str | None, item: ReviewItem, rejected: set[str]) -> dict[str, dict[str, Any]]:
    """Pending performer suggestions by performer id: not on the item, not rejected."""
    return {
        str(s["performer_id"]): s
        for s in _entries(raw)
        if s.get("kind") == SuggestionKind.PERFORMER
        and str(s.get("performer_id")) not in item.performers
        and PERFORMER + str(s.get("performer_id")) not in rejected
    }


def _decided(entry: dict[str, Any], tag: Tag | None, item: ReviewItem, rejected: set[str]) -> bool:
    """A suggestion no longer pending: the item has the tag (accepted, or added by hand), or it was rejected."""
    if tag is not None and (tag.id in item.tags or tag.id in rejected):
        return True
    return NEW_TAG + key(entry["tag"]) in rejected


def _unique(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each suggestion once (one may be found under two names)."""
    return list({id(e): e for e in entries}.values())


class Review:
    def __init__(self, *, client: StashClient, journal: Journal, cache: Cache, settings: Settings, log: Log) -> None:
        self.client = client
        self.journal = journal
        self.cache = cache
        self.settings = settings
        self.log = log

    def run(self, mode: Mode, args: dict[str, Any]) -> dict[str, Any]:
        """``review_decide`` writes, ``review_list`` only reads."""
        return self.decide(args) if mode.writes else self.queue(args)

    # ---- review_list -------------------------------------------------------------------

    def queue(self, args: dict[str, Any]) -> dict[str, Any]:
        page = _whole(args, "page", 1, 1, 10**6)
        per_page = _whole(args, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
        kind = _kind(args.get("kind"), optional=True)
        kinds = (kind,) if kind else SCENES_AND_IMAGES
        if args.get("id") not in (None, ""):  # one item, pending or not: the scene and image pages' AI panel
            if kind is None:
                raise InputError("review_list with an id needs its kind: scene or image")
            item_id = _item_id(args["id"])
            total, rows = 1, [(kind, item_id, self.cache.suggestions(kind, item_id) or "[]")]
        else:
            total, rows = self.cache.pending_review(kinds, (page - 1) * per_page, per_page)
        vocabulary = Vocabulary(self.client.all_tags()) if rows else None
        found: dict[tuple[str, str], ReviewItem] = {}
        for one in SCENES_AND_IMAGES:
            ids = [item_id for k, item_id, _ in rows if k == one]
            found.update({(one, i): item for i, item in self.client.review_items(one, ids).items()})
        items, notes = [], []
        for item_kind, item_id, raw in rows:
            item = found.get((item_kind, item_id))
            if item is None:
                notes.append(
                    f"{item_kind} {item_id}: deleted in Stash since it was tagged; its suggestions are dropped"
                )
                self.cache.swap_review(item_kind, item_id, raw, "[]")
                continue
            assert vocabulary is not None
            shown = self._item(item_kind, item_id, item, raw, vocabulary)
            if not shown["suggestions"] and raw != "[]" and args.get("id") in (None, ""):
                self.cache.swap_review(item_kind, item_id, raw, "[]")  # all decided in Stash meanwhile
                continue
            items.append(shown)
        return {
            "mode": "review_list",
            "page": page,
            "per_page": per_page,
            "kind": kind,
            "total": total,
            "pages": -(-total // per_page),
            "items": items,
            "notes": notes,
            "settings": {
                "minConfidence": round(self.settings.threshold * 100, 3),
                "reviewConfidence": None
                if self.settings.review_threshold is None
                else round(self.settings.review_threshold * 100, 3),
            },
        }

    def _item(self, kind: str, item_id: str, item: ReviewItem, raw: str, vocabulary: Vocabulary) -> dict[str, Any]:
        rejected = self.journal.rejections(kind, item_id)
        suggestions = []
        for entry in _suggestions(raw):
            tag = self._tag_for(entry, vocabulary)
            if _decided(entry, tag, item, rejected):
                continue
            suggestions.append(
                {
                    "tag": tag.name if tag else entry["tag"],
                    "tag_id": tag.id if tag else "new",
                    "confidence": entry.get("confidence"),
                    "score": entry.get("score"),
                    "frames": entry.get("frames") or [],
                    "rule": entry.get("rule"),
                }
            )
        for performer_id, entry in _performers(raw, item, rejected).items():
            suggestions.append(
                {
                    "kind": str(SuggestionKind.PERFORMER),
                    "performer": entry.get("name"),
                    "performer_id": performer_id,
                    "confidence": entry.get("confidence"),
                    "score": entry.get("score"),
                    "frames": entry.get("frames") or [],
                    "rule": entry.get("rule"),
                }
            )
        applied = [
            {"tag": item.tags[tag_id], "tag_id": tag_id, **why}
            for tag_id, why in self.journal.applied_by_ai(kind, item_id).items()
            if tag_id in item.tags
        ]
        applied += [
            {"kind": str(SuggestionKind.PERFORMER), "performer": item.performers[pid], "performer_id": pid, **why}
            for pid, why in self.journal.performers_by_ai(kind, item_id).items()
            if pid in item.performers
        ]
        return {
            "kind": kind,
            "id": item_id,
            "title": item.title,
            "thumbnail": item.picture,
            "url": f"/{kind}s/{item_id}",
            "suggestions": suggestions,
            "applied": applied,
        }

    @staticmethod
    def _tag_for(entry: dict[str, Any], vocabulary: Vocabulary) -> Tag | None:
        """The suggestion's tag now: by id, else by name (a tag merged into another is its alias)."""
        tag_id = entry.get("tag_id")
        if isinstance(tag_id, str) and tag_id in vocabulary.tags:
            return vocabulary.tags[tag_id]
        return vocabulary.find(entry["tag"])

    # ---- review_decide -----------------------------------------------------------------

    def decide(self, args: dict[str, Any]) -> dict[str, Any]:
        kind = _kind(args.get("kind"), optional=False)
        assert kind is not None
        item_id = _item_id(args.get("id"))
        (accept, accept_people), (reject, reject_people) = _names(args, "accept"), _names(args, "reject")
        both = {key(n) for n in accept} & {key(n) for n in reject} | set(accept_people) & set(reject_people)
        if both:
            raise InputError(f"a suggestion cannot be both accepted and rejected: {', '.join(sorted(both))}")
        if not accept and not reject and not accept_people and not reject_people:
            raise InputError("review_decide needs accept or reject: lists of tag names")
        people = (accept_people, reject_people)
        for _ in range(SWAP_TRIES):
            result = self._decide_once(kind, item_id, accept, reject, people)
            if result is not None:
                return result
        raise InputError(f"{kind} {item_id}: its suggestions kept changing while deciding; try again")

    def _decide_once(
        self, kind: str, item_id: str, accept: list[str], reject: list[str], people: tuple[list[str], list[str]]
    ) -> dict[str, Any] | None:
        raw = self.cache.suggestions(kind, item_id)
        item = self.client.review_items(kind, [item_id]).get(item_id)
        if item is None:
            if raw is not None:
                self.cache.swap_review(kind, item_id, raw, "[]")
            raise InputError(f"{kind} {item_id} does not exist in Stash (deleted since it was tagged?)")
        vocabulary = Vocabulary(self.client.all_tags())
        rejected = self.journal.rejections(kind, item_id)
        pending: dict[str, dict[str, Any]] = {}
        for entry in _suggestions(raw):  # by the suggested name and by the tag's name now (renamed, merged)
            tag = self._tag_for(entry, vocabulary)
            if not _decided(entry, tag, item, rejected):
                pending.update({key(entry["tag"]): entry, **({key(tag.name): entry} if tag else {})})
        scores = {t: why["score"] for t, why in self.journal.applied_by_ai(kind, item_id).items() if t in item.tags}
        applied = {key(item.tags[t]): t for t in scores}
        taken: dict[str, dict[str, Any]] = {}
        already: list[str] = []
        unknown: list[str] = []
        for name in [*accept, *reject]:
            name_key = key(name)
            tag = vocabulary.find(name)
            if name_key in pending:
                taken[name_key] = pending[name_key]
            elif name in reject and name_key in applied:
                continue
            elif (tag is not None and (tag.id in item.tags or tag.id in rejected)) or NEW_TAG + name_key in rejected:
                already.append(name)
            else:
                unknown.append(name)
        performers = _performers(raw, item, rejected)
        ours = {p: why for p, why in self.journal.performers_by_ai(kind, item_id).items() if p in item.performers}
        taken_back = [p for p in people[1] if p not in performers and p in ours]  # applied by a run, rejected now
        unknown += [f"performer {p}" for p in (*people[0], *people[1]) if p not in performers and p not in taken_back]
        if unknown:
            offered = sorted({e["tag"] for e in pending.values()} | {item.tags[t] for t in applied.values()})
            offered += [f"performer {p}" for p in (*performers, *ours)]
            raise InputError(
                f"{kind} {item_id}: not pending and not applied by AI Tagger: {', '.join(unknown)} "
                f"(pending or AI-applied: {', '.join(offered) or 'nothing'})"
            )
        to_accept = [taken[key(n)] for n in accept if key(n) in taken]
        tags = self._accepted_tags(to_accept, vocabulary)
        left = _unique(e for e in pending.values() if all(e is not t for t in taken.values()))
        decided_people = {*people[0], *people[1]}
        left += [e for p, e in performers.items() if p not in decided_people]
        taking = bool(taken) or bool(decided_people - set(taken_back))
        if raw is not None and taking and not self.cache.swap_review(kind, item_id, raw, json.dumps(left)):
            return None  # another decision took suggestions meanwhile: look again
        chosen = (
            [performers[p] for p in people[0]],
            [performers[p] for p in people[1] if p in performers]
            + [{"performer_id": p, "name": item.performers[p], "score": ours[p]["score"], "applied": True}
               for p in taken_back],
        )  # fmt: skip
        try:
            return self._write(
                kind, item_id, item, vocabulary, tags, reject, pending, applied, scores, already, left, chosen
            )
        except StashError:
            if raw is not None and taking:
                self.cache.swap_review(kind, item_id, json.dumps(left), raw)
            raise

    def _accepted_tags(
        self, accepted: list[dict[str, Any]], vocabulary: Vocabulary
    ) -> list[tuple[dict[str, Any], Tag | None]]:
        """Each accepted suggestion with its existing tag; a new one is refused under ``onlyExistingTags``."""
        out = []
        for entry in accepted:
            tag = self._tag_for(entry, vocabulary)
            if tag is None and self.settings.only_existing_tags:
                raise InputError(f"{entry['tag']!r} is not a tag in Stash and onlyExistingTags is on: create it first")
            out.append((entry, tag))
        return out

    def _write(
        self,
        kind: str,
        item_id: str,
        item: ReviewItem,
        vocabulary: Vocabulary,
        accepted: list[tuple[dict[str, Any], Tag | None]],
        reject: list[str],
        pending: dict[str, dict[str, Any]],
        applied: dict[str, str],
        scores: dict[str, float | None],
        already: list[str],
        left: list[dict[str, Any]],
        chosen: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    ) -> dict[str, Any]:
        accepted_people, rejected_people = chosen
        run_id = self.journal.begin(REVIEW_DECISION) if accepted or accepted_people else None
        on_create = None if run_id is None else (lambda tag: self.journal.created_tag(run_id, tag.id, tag.name))
        book = TagBook(self.client, vocabulary, parent_name=self.settings.created_tag_parent, on_create=on_create)
        writes = []
        for entry, tag in accepted:
            verdict = Verdict(
                entry["tag"],
                entry.get("confidence"),
                float(entry.get("score") or 0.0),
                tuple(entry.get("frames") or ()),
                tag,
                APPLY,
                f"{ACCEPTED}; suggested by {entry.get('rule') or 'the review tier'}",
            )
            for tag_id in book.ids_for([verdict]):
                writes.append(Write(tag_id, tag_id in item.tags, verdict))
        rejections: list[tuple[str, float | None]] = []
        remove: list[str] = []
        for name in reject:
            name_key = key(name)
            if name_key in pending:
                tag = self._tag_for(pending[name_key], vocabulary)
                rejections.append((tag.id if tag else NEW_TAG + name_key, pending[name_key].get("score")))
            elif name_key in applied:
                rejections.append((applied[name_key], scores[applied[name_key]]))  # learnThresholds reads it
                remove.append(applied[name_key])
        rejections += [(PERFORMER + str(e["performer_id"]), e.get("score")) for e in rejected_people]
        fields = tuple(
            FieldWrite(Field.PERFORMER, str(e["performer_id"]), False, e.get("score"), ACCEPTED)
            for e in accepted_people
        )
        review_tag = vocabulary.exact(STATUS_REVIEW)
        if not left and review_tag is not None and review_tag.id in item.tags:
            remove.append(review_tag.id)
        add = [w.tag_id for w in writes if not w.had]
        if run_id is not None:
            self.journal.intend(run_id, kind, item_id, writes, fields)
        update = ItemUpdate(
            add_tags=tuple(add),
            remove_tags=tuple(remove),
            add_performers=tuple(f.value for f in fields),
            remove_performers=tuple(str(e["performer_id"]) for e in rejected_people if e.get("applied")),
        )
        self.client.update_item(kind, item_id, update)
        if run_id is not None:
            self.journal.done(run_id, kind, item_id)
            self.journal.end(run_id, tokens=0, errors=0)
        self.journal.reject(kind, item_id, rejections)
        names = {t: n for t, n in item.tags.items()} | {t.id: t.name for t in vocabulary.tags.values()}
        self.log.info(
            f"review: {kind} {item_id}: accepted {len(accepted)}, rejected {len(rejections)}, "
            f"{len(left)} suggestion(s) left"
        )
        return {
            "mode": "review_decide",
            "kind": kind,
            "id": item_id,
            "accepted": [names.get(w.tag_id, w.tag_id) for w in writes],
            "rejected": [name for name in reject if key(name) in pending or key(name) in applied],
            "performers_accepted": [str(e.get("name")) for e in accepted_people],
            "performers_rejected": [str(e.get("name")) for e in rejected_people],
            "already_decided": already,
            "removed": [names.get(t, t) for t in remove if names.get(t) not in STATUS_TAGS],
            "pending": len(left),
            "review_tag_removed": review_tag is not None and review_tag.id in remove,
        }
