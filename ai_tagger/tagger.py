"""One item at a time: an answer (:mod:`ai_tagger.answers`) -> a decision applied (:mod:`ai_tagger.apply`).

Getting the answer (cache, media, provider) and applying it (policy, tag book, one write) are
separate objects, so a mode that needs only one of them (re-apply: no provider) uses only it.
"""

from __future__ import annotations

import functools

from ai_tagger.answers import Answers
from ai_tagger.apply import Applier
from ai_tagger.cache import Cache, JournalEntry
from ai_tagger.decide.decision import Policy
from ai_tagger.decide.rules import Rules
from ai_tagger.decide.vocabulary import Vocabulary
from ai_tagger.errors import AiTaggerError, ItemError
from ai_tagger.gateway.base import Provider
from ai_tagger.journal import Journal
from ai_tagger.log import Log
from ai_tagger.report import ItemResult
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import Item, Tag
from ai_tagger.tagbook import TagBook


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
        cache: Cache,
        marker_end: bool = True,
        journal: Journal | None = None,
        run_id: str | None = None,
        learned: dict[str, float] | None = None,
    ) -> None:
        """``journal`` and ``run_id`` record a writing run's provenance; ``learned``: raised thresholds."""
        on_create = None
        if journal is not None and run_id is not None:
            on_create = functools.partial(_record_created, journal, run_id)
        self.book = TagBook(client, vocabulary, parent_name=settings.created_tag_parent, on_create=on_create)
        self.answers = Answers(
            client=client,
            settings=settings,
            provider=provider,
            log=log,
            ffmpeg=ffmpeg,
            vocabulary=vocabulary,
            cache=None if settings.disable_cache else cache,
        )
        self.applier = Applier(
            client=client,
            book=self.book,
            policy=Policy.from_settings(settings, rules, learned),
            log=log,
            cache=cache,
            dry_run=dry_run,
            marker_tags=settings.marker_tags,
            marker_end=marker_end,
            journal=journal,
            run_id=run_id,
        )


    @property
    def parent_missing(self) -> bool:
        return self.answers.parent_missing

    def describe_vocabulary(self) -> str:
        return self.answers.describe_vocabulary()

    def process(self, item: Item) -> ItemResult:
        """Answer, decide, write; an item's own failure marks it ``AI_Errored``, a run's failure propagates."""
        try:
            answer = self.answers.answer(item)
        except ItemError as exc:
            return self.applier.failed(item.kind, item.id, item.label, exc, set(item.tag_ids))
        except (ValueError, RecursionError, OverflowError, TypeError, LookupError, AttributeError) as exc:
            if isinstance(exc, AiTaggerError):
                raise
            # An answer no reader foresaw costs this item, never the run.
            failure = ItemError(f"the answer could not be read ({type(exc).__name__})")
            return self.applier.failed(item.kind, item.id, item.label, failure, set(item.tag_ids))
        return self.applier.apply(item.kind, item.id, item.label, answer, set(item.tag_ids))

    def reapply(self, entry: JournalEntry) -> ItemResult:
        """Re-decide a processed item from its cached answer with today's settings; no gateway call."""
        answer = self.answers.cached(entry.answer_key)
        if answer is None:
            return ItemResult(entry.kind, entry.id, "skipped", error="no cached answer")
        return self.applier.reapply(entry, answer)


def _record_created(journal: Journal, run_id: str, tag: Tag) -> None:
    journal.created_tag(run_id, tag.id, tag.name)
