"""The ``Scene.Create.Post`` / ``Image.Create.Post`` hook queues work and never tags inline.

Stash runs a post hook synchronously, one process per created item, inside the library scan
(see STASH_PLUGIN_PROTOCOL.md, "Hooks are synchronous"). So the hook must return fast, never call
the model, queue at most one waiting "Tag untagged" job per scan, and never fail the scan. Every
test goes through the real subprocess path with the stdin Stash sends for scan-created items.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from tests import imports
from tests.conftest import PLUGIN_ID, REPO, PluginRun, configure, run_plugin

TASK_NAME = "Tag untagged scenes and images"
WRITE_OPERATIONS = {"BulkSceneUpdate", "BulkImageUpdate", "TagCreate", "SceneUpdate", "ImageUpdate"}


def hook_args(object_id: str = "1", hook_type: str = "Scene.Create.Post") -> dict[str, Any]:
    """What Stash passes for an item created by a library scan: ``input`` null, no ``inputFields``."""
    return {"hookContext": {"id": object_id, "type": hook_type, "input": None}}


def our_jobs(stash) -> list[dict[str, Any]]:
    return [job for job in stash.jobs if job.get("plugin_id") == PLUGIN_ID]


def add_foreign_job(stash, description: str, status: str) -> None:
    """A job the plugin did not queue (a scan, or the user starting a task from the UI)."""
    with stash.lock:
        stash.jobs.append(
            {
                "id": f"x{len(stash.jobs) + 1}",
                "status": status,
                "addTime": "",
                "progress": None,
                "subTasks": None,
                "description": description,
                "plugin_id": None,
                "task_name": None,
                "args_map": {},
            }
        )


def assert_scan_safe(run: PluginRun) -> None:
    """Exit 0, exactly one JSON line on stdout, no error: the scan goes on."""
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout
    assert set(json.loads(lines[0])) == {"output", "error"}
    assert run.error is None, run.error


def assert_nothing_written(stash, model) -> None:
    """The hook touched neither the model nor any item or tag."""
    assert model.completion_count == 0
    written = [op for op, _ in stash.operations if op in WRITE_OPERATIONS]
    assert written == []


def test_scene_create_hook_queues_one_tag_untagged_job(stash, model):
    """A new scene must lead to the "Tag untagged" task being queued, with the task's own args."""
    run = run_plugin(stash, hook_args("7"))

    assert_scan_safe(run)
    [job] = our_jobs(stash)
    assert job["task_name"] == TASK_NAME
    assert job["args_map"] == {"mode": "tag_untagged"}
    assert job["status"] == "READY"
    assert run.output["queued"] is True and str(run.output["job"]) == job["id"]
    assert_nothing_written(stash, model)
    assert stash.mutation_count == 1  # runPluginTask, nothing else


def test_queued_task_name_is_a_task_of_the_manifest(stash, model):
    """``task_name`` selects the manifest task whose defaultArgs Stash applies: it must exist."""
    run_plugin(stash, hook_args())

    manifest = yaml.safe_load((REPO / "ai_tagger.yml").read_text(encoding="utf-8"))
    tasks = {task["name"]: task for task in manifest["tasks"]}
    [job] = our_jobs(stash)
    assert job["task_name"] in tasks
    assert tasks[job["task_name"]]["defaultArgs"]["mode"] == "tag_untagged"


def test_scan_of_50_items_queues_a_single_job_while_it_waits(stash, model):
    """A scan fires the hook once per created item, one after another: one waiting job is enough."""
    add_foreign_job(stash, "Scanning...", "RUNNING")  # the scan itself runs while its hooks do
    durations = []
    for index in range(50):
        hook_type = "Scene.Create.Post" if index % 5 else "Image.Create.Post"
        started = time.perf_counter()
        run = run_plugin(stash, hook_args(str(index + 1), hook_type))
        durations.append(time.perf_counter() - started)
        assert_scan_safe(run)

    jobs = our_jobs(stash)
    assert len(jobs) == 1 and jobs[0]["status"] == "READY"
    assert_nothing_written(stash, model)
    assert stash.mutation_count == 1
    print(
        f"\nhook run wall time over 50 runs: median {statistics.median(durations) * 1000:.0f} ms, "
        f"max {max(durations) * 1000:.0f} ms"
    )


def test_running_job_does_not_stop_the_next_hook_from_queueing(stash, model):
    """A job already RUNNING may have listed its items before this one was created: queue another."""
    run_plugin(stash, hook_args("1"))
    [first] = our_jobs(stash)
    with stash.lock:
        first["status"] = "RUNNING"

    run = run_plugin(stash, hook_args("2"))

    assert_scan_safe(run)
    jobs = our_jobs(stash)
    assert [job["status"] for job in jobs] == ["RUNNING", "READY"]
    assert run.output["queued"] is True

    run_plugin(stash, hook_args("3"))
    assert len(our_jobs(stash)) == 2  # the new one waits: no third


def test_finished_job_does_not_stop_the_next_hook_from_queueing(stash, model):
    """Items created after the last job finished are untagged until a new job runs."""
    run_plugin(stash, hook_args("1"))
    with stash.lock:
        our_jobs(stash)[0]["status"] = "FINISHED"

    run_plugin(stash, hook_args("2"))

    assert [job["status"] for job in our_jobs(stash)] == ["FINISHED", "READY"]


def test_image_create_hook_queues_too(stash, model):
    """Images added by a scan need tagging as much as scenes."""
    run = run_plugin(stash, hook_args("3", "Image.Create.Post"))

    assert_scan_safe(run)
    [job] = our_jobs(stash)
    assert job["task_name"] == TASK_NAME and job["args_map"] == {"mode": "tag_untagged"}
    assert_nothing_written(stash, model)


def test_user_started_tag_untagged_job_counts_as_waiting(stash, model):
    """The same task queued from Settings > Tasks already covers the new item: no duplicate."""
    add_foreign_job(stash, f"Running plugin task: {TASK_NAME}", "READY")

    run = run_plugin(stash, hook_args())

    assert_scan_safe(run)
    assert our_jobs(stash) == [] and run.output["queued"] is False


def test_unrelated_waiting_job_does_not_block_queueing(stash, model):
    """Another plugin's or Stash's own waiting job will not tag anything: still queue ours."""
    add_foreign_job(stash, "Generating thumbnails", "READY")
    add_foreign_job(stash, "Running plugin task: Tag untagged scenes", "READY")  # scenes only: misses images

    run_plugin(stash, hook_args())

    assert len(our_jobs(stash)) == 1


def test_disable_auto_tag_queues_nothing(stash, model):
    """``disableAutoTag`` is the user's off switch for the hook."""
    configure(stash, model, disableAutoTag=True)

    run = run_plugin(stash, hook_args())

    assert_scan_safe(run)
    assert stash.jobs == [] and run.output["queued"] is False
    assert stash.mutation_count == 0
    assert_nothing_written(stash, model)


def test_unconfigured_gateway_queues_nothing_and_logs_debug(stash, model):
    """A fresh install has no gateway yet: every scan would queue a job that fails at once."""
    stash.set_plugin_settings(PLUGIN_ID, {})

    run = run_plugin(stash, hook_args())

    assert_scan_safe(run)
    assert stash.jobs == [] and stash.mutation_count == 0
    assert any("not configured" in line for line in run.log_lines("d")), run.stderr
    assert run.log_lines("e") == []  # not an error: the user simply has not set it up


def test_invalid_settings_never_fail_the_scan(stash, model):
    """The hook does not validate settings (that would cost its speed): the queued task reports a
    bad setting with a clear error in Stash's job list, and the scan goes on."""
    configure(stash, model, minConfidence=150)

    run = run_plugin(stash, hook_args())

    assert_scan_safe(run)
    [job] = our_jobs(stash)
    task = run_plugin(stash, job["args_map"])
    assert task.returncode == 1 and "minConfidence" in task.error


def test_rejected_session_cookie_never_fails_the_scan(stash, model):
    """Stash refusing the cookie (expired session) must not abort the scan: warn and return."""
    cookie = {**stash.session_cookie, "Value": "not-the-session"}

    run = run_plugin(stash, hook_args(), connection=stash.server_connection(SessionCookie=cookie))

    assert_scan_safe(run)
    assert run.output["queued"] is False
    assert stash.rejected_requests == 1 and stash.jobs == []  # the first request is refused; nothing after it
    assert run.log_lines("w"), run.stderr
    assert "not-the-session" not in run.stderr


def test_unreachable_stash_never_fails_the_scan(stash, model):
    """A connection error (wrong port from a proxy, Stash restarting) must not break anything."""
    run = run_plugin(stash, hook_args(), connection=stash.server_connection(Port=1))

    assert_scan_safe(run)
    assert run.log_lines("w"), run.stderr


def test_queueing_failure_never_fails_the_scan(stash, model):
    """Even when Stash rejects ``runPluginTask`` the hook exits 0 with one JSON result."""

    def refuse(*_: Any, **__: Any) -> str:
        raise ValueError("plugin task not found")

    stash.schema.get_type("Mutation").fields["runPluginTask"].resolve = refuse

    run = run_plugin(stash, hook_args())

    assert_scan_safe(run)
    assert run.output["queued"] is False
    assert any("could not queue" in line for line in run.log_lines("w")), run.stderr


def test_hook_run_from_any_working_directory(stash, model, tmp_path: Path):
    """Stash starts plugins in its own working directory, not the plugin's."""
    run = run_plugin(stash, hook_args(), cwd=tmp_path)

    assert_scan_safe(run)
    assert len(our_jobs(stash)) == 1


def test_hook_with_recognize_performers_imports_no_face_package(stash, model, monkeypatch, tmp_path):
    """Recognising performers loads dlib in the queued job, never in the hook that a scan waits on."""
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "recognizePerformers": True})
    modules = imports.record(monkeypatch, tmp_path / "modules.txt")

    run = run_plugin(stash, hook_args("5"))

    assert_scan_safe(run)
    assert run.output["queued"] is True
    assert imports.imported_beyond_stdlib(modules, tmp_path) == set()


def test_hook_with_provider_local_queues_and_imports_only_the_standard_library(stash, model, monkeypatch, tmp_path):
    """The local model needs no gateway, so the hook must queue without one; and it stays fast:
    no pydantic, no requests, none of the local model's numpy/OpenCV/onnxruntime/nudenet."""
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local"})
    modules = imports.record(monkeypatch, tmp_path / "modules.txt")

    run = run_plugin(stash, hook_args("5"))

    assert_scan_safe(run)
    [job] = our_jobs(stash)
    assert job["args_map"] == {"mode": "tag_untagged"} and run.output["queued"] is True
    assert imports.imported_beyond_stdlib(modules, tmp_path) == set()
    assert_nothing_written(stash, model)
