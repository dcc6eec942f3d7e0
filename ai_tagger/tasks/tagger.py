"""One item at a time: media -> analyzers -> one decision -> one write (``write.apply``).

Getting the findings (cache, media, providers) and applying them (decision, tag book, one
write) are separate objects, so a mode that needs only one of them (re-apply: no provider)
uses only it.
"""

from __future__ import annotations

import functools
import os
import threading

from ai_tagger.analyze.analyzers.tags import TagAnalyzer
from ai_tagger.analyze.base import AnalyzerContext, Findings, build_analyzers, run_analyzers
from ai_tagger.decide.decision import Policy
from ai_tagger.errors import ItemError, MediaError, StashError
from ai_tagger.media.source import ItemMedia, MediaOptions
from ai_tagger.stash.models import Item, ItemState, Tag
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.cache import ItemRecord
from ai_tagger.store.journal import Journal
from ai_tagger.tasks.context import RunContext
from ai_tagger.write.apply import Applier
from ai_tagger.write.result import ItemResult, ItemStatus
from ai_tagger.write.tagbook import TagBook


class Tagger:
    """Processes single items; shared by all workers of a run."""

    def __init__(
        self,
        context: RunContext,
        *,
        vocabulary: Vocabulary,
        run_id: str | None = None,
        learned: dict[str, float] | None = None,
    ) -> None:
        """``run_id``: a writing run's id in the journal (its provenance); ``learned``: raised thresholds."""
        client, settings, log, cache, journal = (
            context.client, context.settings, context.log, context.cache, context.journal
        )  # fmt: skip
        on_create = None
        if run_id is not None:
            on_create = functools.partial(_record_created, journal, run_id)
        self.client = client
        self.book = TagBook(client, vocabulary, parent_name=settings.created_tag_parent, on_create=on_create)
        self.analyzers = build_analyzers(
            AnalyzerContext(
                settings=settings,
                log=log,
                client=client,
                vocabulary=vocabulary,
                provider=context.provider,
                cache=None if settings.disable_cache else cache,
                fresh=context.provider is not None,
            )
        )
        self.answers = next(a.answers for a in self.analyzers if isinstance(a, TagAnalyzer))
        self.media = MediaOptions.from_settings(settings, ffmpeg=context.ffmpeg, headers=client.auth_headers)
        self._media_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
        self.applier = Applier(
            client=client,
            book=self.book,
            policy=Policy.from_settings(settings, context.rules, learned),
            log=log,
            cache=cache,
            dry_run=not context.mode.writes,
            marker_tags=settings.marker_tags,
            marker_end=context.marker_end,
            journal=journal,
            run_id=run_id,
        )

    @property
    def parent_missing(self) -> bool:
        return self.answers.parent_missing

    def describe_vocabulary(self) -> str:
        return self.answers.describe_vocabulary()

    def _fetch(self, url: str) -> bytes:
        try:
            return self.client.download(url)
        except StashError as exc:
            raise MediaError(str(exc)) from None

    def process(self, item: Item) -> ItemResult:
        """Analyze, decide, write; an item's own failure marks it ``AI_Errored``, a run's failure propagates."""
        media = ItemMedia(item, self.media, self._fetch, self._media_slots)
        try:
            findings = run_analyzers(self.analyzers, item, media, Findings())
        except ItemError as exc:
            return self.applier.failed(item.kind, item.id, item.label, exc, set(item.tag_ids))
        now = ItemState(tag_ids=set(item.tag_ids), performer_ids=set(item.performer_ids), details=item.details)
        return self.applier.apply(item.kind, item.id, item.label, findings, now)

    def reapply(self, entry: ItemRecord) -> ItemResult:
        """Re-decide a processed item from its cached answer with today's settings; no gateway call."""
        answer = self.answers.cached(entry.answer_key)
        if answer is None:
            return ItemResult(entry.kind, entry.id, ItemStatus.SKIPPED, error="no cached answer")
        item = Item(kind=entry.kind, id=entry.id)
        media = ItemMedia(item, self.media, _no_media, self._media_slots)
        findings = run_analyzers(self.analyzers, item, media, Findings(answer))
        return self.applier.reapply(entry, findings)


def _no_media(url: str) -> bytes:
    raise MediaError("re-applying from the cache reads no media")


def _record_created(journal: Journal, run_id: str, tag: Tag) -> None:
    journal.created_tag(run_id, tag.id, tag.name)
