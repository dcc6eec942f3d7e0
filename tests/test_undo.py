"""Every change is recorded and reversible; a tag the user removed is never re-applied.

End to end, as Stash runs the plugin: tagging runs journal what they add, ``undo_last`` and
``remove_ai`` take back exactly that (never a tag the user set, before or since), a dry run
changes nothing, a killed undo finishes on the next run, and ``reapply`` honours rejections.
"""

from __future__ import annotations

import sqlite3
import time

from ai_tagger.deps import data_dir
from ai_tagger.store.cache import SCHEMA_VERSION
from tests import media
from tests.conftest import configure, run_plugin
from tests.test_kill_safety import start_plugin, wait_until

STATUS = {"AI_Tagged", "AI_Errored", "AI_Review"}


def removes(stash) -> list[dict]:
    with stash.lock:
        return [
            v["input"]
            for op, v in stash.operations
            if op in ("BulkSceneUpdate", "BulkImageUpdate") and v["input"]["tag_ids"]["mode"] == "REMOVE"
        ]


def library_state(stash) -> tuple:
    with stash.lock:
        return (
            {k: (t["name"], tuple(t["parent_ids"])) for k, t in stash.tags.items()},
            {k: frozenset(s["tags"]) for k, s in stash.scenes.items()},
            {k: frozenset(i["tags"]) for k, i in stash.images.items()},
            len(stash.markers),
        )


def ok(run):
    assert run.returncode == 0, run.stderr
    assert run.error is None, run.error
    return run.output


def test_undo_last_removes_only_what_the_run_added_and_the_users_edits_stay(stash, model, tmp_path):
    """Run -> the user adds one tag and removes one AI tag -> undo_last takes back only the rest."""
    configure(stash, model, framesPerScene=3, minConfidence=40)
    video = media.make_video(tmp_path / "rgb.mp4", ["red", "green", "blue"], seconds_per_colour=2)
    scene = stash.add_scene(video)
    image = stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert stash.tags_of_scene(scene) == {"Red", "Outdoors", "Water", "AI_Tagged"}
    stash.set_item_tags("scene", scene, {"Red", "Outdoors", "AI_Tagged", "Favourite"})  # -Water +Favourite
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert stash.tags_of_scene(scene) == {"Favourite"}, "the user's tag stays, the item is not made untagged"
    assert stash.tags_of_image(image) == set(), "nothing of the user's remained: untagged again"
    assert len(removes(stash)) == 2, "one REMOVE mutation per item"
    favourite = stash.tag_by_name("Favourite")["id"]
    assert all(favourite not in r["tag_ids"]["ids"] for r in removes(stash))
    assert output["removed"] == {"tags": 3, "status_tags": 2, "markers": 0, "created_tags": 5}
    assert output["items"] == {"scene": 1, "image": 1} and output["untagged_again"] == 1
    for name in ("Red", "Outdoors", "Water", "AI", "AI_Tagged"):
        assert stash.tag_by_name(name) is None, f"{name}: created by the run, now unused, not deleted"

    again = ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert again["processed"] == 1 and stash.tags_of_image(image) == {"Water", "AI_Tagged"}


def test_undo_last_twice_undoes_the_run_before(stash, model, tmp_path):
    first = stash.add_image(media.make_image(tmp_path / "a.jpg", "blue"))
    ok(run_plugin(stash, {"mode": "tag_images"}))
    second = stash.add_image(media.make_image(tmp_path / "b.jpg", "green"))
    ok(run_plugin(stash, {"mode": "tag_images"}))

    ok(run_plugin(stash, {"mode": "undo_last"}))
    assert stash.tags_of_image(second) == set()
    assert stash.tags_of_image(first) == {"Water", "AI_Tagged"}, "the earlier run's tags stay"
    assert stash.tag_by_name("Outdoors") is None and stash.tag_by_name("AI_Tagged") is not None

    ok(run_plugin(stash, {"mode": "undo_last"}))
    assert stash.tags_of_image(first) == set()
    assert stash.tag_by_name("Water") is None and stash.tag_by_name("AI_Tagged") is None

    nothing = ok(run_plugin(stash, {"mode": "undo_last"}))
    assert nothing["runs"] == [] and nothing["removed"]["tags"] == 0


def test_remove_ai_over_two_runs_keeps_the_users_tags(stash, model, tmp_path):
    mine = stash.add_tag("Holiday")
    first = stash.add_image(media.make_image(tmp_path / "a.jpg", "blue"))
    ok(run_plugin(stash, {"mode": "tag_images"}))
    stash.set_item_tags("image", first, {"Water", "AI_Tagged", "Holiday"})
    second = stash.add_image(media.make_image(tmp_path / "b.jpg", "green"))
    ok(run_plugin(stash, {"mode": "tag_images"}))
    ok(run_plugin(stash, {"mode": "reapply"}))
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "remove_ai"}))

    assert stash.tags_of_image(first) == {"Holiday"}
    assert stash.tags_of_image(second) == set()
    assert len(removes(stash)) == 2, "one REMOVE per item, whatever the number of runs"
    assert len(output["runs"]) == 3
    assert output["removed"]["tags"] == 2 and output["removed"]["status_tags"] == 2
    assert {t["name"] for t in stash.tags.values()} == {"Holiday"}
    assert stash.tag_by_name("Holiday")["id"] == str(mine)
    assert ok(run_plugin(stash, {"mode": "remove_ai"}))["runs"] == []


def test_reapply_and_later_runs_never_re_add_a_tag_the_user_removed(stash, model, tmp_path):
    configure(stash, model, framesPerScene=2, minConfidence=40)
    video = media.make_video(tmp_path / "rb.mp4", ["red", "blue"], seconds_per_colour=2)
    scene = stash.add_scene(video)
    image = stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert stash.tags_of_scene(scene) == {"Red", "Water", "AI_Tagged"}
    stash.set_item_tags("scene", scene, {"Water", "AI_Tagged"})  # the user removes Red
    stash.set_item_tags("image", image, set())  # the user clears the image: it is untagged again

    retagged = ok(run_plugin(stash, {"mode": "tag_untagged"}))
    reapplied = ok(run_plugin(stash, {"mode": "reapply"}))

    assert stash.tags_of_scene(scene) == {"Water", "AI_Tagged"}
    row = next(i for i in reapplied["items"] if i["kind"] == "scene")
    assert "Red" not in row["tags"]
    assert any(c["tag"] == "Red" and c["outcome"] == "rejected by user" for c in row["candidates"])
    assert retagged["processed"] == 1 and stash.tags_of_image(image) == {"AI_Tagged"}
    report = ok(run_plugin(stash, {"mode": "report"}))
    by_tag = {row["tag"]: row for row in report["tags"]}
    assert by_tag["Red"]["applied"] == 1 and by_tag["Red"]["rejected"] == 1
    assert by_tag["Water"]["applied"] == 2 and by_tag["Water"]["rejection_rate"] == 0.5
    assert by_tag["Red"]["mean_score_rejected"] is not None and by_tag["Red"]["mean_score_kept"] is None
    assert [r["mode"] for r in report["runs"]] == ["reapply", "tag_untagged", "tag_untagged"]
    assert report["runs"][-1]["items"] == 2 and report["runs"][-1]["tags"] == 3


def test_dry_run_lists_what_would_go_and_changes_nothing(stash, model, tmp_path):
    images = [stash.add_image(media.make_image(tmp_path / f"{c}.jpg", c)) for c in ("blue", "green")]
    ok(run_plugin(stash, {"mode": "tag_images"}))
    before = library_state(stash)
    stash.reset_log()

    preview = ok(run_plugin(stash, {"mode": "undo_last", "dryRun": "true"}))
    everything = ok(run_plugin(stash, {"mode": "remove_ai", "dryRun": True}))

    assert stash.mutation_count == 0 and library_state(stash) == before
    assert preview["dry_run"] and preview["would_remove"]["tags"] == 2 and preview["would_remove"]["status_tags"] == 2
    assert {row["id"] for row in preview["listed"] if "id" in row} == set(images)
    assert everything["would_remove"] == preview["would_remove"]
    ok(run_plugin(stash, {"mode": "undo_last"}))
    assert all(stash.tags_of_image(i) == set() for i in images), "the dry run left the journal as it was"


def test_sigkill_during_undo_then_a_rerun_completes_with_nothing_half_done(stash, model, tmp_path):
    images = {}
    for index in range(30):
        colour, tag = (("blue", "Water"), ("green", "Outdoors"))[index % 2]
        images[stash.add_image(media.make_image(tmp_path / f"{index}.jpg", colour, size=(64, 48)))] = tag
    ok(run_plugin(stash, {"mode": "tag_images"}))
    stash.listeners.append(lambda op, variables, status: time.sleep(0.03 if op == "BulkImageUpdate" else 0))
    stash.reset_log()

    process = start_plugin(stash, {"mode": "undo_last"}, tmp_path, "undo")
    wait_until(lambda: len(removes(stash)) >= 5 or process.poll() is not None)
    process.kill()
    process.wait(timeout=10)
    undone = {i for i in images if not stash.tags_of_image(i)}
    for image, tag in images.items():
        assert stash.tags_of_image(image) in (set(), {tag, "AI_Tagged"}), "an item half undone"
    assert 0 < len(undone) < len(images), "the kill did not land during the undo"

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert all(not stash.tags_of_image(i) for i in images)
    assert output["removed"]["tags"] == len(images) - len(undone)
    assert {t["name"] for t in stash.tags.values()} == set(), "created tags deleted once unused"
    assert ok(run_plugin(stash, {"mode": "undo_last"}))["runs"] == [], "the run was marked undone when complete"


def test_undo_skips_an_item_deleted_in_stash_and_a_tag_deleted_by_the_user(stash, model, tmp_path):
    gone = stash.add_image(media.make_image(tmp_path / "a.jpg", "blue"))
    kept = stash.add_image(media.make_image(tmp_path / "b.jpg", "green"))
    other = stash.add_image(media.make_image(tmp_path / "c.jpg", "blue"))
    ok(run_plugin(stash, {"mode": "tag_images"}))
    stash.delete_item("image", gone)
    outdoors = stash.tag_by_name("Outdoors")["id"]
    stash.execute("mutation Gone($id: ID!) { tagDestroy(input: {id: $id}) }", {"id": outdoors})

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert stash.tags_of_image(kept) == set() and stash.tags_of_image(other) == set()
    assert any(f"image {gone}" in note and "deleted" in note for note in output["notes"])


def test_a_journal_from_a_newer_plugin_is_refused_and_left_untouched(stash, model, tmp_path):
    folder = data_dir(stash.server_connection()["Dir"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cache.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()

    run = run_plugin(stash, {"mode": "undo_last"})

    assert run.error and "newer" in run.error and "update the plugin" in run.error
    assert path.read_bytes() == before and not list(folder.glob("cache.sqlite3?*"))


def test_a_corrupt_journal_is_moved_aside_and_the_task_says_undo_history_was_lost(stash, model, tmp_path):
    folder = data_dir(stash.server_connection()["Dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cache.sqlite3").write_bytes(b"this is not a database" * 100)

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert "undo history" in output["journal_lost"]
    assert list(folder.glob("cache.sqlite3.corrupt-*"))


def test_cli_dry_run_flag(stash, model, tmp_path):
    from ai_tagger.entry import _parse_args

    assert _parse_args(["--mode", "undo_last", "--dry-run"]).dry_run is True
    assert _parse_args(["--mode", "report"]).mode == "report"


MARKER_CREATE = """
mutation Mark($input: SceneMarkerCreateInput!) { sceneMarkerCreate(input: $input) { id } }
"""


def test_undo_destroys_the_markers_the_run_created_and_skips_one_deleted_by_hand(stash, model, tmp_path, red_video):
    """Markers are issue 11's (``markers`` table); undo reads rows ``created`` by the run it undoes."""
    scene = stash.add_scene(red_video)
    run_id = ok(run_plugin(stash, {"mode": "tag_scenes"}))["run"]
    red = stash.tag_by_name("Red")["id"]
    def mark(title: str, seconds: float) -> str:
        marker = {"title": title, "seconds": seconds, "scene_id": scene, "primary_tag_id": red}
        return stash.execute(MARKER_CREATE, {"input": marker})["data"]["sceneMarkerCreate"]["id"]

    ids = [mark("Red", s) for s in (1.0, 2.0, 3.0)]
    mine = mark("mine", 0.5)
    stash.execute("mutation Gone($ids: [ID!]!) { sceneMarkersDestroy(ids: $ids) }", {"ids": [ids[2]]})
    with sqlite3.connect(data_dir(stash.server_connection()["Dir"]) / "cache.sqlite3") as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS markers (scene_id TEXT NOT NULL, tag_id TEXT NOT NULL, seconds REAL NOT NULL, "
            "end_seconds REAL, marker_id TEXT, run_id TEXT, state TEXT NOT NULL, updated REAL NOT NULL)"
        )
        for marker_id, seconds in zip(ids, (1.0, 2.0, 3.0), strict=True):
            db.execute("INSERT INTO markers VALUES (?, ?, ?, NULL, ?, ?, 'created', 0)",
                       (scene, red, seconds, marker_id, run_id))
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert [str(m["id"]) for m in stash.markers] == [mine], "the user's marker stays"
    assert output["removed"]["markers"] == 2
    assert [v["ids"] for op, v in stash.operations if op == "SceneMarkersDestroy"] == [ids[:2]]
    with sqlite3.connect(data_dir(stash.server_connection()["Dir"]) / "cache.sqlite3") as db:
        assert {row[0] for row in db.execute("SELECT state FROM markers")} == {"removed"}
    assert stash.tag_by_name("Red") is not None, "still used by the user's marker: kept"
