"""One item at a time: media -> analyzers -> one decision -> one write (``write.apply``).

A gallery's media are its sampled member images (:class:`~ai_tagger.media.gallery.GalleryMedia`)
and its tag answer is rolled up from them (:mod:`ai_tagger.analyze.galleries`) before the other
analyzers run, the way re-apply seeds a cached answer; the decision and the write are a scene's.

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
from ai_tagger.analyze.galleries import AnswerMembers, GalleryAnswers
from ai_tagger.decide.decision import Policy
from ai_tagger.decide.item import rejection_keys_of
from ai_tagger.errors import AiTaggerError, ItemError, MediaError, StashError
from ai_tagger.media.gallery import GalleryMedia
from ai_tagger.media.source import ItemMedia, MediaOptions
from ai_tagger.stash.galleries import sampled_members
from ai_tagger.stash.models import Item, ItemState, Kind, Tag
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.cache import ItemRecord
from ai_tagger.store.journal import Journal
from ai_tagger.tasks.context import RunContext
from ai_tagger.tasks.modes import Source
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
        self.log = log
        self.images_per_gallery = settings.images_per_gallery
        self.galleries = GalleryAnswers(
            members=AnswerMembers(self.answers),
            rejection_keys=functools.partial(rejection_keys_of, vocabulary=vocabulary, rules=context.rules),
            log=log,
            rejections=functools.partial(_member_rejections, journal, run_id),
            # A run that tags untagged images too answers a gallery's untagged members as those images.
            images_in_run=context.mode.source == Source.UNTAGGED and "image" in context.mode.kinds,
        )
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
        seed = Findings()
        try:
            if item.kind == Kind.GALLERY:
                members = sampled_members(self.client, item, self.images_per_gallery)
                if not members:
                    self.log.info(f"{item.label}: no images; skipped")
                    return ItemResult(item.kind, item.id, ItemStatus.SKIPPED, error="no images")
                gallery = GalleryMedia(item, members, self.media, self._fetch, self._media_slots)
                seed.add(self.galleries.answer(item, gallery).answer)
                media: ItemMedia = gallery
            else:
                media = ItemMedia(item, self.media, self._fetch, self._media_slots)
            findings = run_analyzers(self.analyzers, item, media, seed)
        except ItemError as exc:
            return self.applier.failed(item.kind, item.id, item.label, exc, set(item.tag_ids))
        except (ValueError, RecursionError, OverflowError, TypeError, LookupError, AttributeError) as exc:
            if isinstance(exc, AiTaggerError):
                raise
            # An answer no reader foresaw costs this item, never the run.
            failure = ItemError(f"the answer could not be read ({type(exc).__name__})")
            return self.applier.failed(item.kind, item.id, item.label, failure, set(item.tag_ids))
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


def _member_rejections(journal: Journal, run_id: str | None, member: Item) -> set[str]:
    """Tags the user removed from a gallery's member image (found now if removed since).

    The member was read when its gallery was sampled. When this run has written to that image (the
    image pass of ``tag_untagged``, in another worker), that read may predate our own write and would
    record it as taken back by the user, for good; the image pass already recorded what the user took
    back before this run, so those rejections are the answer."""
    if run_id is not None and (
        journal.added([run_id], member.kind, member.id) or journal.added_fields([run_id], member.kind, member.id)
    ):
        return journal.rejections(member.kind, member.id)
    now = ItemState(tag_ids=set(member.tag_ids), performer_ids=set(member.performer_ids), details=member.details)
    return set(journal.rejected(member.kind, member.id, now))


def _no_media(url: str) -> bytes:
    raise MediaError("re-applying from the cache reads no media")


def _record_created(journal: Journal, run_id: str, tag: Tag) -> None:
    journal.created_tag(run_id, tag.id, tag.name)
