"""``Scene.Create.Post`` / ``Image.Create.Post``: queue one tagging job, never tag inline.

Stash waits for a post hook to exit before its scan goes on, once per created item. So the hook
only asks Stash to queue the "Tag untagged" task, and only when no such job is already waiting:
a scan that creates 1,000 scenes queues one job. It never raises: a hook must not break a scan.

Speed matters more here than anywhere: this module uses the standard library only (no pydantic,
no requests), so a hook costs little more than the interpreter's start-up. Settings are not
validated here; the queued task reports a bad setting clearly.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ai_tagger import PLUGIN_ID
from ai_tagger.configured import missing_settings
from ai_tagger.errors import HookError
from ai_tagger.log import Log
from ai_tagger.stash import endpoint, queries

TAG_TASK = "Tag untagged scenes and images"
JOB_DESCRIPTION = "AI Tagger: tag new scenes and images"
WAITING = ("READY",)
TIMEOUT = 10


def _endpoint(connection: dict[str, Any]) -> tuple[str, dict[str, str]]:
    url = f"{endpoint.base_url(connection)}/graphql"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    cookie = connection.get("SessionCookie") or {}
    if cookie.get("Value"):
        headers["Cookie"] = f"{cookie.get('Name') or 'session'}={cookie['Value']}"
    if connection.get("ApiKey"):
        headers["ApiKey"] = str(connection["ApiKey"])
    return url, headers


def _graphql(connection: dict[str, Any], document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    url, headers = _endpoint(connection)
    body = json.dumps({"query": document, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise HookError(f"Stash answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError):
        raise HookError(f"cannot reach Stash at {url}") from None
    if answer.get("errors"):
        raise HookError("Stash rejected the request: " + "; ".join(str(e.get("message")) for e in answer["errors"]))
    return answer.get("data") or {}


def plugin_settings(connection: dict[str, Any]) -> dict[str, Any]:
    """This plugin's settings map as Stash stores it, read with the standard library only."""
    data = _graphql(connection, queries.CONFIGURATION, {"include": [PLUGIN_ID]})
    return ((data.get("configuration") or {}).get("plugins") or {}).get(PLUGIN_ID) or {}


def _is_ours(job: dict[str, Any]) -> bool:
    description = str(job.get("description") or "")
    return JOB_DESCRIPTION in description or TAG_TASK in description


def _enabled(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


def on_create(raw_input: dict[str, Any], log: Log) -> dict[str, Any]:
    """Queue the tagging task for new media; the output says what was decided."""
    hook_type = str((raw_input.get("args") or {}).get("hookContext", {}).get("type") or "hook")
    connection = raw_input.get("server_connection") or {}
    try:
        settings = plugin_settings(connection)
        if _enabled(settings.get("disableAutoTag")):
            log.debug(f"{hook_type}: automatic tagging is disabled")
            return {"hook": hook_type, "queued": False, "reason": "disableAutoTag is on"}
        if missing_settings(settings.get("provider"), settings.get("gatewayUrl"), settings.get("model")):
            log.debug(f"{hook_type}: gateway not configured, nothing queued")
            return {"hook": hook_type, "queued": False, "reason": "gateway not configured"}
        jobs = _graphql(connection, queries.JOB_QUEUE).get("jobQueue") or []
        waiting = [job for job in jobs if job.get("status") in WAITING and _is_ours(job)]
        if waiting:
            log.debug(f"{hook_type}: tagging job {waiting[0].get('id')} already waiting")
            return {"hook": hook_type, "queued": False, "reason": "a tagging job is already waiting"}
        job_id = _graphql(
            connection,
            queries.RUN_PLUGIN_TASK,
            {
                "plugin_id": PLUGIN_ID,
                "task_name": TAG_TASK,
                "description": JOB_DESCRIPTION,
                "args_map": {"mode": "tag_untagged"},
            },
        ).get("runPluginTask")
    except HookError as exc:
        log.warning(f"{hook_type}: could not queue tagging: {exc}")
        return {"hook": hook_type, "queued": False, "reason": str(exc)}
    log.info(f"{hook_type}: queued tagging job {job_id}")
    return {"hook": hook_type, "queued": True, "job": job_id}
