"""Descriptions (``writeDetails``): one more analyzer, riding along in the tag request.

Run as Stash runs the plugin, against the bundled Stash and the pixel model, which answers a
``description`` (the colours it sees) when the request asks for one.
"""

from __future__ import annotations

from typing import Any

from tests import media
from tests.conftest import configure, run_plugin
from tests.servers.stash_server import FakeStash

RED = "The pictures are mostly red."


def ok(run: Any) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    assert run.error is None, run.error
    return run.output


def details(stash: FakeStash, kind: str, item_id: str) -> str | None:
    with stash.lock:
        table = stash.scenes if kind == "scene" else stash.images
        return table[int(item_id)]["details"]


def updates(stash: FakeStash) -> list[dict[str, Any]]:
    with stash.lock:
        return [v["input"] for op, v in stash.operations if op in ("BulkImageUpdate", "BulkSceneUpdate")]


def test_details_are_written_only_where_empty_in_the_items_single_write(stash, model, tmp_path):
    configure(stash, model, writeDetails=True)
    empty = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    theirs = stash.add_image(media.make_image(tmp_path / "red2.jpg", "red"))
    stash.set_item_details("image", theirs, "My own words.")
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert details(stash, "image", empty) == RED
    assert details(stash, "image", theirs) == "My own words.", "the user's text is never replaced"
    writes = updates(stash)
    assert len(writes) == 2, "one mutation per item: tags, status and details together"
    assert [w.get("details") for w in writes if w["ids"] == [empty]] == [RED]
    assert all("details" not in w for w in writes if w["ids"] == [theirs])
    assert model.completion_count == 2, "one chat request per item with descriptions on"
    assert output["details_written"] == 1
    rows = {row["id"]: row for row in output["items"]}
    assert rows[empty]["description"] == RED and rows[empty]["details_written"] is True
    assert rows[theirs]["details_written"] is False


def test_descriptions_off_asks_for_none_and_writes_none(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))

    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert details(stash, "image", image) is None
    assert '"description"' not in model.requests[0]["text"]
    assert "description" not in output["items"][0]


def test_undo_clears_the_description_only_while_it_is_unchanged(stash, model, tmp_path):
    configure(stash, model, writeDetails=True)
    kept = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    edited = stash.add_image(media.make_image(tmp_path / "red2.jpg", "red"))
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    stash.set_item_details("image", edited, RED + " Edited by the user.")

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert details(stash, "image", kept) == ""
    assert details(stash, "image", edited) == RED + " Edited by the user."
    assert output["removed"]["details"] == 1


def test_preview_shows_the_description_and_writes_nothing(stash, model, tmp_path):
    configure(stash, model, writeDetails=True)
    image = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))

    output = ok(run_plugin(stash, {"mode": "preview"}))

    assert output["items"][0]["description"] == RED
    assert details(stash, "image", image) is None and stash.mutation_count == 0


def test_reapply_writes_the_cached_description_without_a_request(stash, model, tmp_path):
    configure(stash, model, writeDetails=True)
    image = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    ok(run_plugin(stash, {"mode": "preview"}))
    assert model.completion_count == 1

    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert details(stash, "image", image) == RED and model.completion_count == 1, "the preview's answer was cached"
    ok(run_plugin(stash, {"mode": "undo_last"}))
    assert details(stash, "image", image) == ""

    ok(run_plugin(stash, {"mode": "reapply"}))

    assert details(stash, "image", image) == RED
    assert model.completion_count == 1


def test_a_description_the_user_cleared_is_not_written_again(stash, model, tmp_path):
    configure(stash, model, writeDetails=True)
    image = stash.add_image(media.make_image(tmp_path / "red.jpg", "red"))
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    stash.set_item_details("image", image, "")

    ok(run_plugin(stash, {"mode": "reapply"}))

    assert details(stash, "image", image) == ""


def test_labels_provider_says_once_that_it_cannot_describe(stash, model, tmp_path):
    configure(stash, model, provider="labels", writeDetails=True)
    for name in ("a", "b"):
        stash.add_image(media.make_image(tmp_path / f"{name}.jpg", "green"))

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.error is None, run.stderr
    said = [line for line in run.log_lines() if "cannot describe" in line]
    assert len(said) == 1 and "labels" in said[0]


def test_descriptions_cost_at_most_fifteen_percent_more_tokens_per_scene(stash, model, tmp_path):
    """Issue 22's budget: a description rides along in the tag request for about +15 % tokens at most."""
    video = media.make_video(tmp_path / "rgb.mp4", ["red", "green", "blue"], seconds_per_colour=2)
    spent = {}
    for on in (False, True):
        stash.add_scene(video, fingerprints=[{"type": "oshash", "value": f"rgb-{on}"}])
        configure(stash, model, writeDetails=on, framesPerScene=3)
        output = ok(run_plugin(stash, {"mode": "tag_untagged"}))
        spent[on] = output["tokens"]["total"]

    print(f"tokens per scene: descriptions off {spent[False]}, on {spent[True]} ({spent[True] / spent[False]:.3f}x)")
    assert spent[False] < spent[True] <= 1.15 * spent[False]


def test_remove_ai_clears_a_scenes_unchanged_description_in_its_one_remove(stash, model, tmp_path):
    configure(stash, model, writeDetails=True, framesPerScene=2)
    video = media.make_video(tmp_path / "red.mp4", ["red"], seconds_per_colour=2)
    scene = stash.add_scene(video)
    ok(run_plugin(stash, {"mode": "tag_scenes"}))
    assert details(stash, "scene", scene) == RED
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "remove_ai"}))

    assert details(stash, "scene", scene) == "" and stash.tags_of_scene(scene) == set()
    [update] = updates(stash)
    assert update["details"] == "" and update["tag_ids"]["mode"] == "REMOVE"
    assert output["removed"]["details"] == 1
