"""One tagging run: untagged items -> pictures -> gateway -> decision -> one write per item.

Items stream from Stash a page at a time into a bounded pool of workers. Frame extraction is
bounded by CPU count and gateway calls by ``concurrency``, so the stages overlap without
flooding either. A cached answer for the same file, frame plan, provider and model skips both.
Each item ends in exactly one ``ADD`` mutation carrying its tags and its status tags together:
killing the process at any instant leaves every item either untouched or done.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ai_tagger.cache import Cache
from ai_tagger.decide.rules import Rules
from ai_tagger.decide.vocabulary import Vocabulary
from ai_tagger.gateway.base import GatewayFatal, Provider
from ai_tagger.log import Log
from ai_tagger.report import ItemResult, RunSummary
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.tagger import Tagger

BREAKER = 5

KINDS_BY_MODE = {
    "tag_untagged": ("scene", "image"),
    "tag_scenes": ("scene",),
    "tag_images": ("image",),
    "preview": ("scene", "image"),
    "reapply": ("scene", "image"),
}


class RunStopped(Exception):
    """The run cannot go on (gateway down, Stash gone); items done so far stay done."""

    def __init__(self, reason: str, summary: RunSummary | None = None, *, clean: bool = False) -> None:
        super().__init__(reason)
        self.summary = summary
        self.clean = clean


def _bounded(
    executor: ThreadPoolExecutor, work: Iterable[Any], fn: Callable[[Any], ItemResult], limit: int
) -> Iterator[Future[ItemResult]]:
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
    provider: Provider | None,
    log: Log,
    ffmpeg: str,
    rules: Rules,
    cache: Cache | None,
    limit: int | None = None,
) -> RunSummary:
    """Tag, preview or re-apply the items of ``mode``; raise :class:`RunStopped` with the summary so far."""
    summary = RunSummary(mode=mode)
    if provider is not None:
        provider.preflight()
    vocabulary = Vocabulary(client.all_tags())
    tagger = Tagger(
        client=client,
        settings=settings,
        provider=provider,
        log=log,
        ffmpeg=ffmpeg,
        dry_run=mode == "preview",
        vocabulary=vocabulary,
        rules=rules,
        cache=cache,
    )
    say = log.warning if tagger.parent_missing else log.info
    say(f"loaded {len(vocabulary)} tags; {tagger.describe_vocabulary()}")
    kinds = KINDS_BY_MODE[mode]
    work: Iterable[Any]
    if mode == "reapply":
        if cache is None:
            raise RunStopped("re-applying needs the result cache: turn off 'disableCache'")
        work, process = cache.journal(kinds), tagger.reapply
        summary.total = cache.journal_count(kinds)
    else:
        summary.total = sum(client.count_untagged(k) for k in kinds)
        work, process = itertools.chain.from_iterable(client.untagged(k) for k in kinds), tagger.process
    summary.untagged = summary.total
    if limit is None and mode == "preview" and settings.preview_items:
        limit = settings.preview_items
    if limit is not None:
        work = itertools.islice(work, limit)
        summary.total = min(summary.total, limit)
    log.info(f"{mode}: {summary.total} item(s) to process with {settings.describe_model()}")
    workers = settings.concurrency + (os.cpu_count() or 1)
    started = time.monotonic()
    failures_in_a_row = 0
    clean = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tagger") as executor:
        try:
            for future in _bounded(executor, work, process, workers * 2):
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
                budget = settings.max_tokens_per_run
                if budget and summary.usage.total_tokens >= budget:
                    raise RunStopped(
                        f"token budget reached: {summary.usage.total_tokens} of {budget} tokens spent "
                        "(maxTokensPerRun); the next run goes on from here",
                        clean=True,
                    )
                _progress(log, summary, started)
        except RunStopped as exc:
            summary.stopped = str(exc)
            executor.shutdown(wait=True, cancel_futures=True)
            clean = exc.clean
        finally:
            summary.created_tags = list(tagger.book.created)
    if summary.stopped:
        raise RunStopped(summary.stopped, summary, clean=clean)
    log.progress(1.0)
    tagged, applied = ("would tag", "would be applied") if mode == "preview" else ("tagged", "applied")
    log.info(
        f"{mode}: done, {summary.processed} item(s), {tagged} {summary.tagged}, {summary.review} for review, "
        f"{summary.errored} errored, {summary.tags_applied} tag(s) {applied}, {summary.gateway_calls} model "
        f"call(s), {summary.cache_hits} cached, {summary.usage.total_tokens} tokens"
    )
    return summary


def _progress(log: Log, summary: RunSummary, started: float) -> None:
    if summary.total:
        log.progress(summary.processed / summary.total)
    if summary.processed % 25 == 0 and summary.total:
        elapsed = time.monotonic() - started
        rate = summary.processed / elapsed if elapsed else 0
        remaining = (summary.total - summary.processed) / rate if rate else 0
        log.info(
            f"{summary.processed}/{summary.total} items, {rate:.2f}/s, about {remaining:.0f} s left, "
            f"{summary.usage.total_tokens} tokens so far"
        )
