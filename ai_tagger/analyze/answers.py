"""Getting a model's answer for an item: from the cache, else pictures -> provider -> cache.

Shared by all workers of a run. Gateway calls are bounded by ``concurrency`` (frame extraction
by the item's shared media); items with the same cache key (duplicate files) wait for each other so that a
duplicate is answered from the cache instead of being paid for twice.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ai_tagger.analyze.gateway.answer import MAX_ENUM
from ai_tagger.analyze.gateway.base import Provider, TagAnswer, TagRequest
from ai_tagger.analyze.gateway.prompt import PROMPT_VERSION, item_context, transcript_context
from ai_tagger.analyze.gateway.split import chunks, merge
from ai_tagger.errors import GatewayError
from ai_tagger.log import Log
from ai_tagger.media.grid import contact_sheet
from ai_tagger.media.source import ItemMedia
from ai_tagger.settings import STATUS_TAGS, Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import Item
from ai_tagger.stash.vocabulary import Vocabulary, prompt_entry
from ai_tagger.store.cache import Cache, answer_key


class Answers:
    """The model's candidates for items, each paid for at most once per cache key."""

    def __init__(
        self,
        *,
        client: StashClient,
        settings: Settings,
        provider: Provider | None,
        log: Log,
        vocabulary: Vocabulary,
        cache: Cache | None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.provider = provider
        self.vocabulary = vocabulary
        self.log = log
        self.cache = cache
        own = {t.id for t in (vocabulary.exact(n) for n in (*STATUS_TAGS, settings.created_tag_parent)) if t}
        budget = 0 if settings.local else settings.vocabulary_budget
        offered = vocabulary.prompt_tags(budget, parent=settings.vocabulary_parent, exclude_ids=own)
        self.hint = [prompt_entry(tag) for tag in offered]
        closed = settings.only_existing_tags and 0 < len(offered) <= MAX_ENUM
        self.allowed = [tag.name for tag in offered] if closed else []
        self._gateway_slots = threading.BoundedSemaphore(settings.concurrency)
        self._locks_guard = threading.Lock()
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}

    @property
    def parent_missing(self) -> bool:
        """``vocabularyParent`` names no tag, so the prompt fell back to the most-used tags."""
        parent = self.settings.vocabulary_parent
        return bool(parent) and self.vocabulary.branch_root(str(parent)) is None

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

    def cached(self, cache_key: str | None) -> TagAnswer | None:
        """A stored answer, without any call."""
        return self.cache.get(cache_key) if self.cache is not None and cache_key else None

    def answer(self, item: Item, media: ItemMedia, *, transcript: str = "") -> TagAnswer:
        """The model's candidates for an item: from the cache, else from the gateway.

        Items with the same key (duplicate files) wait for each other, so the second one finds
        the first one's answer in the cache instead of paying for it again.
        """
        context = item_context(item) if self.settings.include_context and not self.settings.local else ""
        if transcript and not self.settings.local:
            context = "\n".join(part for part in (context, transcript_context(transcript)) if part)
        cache_key = self._key(item, context)
        if self.cache is None or cache_key is None:
            return self._ask(item, media, context, None)
        with self._key_lock(cache_key):
            return self.cached(cache_key) or self._ask(item, media, context, cache_key)

    def _key(self, item: Item, context: str) -> str | None:
        if item.file is None:
            return None
        settings = self.settings
        frames = settings.frames_per_scene if item.kind == "scene" else 1
        plan: tuple[object, ...] = (frames, settings.frame_layout, settings.max_image_side, settings.image_detail)
        if self._dense(item):
            # A different plan, so dense and spread answers never mix in the cache.
            every = ("every", settings.frame_interval, settings.max_frames_per_scene, settings.frames_per_request)
            plan = (*every, *plan[1:])
        gateway: tuple[object, ...] = (settings.provider, settings.gateway_url, settings.model, PROMPT_VERSION)
        if self.describes:
            gateway = (*gateway, "describe")  # an answer without a description must not stand in for one
        return answer_key(item.file.fingerprint(), item.kind, plan, gateway, context)

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

    @property
    def describes(self) -> bool:
        """The tag request also asks for a description (``writeDetails``; the provider may ignore it)."""
        return self.settings.write_details and not self.settings.local

    def _dense(self, item: Item) -> bool:
        return item.kind == "scene" and self.settings.frame_interval > 0

    def _request(self, item: Item, pictures: list[bytes], context: str) -> TagRequest:
        """One request; several frames become one numbered contact sheet with ``frameLayout`` grid."""
        grid = None
        frame_count = len(pictures)
        if self.settings.frame_layout == "grid" and len(pictures) > 1 and not self.settings.local:
            sheet, grid = contact_sheet(pictures, max_side=self.settings.max_image_side)
            pictures = [sheet]
        return TagRequest(
            kind=item.kind,
            pictures=pictures,
            frame_count=frame_count,
            grid=grid,
            vocabulary=self.hint,
            allowed_names=self.allowed,
            context=context,
            detail=self.settings.image_detail,
            describe=self.describes,
        )

    def _describe(self, request: TagRequest) -> TagAnswer:
        if self.provider is None:
            raise GatewayError("no gateway in this mode")
        with self._gateway_slots:
            return self.provider.describe(request)

    def _ask(self, item: Item, media: ItemMedia, context: str, cache_key: str | None) -> TagAnswer:
        shot = media.shots()
        frame_count = len(shot.pictures)
        if self._dense(item) and not self.settings.local:
            # The local model takes every frame at once (it batches them itself).
            parts = chunks(frame_count, self.settings.frames_per_request)
        else:
            parts = [(0, frame_count)]
        answers = [
            (offset, self._describe(self._request(item, shot.pictures[offset : offset + size], context)))
            for offset, size in parts
        ]
        answer = answers[0][1] if len(answers) == 1 else merge(answers)
        for note in answer.notes:
            getattr(self.log, note.level)(f"{item.label}: {note.text}")
        if self.cache is not None and cache_key is not None and item.file is not None:
            self.cache.put(
                cache_key, item.file.fingerprint(), answer.candidates, frame_count, answer.usage, times=shot.times,
                description=answer.description,
            )  # fmt: skip
        return dataclasses.replace(answer, frame_count=frame_count, key=cache_key, cached=False, times=shot.times)
