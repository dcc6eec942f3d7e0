"""One run: a source of work (what the mode reads) -> a driver loop over a bounded worker pool.

Items stream from Stash (or the journal) a page at a time into a bounded pool of workers.
Frame extraction is bounded by CPU count and gateway calls by ``concurrency``, so the stages
overlap without flooding either. A cached answer for the same file, frame plan, provider and
model skips both. Each item ends in exactly one ``ADD`` mutation carrying its tags and its
status tags together: killing the process at any instant leaves every item either untouched or
done. The run ends early, with the items done so far kept, when the gateway or Stash fails
(a :class:`~ai_tagger.errors.RunError`), after :data:`BREAKER` gateway failures in a row, or
cleanly when the token budget is spent; the summary says which.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from ai_tagger.errors import RunError, SettingsError, Stage, StashError
from ai_tagger.log import Log
from ai_tagger.settings import Settings
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.journal import Journal
from ai_tagger.tasks.context import RunContext
from ai_tagger.tasks.modes import Source
from ai_tagger.tasks.summary import ItemResult, RunSummary
from ai_tagger.tasks.tagger import Tagger

BREAKER = 5


@dataclass
class Work:
    """What a run goes through: how many items there are, the items, and what to do with each."""

    available: int
    items: Iterable[Any]
    process: Callable[[Any], ItemResult]


def work_for(context: RunContext, tagger: Tagger) -> Work:
    """The items the mode reads, from Stash's untagged items or from the journal."""
    mode, cache, client = context.mode, context.cache, context.client
    if mode.source == Source.JOURNAL:
        if context.settings.disable_cache:
            raise SettingsError("re-applying needs the result cache: turn off 'disableCache'")
        return Work(cache.processed_count(mode.kinds), cache.processed(mode.kinds), tagger.reapply)
    available = sum(client.count_untagged(kind) for kind in mode.kinds)
    items = itertools.chain.from_iterable(client.untagged(kind) for kind in mode.kinds)
    return Work(available, items, tagger.process)


def _bounded(
    executor: ThreadPoolExecutor, work: Iterable[Any], fn: Callable[[Any], ItemResult], limit: int
) -> Generator[Future[ItemResult], None, None]:
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


def run(context: RunContext) -> RunSummary:
    """Tag, preview or re-apply the items of the mode; a run that ended early says why in ``stopped``.

    A writing run is recorded in the journal (its provenance), so ``undo_last`` can take it back.
    Raises :class:`~ai_tagger.errors.RunError` when the run cannot start (nothing done yet).
    """
    table, journal, settings, log = context.mode, context.journal, context.settings, context.log
    if context.provider is not None:
        context.provider.preflight()
    vocabulary = Vocabulary(context.client.all_tags())
    run_id = journal.begin(table.name) if table.journaled else None
    tagger = Tagger(
        context,
        vocabulary=vocabulary,
        run_id=run_id,
        learned=_learned(journal, settings, vocabulary, log),
    )
    summary = RunSummary(mode=table.name, run_id=run_id)
    try:
        _tag(context, tagger, summary)
    finally:
        if run_id is not None:
            journal.end(run_id, tokens=summary.usage.total_tokens, errors=summary.errored)
    return summary


def _learned(journal: Journal, settings: Settings, vocabulary: Vocabulary, log: Log) -> dict[str, float]:
    """Thresholds raised by the user's rejections (``learnThresholds``), said in the log."""
    if not settings.learn_thresholds:
        return {}
    learned = {}
    for entry in journal.learned(above=settings.threshold):
        learned[entry.tag_id] = entry.threshold
        tag = vocabulary.tags.get(entry.tag_id)
        name = tag.name if tag else entry.tag_id
        log.info(f"learnThresholds: {name} now needs {entry.threshold * 100:g}%: {entry.why}")
    return learned


def _tag(context: RunContext, tagger: Tagger, summary: RunSummary) -> None:
    """The run itself, adding to ``summary`` as items finish."""
    table, settings, log, limit = context.mode, context.settings, context.log, context.limit
    mode = table.name
    if table.writes:
        tagger.applier.markers.finish_pending()
    say = log.warning if tagger.parent_missing else log.info
    say(f"loaded {len(tagger.book.vocabulary)} tags; {tagger.describe_vocabulary()}")
    work = work_for(context, tagger)
    summary.total = summary.untagged = work.available
    if limit is None and table.samples and settings.preview_items:
        limit = settings.preview_items
    if limit is not None:
        work.items = itertools.islice(work.items, limit)
        summary.total = min(summary.total, limit)
    log.info(f"{mode}: {summary.total} item(s) to process with {settings.describe_model()}")
    drive(work, summary, settings=settings, log=log)
    summary.created_tags = list(tagger.book.created)
    if summary.stopped:
        return
    log.progress(1.0)
    tagged, applied = ("tagged", "applied") if table.writes else ("would tag", "would be applied")
    log.info(
        f"{mode}: done, {summary.processed} item(s), {tagged} {summary.tagged}, {summary.review} for review, "
        f"{summary.errored} errored, {summary.tags_applied} tag(s) {applied}, {summary.gateway_calls} model "
        f"call(s), {summary.cache_hits} cached, {summary.usage.total_tokens} tokens"
    )


def drive(work: Work, summary: RunSummary, *, settings: Settings, log: Log) -> None:
    """Process the work in a bounded pool, adding each result to the summary, until done or stopped."""
    workers = settings.concurrency + (os.cpu_count() or 1)
    started = time.monotonic()
    failures_in_a_row = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tagger") as executor:
        with closing(_bounded(executor, work.items, work.process, workers * 2)) as results:
            for future in results:
                try:
                    result = future.result()
                except StashError as exc:
                    summary.stop(f"Stash failed during the run: {exc}", failed=True)
                    break
                except RunError as exc:
                    summary.stop(str(exc), failed=True)
                    break
                summary.add(result)
                failures_in_a_row = failures_in_a_row + 1 if result.failed_stage == Stage.GATEWAY else 0
                if failures_in_a_row >= BREAKER:
                    reason = f"stopped after {BREAKER} gateway failures in a row; last: {result.error}"
                    summary.stop(reason, failed=True)
                    break
                budget = settings.max_tokens_per_run
                if budget and summary.usage.total_tokens >= budget:
                    summary.stop(
                        f"token budget reached: {summary.usage.total_tokens} of {budget} tokens spent "
                        "(maxTokensPerRun); the next run goes on from here",
                        failed=False,
                    )
                    break
                _progress(log, summary, started)
        if summary.stopped:
            executor.shutdown(wait=True, cancel_futures=True)


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
