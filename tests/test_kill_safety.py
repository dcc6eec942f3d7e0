"""A killed run loses at most the items in flight, never half-writes one, and the next run resumes.

Stash cancels a raw task by killing its process with no signal (SIGKILL, see
STASH_PLUGIN_PROTOCOL.md, "Stopping"): no handler, no cleanup. The plugin's answer is one
``ADD`` mutation per item carrying its content tags and its status tag together. These tests kill
the real plugin process at random moments and check every item after each kill.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

from tests import media, runner
from tests.conftest import configure, run_plugin

CONCURRENCY = 4
# Items sent to the gateway but not yet written: each is held by one worker thread of the run, and
# the run has ``concurrency + os.cpu_count()`` workers (pipeline.run). A kill can waste at most that.
IN_FLIGHT = CONCURRENCY + (os.cpu_count() or 1)
STATUS = {"AI_Tagged", "AI_Errored"}
ROUNDS = 6  # round 0 kills during start-up, the others among item writes
SEED = 20260118
SCENES, IMAGES = 10, 40  # + 2 unreadable images; scenes cost one ffmpeg call per frame


def seed_library(
    stash, tmp_path: Path, scenes: int = SCENES, images: int = IMAGES
) -> dict[tuple[str, str], set[str] | None]:
    """Scenes sharing one red video, blue and green images, 2 unreadable images (52 items by default).

    Value: the content tags the pixels call for, or None for an unreadable file (AI_Errored).
    """
    video = media.make_video(tmp_path / "red.mp4", ["red"], seconds_per_colour=4)
    expected: dict[tuple[str, str], set[str] | None] = {}
    for scene in stash.seed_scenes(scenes, video):
        expected[("scene", scene)] = {"Red"}
    for index in range(images):
        colour, tag = (("blue", "Water"), ("green", "Outdoors"))[index % 2]
        path = media.make_image(tmp_path / f"{colour}{index}.jpg", colour, size=(160, 120))
        expected[("image", stash.add_image(path, width=160, height=120))] = {tag}
    for index in range(2):
        broken = media.make_corrupt(tmp_path / f"broken{index}.jpg", seed=index)
        expected[("image", stash.add_image(broken, width=160, height=120))] = None
    return expected


def tags_of(stash, kind: str, item_id: str) -> set[str]:
    return stash.tags_of_scene(item_id) if kind == "scene" else stash.tags_of_image(item_id)


def check_each_item_untouched_or_done(stash, expected: dict[tuple[str, str], set[str] | None]) -> set[tuple]:
    """The invariant a kill must keep; returns the items that are done."""
    done = set()
    for (kind, item_id), content in expected.items():
        tags = tags_of(stash, kind, item_id)
        if not tags:
            continue
        where = f"{kind} {item_id}: {sorted(tags)}"
        status = tags & STATUS
        assert len(status) == 1, f"content tags without exactly one status tag: {where}"
        if status == {"AI_Tagged"}:
            assert content is not None, f"unreadable file marked tagged: {where}"
            assert tags - STATUS == content, f"partial or wrong tags: {where}"
        else:
            assert tags == {"AI_Errored"}, f"errored item with content tags: {where}"
        done.add((kind, item_id))
    return done


def item_writes(stash) -> int:
    with stash.lock:
        return sum(op in ("BulkSceneUpdate", "BulkImageUpdate") for op, _ in stash.operations)


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the plugin made no progress"
        time.sleep(0.005)


def created_a_tag(stash) -> bool:
    with stash.lock:
        return any(op == "TagCreate" for op, _ in stash.operations)


def start_plugin(stash, args: dict[str, Any], log_dir: Path, name: str) -> subprocess.Popen:
    """The shared runner's process (argv, cwd, stdin JSON as Stash sends them), without waiting."""
    # Files, not pipes: a killed child never blocks on a full pipe and nothing is lost.
    with open(log_dir / f"{name}.out", "w") as out, open(log_dir / f"{name}.err", "w") as err:
        return runner.start(stash.server_connection(), args, stdout=out, stderr=err)


def test_sigkill_at_random_moments_never_half_writes_and_next_run_resumes(stash, model, tmp_path):
    """Cancel in Stash = SIGKILL: each kill may lose only items in flight; nothing finished is redone."""
    model.latency = 0.05
    configure(stash, model, concurrency=CONCURRENCY, framesPerScene=2)
    expected = seed_library(stash, tmp_path)
    needs_model = {key for key, content in expected.items() if content is not None}
    rng = random.Random(SEED)

    done: set[tuple] = set()
    killed_mid_run = 0
    rounds: list[str] = []
    for round_no in range(ROUNDS):
        completions_before = model.completion_count
        writes_before = item_writes(stash)
        process = start_plugin(stash, {"mode": "tag_untagged"}, tmp_path, f"round{round_no}")
        if round_no == 0:
            time.sleep(rng.uniform(0.05, 0.5))  # during start-up, before anything can be written
        else:
            # Start-up (imports, preflight) takes 0.5-2 s depending on the machine, and so does the
            # write rate: anchor the random moment on this run's own writes so the kill lands among
            # item writes on any machine, then add jitter so it hits any instruction.
            writes = writes_before + rng.randint(1, 8)
            wait_until(lambda p=process, n=writes: item_writes(stash) >= n or p.poll() is not None)
            time.sleep(rng.uniform(0.0, 0.15))
        was_running = process.poll() is None
        process.kill()  # SIGKILL, like Stash: no signal handler runs
        process.wait(timeout=10)

        now_done = check_each_item_untouched_or_done(stash, expected)
        assert done <= now_done, "a finished item lost its tags"
        sent = model.completion_count - completions_before
        newly_done = len((now_done - done) & needs_model)
        assert sent <= newly_done + IN_FLIGHT, f"round {round_no}: {sent} calls for {newly_done} new items"
        killed_mid_run += round_no > 0 and was_running and now_done != set(expected)
        rounds.append(f"{len(now_done - done)} done, {sent} sent")
        done = now_done

    remaining = set(expected) - done
    completions_before = model.completion_count
    final = run_plugin(stash, {"mode": "tag_untagged"})

    assert final.returncode == 0, final.stderr
    assert final.error is None
    assert final.output["processed"] == len(remaining)
    assert check_each_item_untouched_or_done(stash, expected) == set(expected)
    # At most one call per item left (fewer when an answer received before a kill was kept).
    assert model.completion_count - completions_before <= len(remaining & needs_model)
    for (kind, item_id), content in expected.items():
        assert tags_of(stash, kind, item_id) == (content | {"AI_Tagged"} if content else {"AI_Errored"})
    assert model.completion_count <= len(needs_model) + ROUNDS * IN_FLIGHT
    assert model.max_in_flight <= CONCURRENCY
    assert killed_mid_run >= ROUNDS - 2, "kills did not land while items were being written"
    assert remaining, "the killed runs finished everything: nothing left to resume"
    print(
        f"\n{ROUNDS} kills ({killed_mid_run} mid-run; {'; '.join(rounds)}), {len(remaining)} item(s) left, "
        f"{model.completion_count} completions for {len(needs_model)} items needing the model"
    )


def test_killed_run_leaves_created_tags_reusable(stash, model, tmp_path):
    """A kill between ``tagCreate`` and the item write must not make the next run create duplicates."""
    model.latency = 0.05
    configure(stash, model, concurrency=CONCURRENCY, framesPerScene=2)
    expected = seed_library(stash, tmp_path, scenes=2, images=6)

    process = start_plugin(stash, {"mode": "tag_untagged"}, tmp_path, "early")
    wait_until(lambda: created_a_tag(stash) or process.poll() is not None)
    assert created_a_tag(stash) and process.poll() is None, "the run ended before creating a tag"
    process.kill()
    process.wait(timeout=10)
    check_each_item_untouched_or_done(stash, expected)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 0, run.stderr
    names = [tag["name"].casefold() for tag in stash.tags.values()]
    assert len(names) == len(set(names)), f"duplicate tags: {sorted(names)}"
    assert check_each_item_untouched_or_done(stash, expected) == set(expected)
