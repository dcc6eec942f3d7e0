"""The review queue: ``review_list`` and ``review_decide``, run as Stash runs them.

The pixel model's colours give controllable confidences: with ``minConfidence`` 90 and
``reviewConfidence`` 30, a red/green/blue/white video (each colour in one frame of four) gets
Red 45 %, Outdoors 42.5 %, Water 40 % for review and Bright (17.5 %) not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading

import requests

from ai_tagger.deps import data_dir
from tests import media
from tests.conftest import PLUGIN_ID, configure, run_plugin
from tests.test_undo import ok

OPERATION = "mutation Op($plugin_id: ID!, $args: Map) { runPluginOperation(plugin_id: $plugin_id, args: $args) }"


def seeded(stash, model, tmp_path, **settings):
    """A scene with three suggestions, an image with one applied tag and one suggestion."""
    configure(stash, model, framesPerScene=4, minConfidence=90, reviewConfidence=30, **settings)
    video = media.make_video(tmp_path / "rgbw.mp4", ["red", "green", "blue", "white"], seconds_per_colour=2)
    scene = stash.add_scene(video, title="Four colours")
    image = stash.add_image(media.make_image(tmp_path / "yellow.jpg", "yellow"))
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    return scene, image


def journal_db(stash):
    return sqlite3.connect(data_dir(stash.server_connection()["Dir"]) / "cache.sqlite3")


def failed(run) -> str:
    assert run.output is None and run.error, run.stderr
    return run.error


def test_review_list_shows_each_suggestion_with_its_score_frames_rule_and_picture(stash, model, tmp_path):
    scene, image = seeded(stash, model, tmp_path)
    assert stash.tags_of_scene(scene) == {"AI_Tagged", "AI_Review"}

    listed = ok(run_plugin(stash, {"mode": "review_list"}))

    assert listed["total"] == 2 and listed["pages"] == 1 and listed["settings"]["reviewConfidence"] == 30
    by_id = {(i["kind"], i["id"]): i for i in listed["items"]}
    item = by_id[("scene", scene)]
    assert item["title"] == "Four colours" and item["thumbnail"].endswith(f"/scene/{scene}/screenshot")
    assert item["url"] == f"/scenes/{scene}"
    red = item["suggestions"][0]
    assert [s["tag"] for s in item["suggestions"]] == ["Red", "Outdoors", "Water"]
    assert red == {"tag": "Red", "tag_id": "new", "confidence": 0.9, "score": 0.45, "frames": [1],
                   "rule": "minConfidence: 90%; reviewConfidence: 30%"}
    assert by_id[("image", image)]["thumbnail"].endswith(f"/image/{image}/thumbnail")
    assert [s["tag"] for s in by_id[("image", image)]["suggestions"]] == ["Beach"]

    page = ok(run_plugin(stash, {"mode": "review_list", "page": "2", "per_page": 1, "kind": ""}))
    assert page["total"] == 2 and page["pages"] == 2 and len(page["items"]) == 1
    only = ok(run_plugin(stash, {"mode": "review_list", "kind": "image"}))
    assert [i["id"] for i in only["items"]] == [image]


def test_review_decide_applies_accepted_and_keeps_rejected_off_for_good(stash, model, tmp_path):
    scene, _ = seeded(stash, model, tmp_path)
    stash.reset_log()

    done = ok(run_plugin(stash, {"mode": "review_decide", "kind": "scene", "id": scene,
                                 "accept": ["Red"], "reject": ["water"]}))

    assert done["accepted"] == ["Red"] and done["rejected"] == ["water"] and done["pending"] == 1
    assert stash.tags_of_scene(scene) == {"AI_Tagged", "AI_Review", "Red"}
    red = stash.tag_by_name("Red")
    assert red["parent_ids"] == [stash.tag_by_name("AI")["id"]], "created under the AI parent, as a run does"
    assert stash.mutation_count == 3, "tagCreate AI and Red, then one item mutation"
    with journal_db(stash) as db:
        rule = db.execute("SELECT w.rule FROM writes w JOIN runs r ON r.id = w.run_id "
                          "WHERE r.mode = 'review_decide' AND w.tag_id = ?", (red["id"],)).fetchone()[0]
        rejections = db.execute("SELECT tag_id FROM rejections WHERE item_id = ?", (scene,)).fetchall()
    assert rule.startswith("accepted by the user") and rejections == [("new:water",)]

    stash.reset_log()
    again = ok(run_plugin(stash, {"mode": "review_decide", "kind": "scene", "id": scene,
                                  "accept": ["Red"], "reject": ["Water"]}))
    assert again["already_decided"] == ["Red", "Water"] and again["accepted"] == []
    assert stash.mutation_count == 0, "the same call twice changes nothing"

    last = ok(run_plugin(stash, {"mode": "review_decide", "kind": "scene", "id": scene, "reject": ["Outdoors"]}))
    assert last["pending"] == 0 and last["review_tag_removed"]
    assert stash.tags_of_scene(scene) == {"AI_Tagged", "Red"}

    ok(run_plugin(stash, {"mode": "reapply"}))
    assert stash.tags_of_scene(scene) == {"AI_Tagged", "Red"}, "reapply re-adds neither rejections nor AI_Review"
    listed = ok(run_plugin(stash, {"mode": "review_list", "kind": "scene"}))
    assert listed["items"] == [], "nothing decided comes back to the queue"


def test_rejecting_an_applied_ai_tag_removes_it_and_reapply_never_re_adds_it(stash, model, tmp_path):
    configure(stash, model, minConfidence=60, reviewConfidence=30)
    image = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    white = stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    ok(run_plugin(stash, {"mode": "tag_images"}))
    listed = ok(run_plugin(stash, {"mode": "review_list"}))
    [item] = listed["items"]
    assert item["id"] == white and [s["tag"] for s in item["suggestions"]] == ["Bright"]

    done = ok(run_plugin(stash, {"mode": "review_decide", "kind": "image", "id": image, "reject": ["Red"]}))

    assert done["removed"] == ["Red"] and stash.tags_of_image(image) == {"AI_Tagged"}
    ok(run_plugin(stash, {"mode": "reapply"}))
    assert stash.tags_of_image(image) == {"AI_Tagged"}


def test_review_decide_answers_a_clear_error_for_bad_input_and_changes_nothing(stash, model, tmp_path):
    scene, image = seeded(stash, model, tmp_path)
    stash.reset_log()
    cases = [
        ({"kind": "movie", "id": scene, "accept": ["Red"]}, "kind must be one of scene, image"),
        ({"kind": "scene", "id": "12abc", "accept": ["Red"]}, "id must be a Stash item id"),
        ({"kind": "scene", "id": scene}, "needs accept or reject"),
        ({"kind": "scene", "id": scene, "accept": ["Red"], "reject": ["red"]}, "both accepted and rejected"),
        ({"kind": "scene", "id": scene, "accept": ["Red", "Unicorn"]},
         "not pending and not applied by AI Tagger: Unicorn"),
        ({"kind": "scene", "id": scene, "accept": [7]}, "accept: \"7\" is not a tag name"),
        ({"kind": "scene", "id": "999", "accept": ["Red"]}, "scene 999 does not exist in Stash"),
    ]
    for args, message in cases:
        error = failed(run_plugin(stash, {"mode": "review_decide", **args}))
        assert message in error, (args, error)
    assert "per_page must be a whole number" in failed(run_plugin(stash, {"mode": "review_list", "per_page": "x"}))
    assert stash.mutation_count == 0
    assert stash.tags_of_scene(scene) == {"AI_Tagged", "AI_Review"}

    stash.delete_item("image", image)
    listed = ok(run_plugin(stash, {"mode": "review_list"}))
    assert [i["id"] for i in listed["items"]] == [scene]
    assert listed["notes"] == [f"image {image}: deleted in Stash since it was tagged; its suggestions are dropped"]


def test_a_tag_merged_since_is_accepted_as_the_tag_it_was_merged_into(stash, model, tmp_path):
    configure(stash, model, minConfidence=60, reviewConfidence=30, onlyExistingTags=True)
    stash.add_tag("Bright")
    white = stash.add_image(media.make_image(tmp_path / "white.jpg", "white"))
    ok(run_plugin(stash, {"mode": "tag_images"}))
    with stash.lock:  # the user merges "Bright" into "Light": its name becomes an alias
        bright = stash.tag_by_name("Bright")["id"]
        stash._destroy_tag(bright)
    stash.add_tag("Light", aliases=["Bright"])

    listed = ok(run_plugin(stash, {"mode": "review_list"}))
    assert listed["items"][0]["suggestions"][0]["tag"] == "Light"
    ok(run_plugin(stash, {"mode": "review_decide", "kind": "image", "id": white, "accept": ["Light"]}))
    assert stash.tags_of_image(white) == {"AI_Tagged", "Light"}


def test_two_tabs_deciding_the_same_item_apply_the_tag_once(stash, model, tmp_path):
    scene, _ = seeded(stash, model, tmp_path)
    stash.reset_log()
    runs = []
    args = {"mode": "review_decide", "kind": "scene", "id": scene, "accept": ["Red", "Outdoors"]}
    threads = [threading.Thread(target=lambda: runs.append(run_plugin(stash, args))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    answers = sorted((r.output or {}).get("accepted", []) == ["Red", "Outdoors"] for r in runs)
    assert answers in ([False, True],), [r.stdout for r in runs]
    assert stash.tags_of_scene(scene) == {"AI_Tagged", "AI_Review", "Red", "Outdoors"}
    with journal_db(stash) as db:
        accepted = db.execute("SELECT count(*) FROM writes w JOIN runs r ON r.id = w.run_id "
                              "WHERE r.mode = 'review_decide'").fetchone()[0]
    assert accepted == 2, "each tag journaled as accepted once"


def test_the_page_reaches_the_operations_through_run_plugin_operation(stash, model, tmp_path):
    scene, _ = seeded(stash, model, tmp_path)
    session = requests.Session()
    session.headers["Cookie"] = stash.cookie_header

    def operation(args):
        body = {"query": OPERATION, "variables": {"plugin_id": PLUGIN_ID, "args": args}}
        return session.post(f"{stash.url}/graphql", data=json.dumps(body), timeout=120).json()

    listed = operation({"mode": "review_list", "per_page": 10})["data"]["runPluginOperation"]
    assert listed["total"] == 2
    answer = operation({"mode": "review_decide", "kind": "scene", "id": "nope", "accept": ["Red"]})
    assert "id must be a Stash item id" in answer["errors"][0]["message"]
