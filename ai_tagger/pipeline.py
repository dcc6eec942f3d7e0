"""One tagging run: untagged items -> pictures -> gateway -> decision -> one write per item.

Items stream from Stash a page at a time into a bounded pool of workers. Frame extraction is
bounded by CPU count and gateway calls by ``concurrency``, so the stages overlap without
flooding either. Each item ends in exactly one ``ADD`` mutation carrying its tags and its status
tag together: killing the process at any instant leaves every item either untouched or done.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ai_tagger.decide.decision import Decision, Policy, decide
from ai_tagger.decide.normalize import key
from ai_tagger.decide.vocabulary import Vocabulary
from ai_tagger.gateway.base import GatewayError, GatewayFatal, Provider, TagRequest, Usage
from ai_tagger.log import Log
from ai_tagger.media.errors import MediaError
from ai_tagger.media.source import MediaOptions, pictures
from ai_tagger.settings import STATUS_ERRORED, STATUS_TAGGED, STATUS_TAGS, Settings
from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.stash.models import Item
from ai_tagger.tagbook import TagBook

VOCABULARY_HINT = 200
BREAKER = 5
MAX_REPORTED_ITEMS = 500

KINDS_BY_MODE = {
    "tag_untagged": ("scene", "image"),
    "tag_scenes": ("scene",),
    "tag_images": ("image",),
    "preview": ("scene", "image"),
}


class RunStopped(Exception):
    """The run cannot go on (gateway down, Stash gone); items done so far stay done."""

    def __init__(self, reason: str, summary: RunSummary | None = None) -> None:
        super().__init__(reason)
        self.summary = summary


@dataclass
class ItemResult:
    item: Item
    status: str
    decision: Decision | None = None
    error: str | None = None
    failed_stage: str | None = None
    usage: Usage = field(default_factory=Usage)
    calls: int = 0

    def report(self) -> dict[str, Any]:
        row: dict[str, Any] = {"kind": self.item.kind, "id": self.item.id, "status": self.status}
        if self.decision is not None:
            row["tags"] = [v.label for v in self.decision.applied]
            row["candidates"] = [v.describe() for v in self.decision.verdicts]
        if self.error:
            row["error"] = self.error
        return row


@dataclass
class RunSummary:
    mode: str
    total: int = 0
    processed: int = 0
    tagged: int = 0
    errored: int = 0
    tags_applied: int = 0
    gateway_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    created_tags: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None

    def add(self, result: ItemResult) -> None:
        self.processed += 1
        self.usage.add(result.usage)
        self.gateway_calls += result.calls
        if result.status == "errored":
            self.errored += 1
        elif result.decision is not None:
            self.tagged += 1
            self.tags_applied += len(result.decision.applied)
        if len(self.items) < MAX_REPORTED_ITEMS:
            self.items.append(result.report())

    def as_output(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "total": self.total,
            "processed": self.processed,
            "tagged": self.tagged,
            "errored": self.errored,
            "tags_applied": self.tags_applied,
            "gateway_calls": self.gateway_calls,
            "tokens": {
                "prompt": self.usage.prompt_tokens,
                "completion": self.usage.completion_tokens,
                "total": self.usage.total_tokens,
            },
            "created_tags": self.created_tags,
            "items": self.items,
            **({"stopped": self.stopped} if self.stopped else {}),
        }


class Tagger:
    """Processes single items; shared by all workers of a run."""

    def __init__(
        self,
        *,
        client: StashClient,
        settings: Settings,
        provider: Provider,
        log: Log,
        ffmpeg: str,
        dry_run: bool,
        vocabulary: Vocabulary,
    ) -> None:
        self.client = client
        self.settings = settings
        self.provider = provider
        self.log = log
        self.dry_run = dry_run
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
        )
        status_ids = {t.id for t in (vocabulary.exact(n) for n in STATUS_TAGS) if t}
        self.hint = [t.name for t in vocabulary.most_used(VOCABULARY_HINT, exclude=status_ids)]
        self._media_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
        self._gateway_slots = threading.BoundedSemaphore(settings.concurrency)

    def _fetch(self, url: str) -> bytes:
        try:
            response = self.client.session().get(url, headers=self.client.auth_headers, timeout=(5, 120))
        except Exception as exc:  # noqa: BLE001 - any transport failure fails this item only
            raise MediaError(f"cannot download from Stash: {type(exc).__name__}") from None
        if not response.ok:
            raise MediaError(f"Stash answered HTTP {response.status_code} for the media URL")
        return response.content

    def process(self, item: Item) -> ItemResult:
        try:
            with self._media_slots:
                shots = pictures(item, self.media, self._fetch)
        except MediaError as exc:
            return self._failed(item, "media", str(exc))
        try:
            with self._gateway_slots:
                answer = self.provider.describe(TagRequest(kind=item.kind, pictures=shots, vocabulary=self.hint))
        except GatewayFatal:
            raise
        except GatewayError as exc:
            return self._failed(item, "gateway", str(exc))
        decision = decide(answer.candidates, len(shots), self.book.vocabulary, self.policy)
        result = ItemResult(item, "preview", decision, usage=answer.usage, calls=answer.calls)
        if self.dry_run:
            return result
        tag_ids = self.book.ids_for(decision.applied)
        tag_ids.append(self.book.status_tag(STATUS_TAGGED).id)
        self.client.add_tags(item.kind, item.id, tag_ids)
        result.status = "tagged"
        self.log.debug(f"{item.label}: {', '.join(v.label for v in decision.applied) or 'no tag passed'}")
        return result

    def _failed(self, item: Item, stage: str, reason: str) -> ItemResult:
        self.log.error(f"{item.label}: {reason}")
        if not self.dry_run:
            self.client.add_tags(item.kind, item.id, [self.book.status_tag(STATUS_ERRORED).id])
        return ItemResult(item, "errored", error=reason, failed_stage=stage)


def _bounded(executor: ThreadPoolExecutor, work: Iterable[Item], fn: Any, limit: int) -> Iterator[Future[ItemResult]]:
    """Completed futures, never holding more than ``limit`` submitted items in memory."""
    pending: set[Future[ItemResult]] = set()
    source = iter(work)
    try:
        while True:
            for item in itertools.islice(source, limit - len(pending)):
                pending.add(executor.submit(fn, item))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from done
    finally:
        for future in pending:
            future.cancel()


def run(
    *,
    mode: str,
    client: StashClient,
    settings: Settings,
    provider: Provider,
    log: Log,
    ffmpeg: str,
    limit: int | None = None,
    ids: dict[str, list[str]] | None = None,
) -> RunSummary:
    """Tag (or preview) the items of ``mode``; raise :class:`RunStopped` with the summary so far."""
    summary = RunSummary(mode=mode)
    provider.preflight()
    vocabulary = Vocabulary(client.all_tags())
    log.debug(f"loaded {len(vocabulary)} tags")
    tagger = Tagger(
        client=client,
        settings=settings,
        provider=provider,
        log=log,
        ffmpeg=ffmpeg,
        dry_run=mode == "preview",
        vocabulary=vocabulary,
    )
    kinds = KINDS_BY_MODE[mode]
    if ids:
        items: Iterable[Item] = itertools.chain.from_iterable(client.find(k, ids[k]) for k in kinds if ids.get(k))
        summary.total = sum(len(ids.get(k) or []) for k in kinds)
    else:
        summary.total = sum(client.count_untagged(k) for k in kinds)
        items = itertools.chain.from_iterable(client.untagged(k) for k in kinds)
    if limit is not None:
        items = itertools.islice(items, limit)
        summary.total = min(summary.total, limit)
    log.info(f"{mode}: {summary.total} item(s) to process with {settings.model} at {settings.gateway_url}")
    workers = settings.concurrency + (os.cpu_count() or 1)
    started = time.monotonic()
    failures_in_a_row = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tagger") as executor:
        try:
            for future in _bounded(executor, items, tagger.process, workers * 2):
                try:
                    result = future.result()
                except GatewayFatal as exc:
                    raise RunStopped(str(exc)) from None
                except StashError as exc:
                    raise RunStopped(f"Stash failed during the run: {exc}") from None
                summary.add(result)
                failures_in_a_row = failures_in_a_row + 1 if result.failed_stage == "gateway" else 0
                if failures_in_a_row >= BREAKER:
                    raise RunStopped(f"stopped after {BREAKER} gateway failures in a row; last: {result.error}")
                _progress(log, summary, started)
        except RunStopped as exc:
            summary.stopped = str(exc)
            executor.shutdown(wait=True, cancel_futures=True)
        finally:
            summary.created_tags = list(tagger.book.created)
    if summary.stopped:
        raise RunStopped(summary.stopped, summary)
    log.progress(1.0)
    log.info(
        f"{mode}: done, {summary.processed} item(s), {summary.tagged} tagged, {summary.errored} errored, "
        f"{summary.tags_applied} tag(s) applied, {summary.usage.total_tokens} tokens"
    )
    return summary


def _progress(log: Log, summary: RunSummary, started: float) -> None:
    if summary.total:
        log.progress(summary.processed / summary.total)
    if summary.processed % 25 == 0 and summary.total:
        elapsed = time.monotonic() - started
        rate = summary.processed / elapsed if elapsed else 0
        remaining = (summary.total - summary.processed) / rate if rate else 0
        log.info(f"{summary.processed}/{summary.total} items, {rate:.2f}/s, about {remaining:.0f} s left")
