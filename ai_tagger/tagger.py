"""One item at a time: cached or fresh model answer -> decision -> one write.

Shared by all workers of a run. Frame extraction is bounded by CPU count and gateway calls by
``concurrency``; items with the same cache key (duplicate files) wait for each other so that a
duplicate is answered from the cache instead of being paid for twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ai_tagger.cache import Cache, JournalEntry, answer_key
from ai_tagger.decide.decision import Decision, Policy, decide
from ai_tagger.decide.normalize import key
from ai_tagger.decide.rules import Rules
from ai_tagger.decide.vocabulary import Vocabulary, prompt_entry
from ai_tagger.gateway.answer import MAX_ENUM
from ai_tagger.gateway.base import Candidate, GatewayError, GatewayFatal, Provider, TagRequest, Usage
from ai_tagger.gateway.prompt import PROMPT_VERSION, item_context
from ai_tagger.log import Log
from ai_tagger.media.errors import MediaError
from ai_tagger.media.grid import contact_sheet
from ai_tagger.media.source import MediaOptions, pictures
from ai_tagger.report import ItemResult
from ai_tagger.settings import STATUS_ERRORED, STATUS_REVIEW, STATUS_TAGGED, STATUS_TAGS, Settings
from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.stash.models import Item
from ai_tagger.tagbook import TagBook


@dataclass(frozen=True)
class Answer:
    candidates: list[Candidate]
    frame_count: int
    key: str | None
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    cached: bool = False


class Tagger:
    """Processes single items; shared by all workers of a run."""

    def __init__(
        self,
        *,
        client: StashClient,
        settings: Settings,
        provider: Provider | None,
        log: Log,
        ffmpeg: str,
        dry_run: bool,
        vocabulary: Vocabulary,
        rules: Rules,
        cache: Cache | None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.provider = provider
        self.log = log
        self.dry_run = dry_run
        self.cache = cache
        self.book = TagBook(client, vocabulary, parent_name=settings.created_tag_parent)
        self.media = MediaOptions(
            ffmpeg=ffmpeg,
            frames_per_scene=settings.frames_per_scene,
            max_side=settings.max_image_side,
            headers=client.auth_headers,
        )
        reserved = frozenset(key(name) for name in STATUS_TAGS) | self.book.reserved_keys()
        self.policy = Policy(
            threshold=settings.threshold,
            max_tags=settings.max_tags_per_item,
            only_existing=settings.only_existing_tags,
            reserved=reserved,
            review_threshold=settings.review_threshold,
            min_frames=settings.min_frames,
            rules=rules,
            trust_unscored=settings.trust_unscored_tags,
        )
        own = {t.id for t in (vocabulary.exact(n) for n in (*STATUS_TAGS, settings.created_tag_parent)) if t}
        budget = 0 if settings.local else settings.vocabulary_budget
        offered = vocabulary.prompt_tags(budget, parent=settings.vocabulary_parent, exclude_ids=own)
        self.hint = [prompt_entry(tag) for tag in offered]
        closed = settings.only_existing_tags and 0 < len(offered) <= MAX_ENUM
        self.allowed = [tag.name for tag in offered] if closed else []
        self._media_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
        self._gateway_slots = threading.BoundedSemaphore(settings.concurrency)
        self._locks_guard = threading.Lock()
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}

    @property
    def parent_missing(self) -> bool:
        """``vocabularyParent`` names no tag, so the prompt fell back to the most-used tags."""
        parent = self.settings.vocabulary_parent
        return bool(parent) and self.book.vocabulary.branch_root(str(parent)) is None

    def describe_vocabulary(self) -> str:
        if self.settings.local:
            return (
                "the local model reports its own fixed names (map them with synonyms in the rules file): "
                "vocabularyParent, vocabularyBudget, onlyExistingTags' closed list, includeContext, frameLayout "
                "and imageDetail do not apply to it"
            )
        parent = self.settings.vocabulary_parent
        if self.parent_missing:
            scope = f"most used: vocabularyParent {parent!r} names no tag, so the vocabulary fell back to all tags"
        else:
            scope = f"descendants of {parent!r}" if parent else "most used"
        closed = ", as a closed list (JSON-schema enum)" if self.allowed else ""
        return f"sending {len(self.hint)} tag name(s) to the model ({scope}{closed})"

    def _fetch(self, url: str) -> bytes:
        try:
            return self.client.download(url)
        except StashError as exc:
            raise MediaError(str(exc)) from None

    def _key(self, item: Item, context: str) -> str | None:
        if item.file is None:
            return None
        settings = self.settings
        frames = settings.frames_per_scene if item.kind == "scene" else 1
        plan = (frames, settings.frame_layout, settings.max_image_side, settings.image_detail)
        gateway = (settings.provider, settings.gateway_url, settings.model, PROMPT_VERSION)
        return answer_key(item.file.fingerprint(), item.kind, plan, gateway, context)

    def answer(self, item: Item) -> Answer:
        """The model's candidates for an item: from the cache, else from the gateway.

        Items with the same key (duplicate files) wait for each other, so the second one finds
        the first one's answer in the cache instead of paying for it again.
        """
        context = item_context(item) if self.settings.include_context and not self.settings.local else ""
        cache_key = self._key(item, context)
        if self.cache is None or cache_key is None:
            return self._ask(item, context, None)
        with self._key_lock(cache_key):
            hit = self.cache.get(cache_key)
            if hit is not None:
                return Answer(hit.candidates, hit.frame_count, cache_key, cached=True)
            return self._ask(item, context, cache_key)

    @contextmanager
    def _key_lock(self, cache_key: str) -> Iterator[None]:
        with self._locks_guard:
            lock, users = self._key_locks.get(cache_key, (threading.Lock(), 0))
            self._key_locks[cache_key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._locks_guard:
                lock, users = self._key_locks[cache_key]
                if users == 1:
                    del self._key_locks[cache_key]
                else:
                    self._key_locks[cache_key] = (lock, users - 1)

    def _ask(self, item: Item, context: str, cache_key: str | None) -> Answer:
        with self._media_slots:
            shots = pictures(item, self.media, self._fetch)
        grid = None
        frame_count = len(shots)
        if self.settings.frame_layout == "grid" and len(shots) > 1 and not self.settings.local:
            sheet, grid = contact_sheet(shots, max_side=self.settings.max_image_side)
            shots = [sheet]
        request = TagRequest(
            kind=item.kind,
            pictures=shots,
            frame_count=frame_count,
            grid=grid,
            vocabulary=self.hint,
            allowed_names=self.allowed,
            context=context,
            detail=self.settings.image_detail,
        )
        if self.provider is None:
            raise GatewayError("no gateway in this mode")
        with self._gateway_slots:
            answer = self.provider.describe(request)
        for note in answer.notes:
            getattr(self.log, note.level)(f"{item.label}: {note.text}")
        if self.cache is not None and cache_key is not None and item.file is not None:
            self.cache.put(cache_key, item.file.fingerprint(), answer.candidates, frame_count, answer.usage)
        return Answer(answer.candidates, frame_count, cache_key, answer.usage, answer.calls)

    def process(self, item: Item) -> ItemResult:
        try:
            answer = self.answer(item)
        except MediaError as exc:
            return self._failed(item, "media", str(exc))
        except GatewayFatal:
            raise
        except GatewayError as exc:
            return self._failed(item, "gateway", str(exc))
        decision = decide(answer.candidates, answer.frame_count, self.book.vocabulary, self.policy)
        result = ItemResult(
            item.kind, item.id, "preview", decision, usage=answer.usage, calls=answer.calls, cached=answer.cached
        )
        verb = "would tag " if self.dry_run else ""
        note = f"{item.label}: {verb}{', '.join(v.label for v in decision.applied) or 'no tag passed'}"
        if decision.review:
            note += f"; for review: {', '.join(v.label for v in decision.review)}"
        if answer.usage.total_tokens:
            note += f" ({answer.usage.total_tokens} tokens)"
        elif answer.cached:
            note += " (cached answer)"
        self.log.debug(note)
        if self.dry_run:
            return result
        applied = self.book.ids_for(decision.applied)
        self.client.add_tags(item.kind, item.id, applied + self._status_ids(decision))
        self._journal(item.kind, item.id, answer.key, applied, decision)
        result.status = "tagged"
        return result

    def _status_ids(self, decision: Decision) -> list[str]:
        """``AI_Tagged``, and ``AI_Review`` when the decision left suggestions for review."""
        names = [STATUS_TAGGED, STATUS_REVIEW] if decision.review else [STATUS_TAGGED]
        return [self.book.status_tag(name).id for name in names]

    def _journal(
        self, kind: str, item_id: str, answer_key: str | None, applied: list[str], decision: Decision
    ) -> None:
        if self.cache is not None:
            review = [{"tag": v.label, "score": round(v.score, 3)} for v in decision.review]
            self.cache.record(JournalEntry(kind, item_id, answer_key, "tagged", applied, review))

    def _failed(self, item: Item, stage: str, reason: str) -> ItemResult:
        self.log.error(f"{item.label}: {reason}")
        if not self.dry_run:
            self.client.add_tags(item.kind, item.id, [self.book.status_tag(STATUS_ERRORED).id])
        return ItemResult(item.kind, item.id, "errored", error=reason, failed_stage=stage)

    def reapply(self, entry: JournalEntry) -> ItemResult:
        """Re-decide a processed item from its cached answer with today's settings; no gateway call.

        Adds what now passes, then removes only tags this plugin applied before and no longer
        decides (never the user's own tags), and keeps ``AI_Review`` in step.
        """
        cached = self.cache.get(entry.answer_key) if self.cache and entry.answer_key else None
        if cached is None:
            return ItemResult(entry.kind, entry.id, "skipped", error="no cached answer")
        decision = decide(cached.candidates, cached.frame_count, self.book.vocabulary, self.policy)
        result = ItemResult(entry.kind, entry.id, "preview" if self.dry_run else "tagged", decision, cached=True)
        if self.dry_run:
            return result
        applied = self.book.ids_for(decision.applied)
        self.client.add_tags(entry.kind, entry.id, applied + self._status_ids(decision))
        dropped = [tag_id for tag_id in entry.applied if tag_id not in applied]
        if entry.review and not decision.review:
            dropped.append(self.book.status_tag(STATUS_REVIEW).id)
        if dropped:
            self.client.remove_tags(entry.kind, entry.id, dropped)
        self._journal(entry.kind, entry.id, entry.answer_key, applied, decision)
        return result
