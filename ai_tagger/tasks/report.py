"""The ``report`` task: what the journal says about each tag and each run. Reads Stash, never writes.

Per tag: how often the plugin applied it, how often the user removed it, and the mean score of
the rejected against the kept applications, which is what a threshold should separate. With
``learnThresholds`` on, it names the tags whose threshold the rejections raised, and why.
"""

from __future__ import annotations

from typing import Any

from ai_tagger.decide.decision import percent
from ai_tagger.log import Log
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient
from ai_tagger.store.journal import Journal
from ai_tagger.write.result import MAX_REPORTED_ITEMS


def report(*, client: StashClient, journal: Journal, settings: Settings, log: Log) -> dict[str, Any]:
    names = {tag.id: tag.name for tag in client.all_tags()}
    tags = [{"tag": names.get(str(s["tag_id"]), f"(deleted tag {s['tag_id']})"), **s} for s in journal.tag_stats()]
    runs = journal.run_stats()
    moved = []
    if settings.learn_thresholds:
        for entry in journal.learned(above=settings.threshold):
            moved.append(
                {
                    "tag": names.get(entry.tag_id, f"(deleted tag {entry.tag_id})"),
                    "tag_id": entry.tag_id,
                    "threshold": round(entry.threshold * 100, 2),
                    "was": settings.min_confidence,
                    "why": entry.why,
                }
            )
    for row in tags[:20]:
        log.info(
            f"{row['tag']}: applied {row['applied']}, rejected {row['rejected']} ({row['rejection_rate']:.0%}); "
            f"mean score rejected {percent(row['mean_score_rejected'])}, kept {percent(row['mean_score_kept'])}"
        )
    for row in moved:
        log.info(f"learnThresholds: {row['tag']} -> {row['threshold']:g}%: {row['why']}")
    performers = journal.performer_stats()
    if performers:
        people = {p.id: p.name for p in client.performers()}
        for row in performers:
            row["performer"] = people.get(row["performer_id"], f"(deleted performer {row['performer_id']})")
        log.info(f"report: {len(performers)} performer(s) added by face recognition")
    log.info(f"report: {len(tags)} tag(s), {len(runs)} run(s), {len(moved)} threshold(s) raised")
    return {
        **({"performers": performers[:MAX_REPORTED_ITEMS]} if performers else {}),
        "mode": "report",
        "tags": tags[:MAX_REPORTED_ITEMS],
        "runs": runs,
        "learn_thresholds": settings.learn_thresholds,
        "thresholds_moved": moved,
    }
