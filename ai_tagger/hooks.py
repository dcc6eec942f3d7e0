"""``Scene.Create.Post`` / ``Image.Create.Post``: queue one tagging job, never tag inline.

Stash waits for a post hook to exit before its scan goes on, once per created item. So the hook
only asks Stash to queue the "Tag untagged" task, and only when no such job is already waiting:
a scan that creates 1,000 scenes queues one job. It never raises: a hook must not break a scan.
"""

from __future__ import annotations

from typing import Any

from ai_tagger.log import Log
from ai_tagger.settings import Settings
from ai_tagger.stash.client import StashClient

TASK_NAME = "Tag untagged scenes and images"
JOB_DESCRIPTION = "AI Tagger: tag new scenes and images"
WAITING = ("READY",)


def _is_ours(job: dict[str, Any]) -> bool:
    description = str(job.get("description") or "")
    return JOB_DESCRIPTION in description or TASK_NAME in description


def on_create(client: StashClient, settings: Settings, log: Log, hook_type: str) -> dict[str, Any]:
    """Queue the tagging task for new media; the output says what was decided."""
    if settings.disable_auto_tag:
        log.debug(f"{hook_type}: automatic tagging is disabled")
        return {"hook": hook_type, "queued": False, "reason": "disableAutoTag is on"}
    if not settings.configured:
        log.debug(f"{hook_type}: gateway not configured, nothing queued")
        return {"hook": hook_type, "queued": False, "reason": "gateway not configured"}
    waiting = [job for job in client.job_queue() if job.get("status") in WAITING and _is_ours(job)]
    if waiting:
        log.debug(f"{hook_type}: tagging job {waiting[0].get('id')} already waiting")
        return {"hook": hook_type, "queued": False, "reason": "a tagging job is already waiting", "job": waiting[0].get("id")}
    job_id = client.run_plugin_task(TASK_NAME, JOB_DESCRIPTION, {"mode": "tag_untagged"})
    log.info(f"{hook_type}: queued tagging job {job_id}")
    return {"hook": hook_type, "queued": True, "job": job_id}
