"""The user's vocabulary and rules, end to end through the plugin as Stash runs it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests import media
from tests.conftest import configure, run_plugin


def rules_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    return str(path)


def candidates(run) -> dict[str, dict]:
    return {c["name"]: c for item in run.output["items"] for c in item["candidates"]}


def test_synonyms_map_model_words_to_the_users_tag(stash, model, tmp_path):
    scarlet = stash.add_tag("Scarlet")
    image = stash.add_image(media.make_image(tmp_path / "r.jpg", "red"))
    configure(stash, model, rulesFile=rules_file(tmp_path, "synonyms:\n  Scarlet: [Red, Crimson]\n"))

    run = run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(image) == {"Scarlet", "AI_Tagged"}
    assert stash.tag_by_name("Red") is None
    assert "synonym" in candidates(run)["Scarlet"]["rule"]
    assert scarlet in stash.image(image)["tag_ids"]  # the user's own tag, not a new one


def test_block_list_keeps_a_tag_off_and_preview_says_why(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "b.jpg", "blue"))
    configure(stash, model, rulesFile=rules_file(tmp_path, 'block:\n  - "wat*"\n'))

    preview = run_plugin(stash, {"mode": "preview"})
    run_plugin(stash, {"mode": "tag_images"})

    water = candidates(preview)["Water"]
    assert water["outcome"] == "blocked" and water["rule"] == "block: wat*"
    assert stash.tags_of_image(image) == {"AI_Tagged"}


def test_per_tag_thresholds_override_min_confidence(stash, model, tmp_path):
    green = stash.add_image(media.make_image(tmp_path / "g.jpg", "green"))
    white = stash.add_image(media.make_image(tmp_path / "w.jpg", "white"))
    rules = "thresholds:\n  Outdoors: 90\n  Bright: 30\n"
    configure(stash, model, minConfidence=60, rulesFile=rules_file(tmp_path, rules))

    run = run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(green) == {"AI_Tagged"}  # 0.85 under its own 90 %
    assert stash.tags_of_image(white) == {"Bright", "AI_Tagged"}  # 0.35 over its own 30 %
    assert candidates(run)["Outdoors"]["rule"] == "threshold Outdoors: 90%"


def test_parents_of_applied_tags_are_added_when_asked(stash, model, tmp_path):
    nature = stash.add_tag("Nature")
    stash.add_tag("Outdoors", parent_ids=[nature])
    image = stash.add_image(media.make_image(tmp_path / "g.jpg", "green"))
    configure(stash, model, rulesFile=rules_file(tmp_path, "add_parents: true\n"))

    run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(image) == {"Outdoors", "Nature", "AI_Tagged"}


def test_review_tier_keeps_suggestions_without_applying_them(stash, model, tmp_path):
    white = stash.add_image(media.make_image(tmp_path / "w.jpg", "white"))
    red = stash.add_image(media.make_image(tmp_path / "r.jpg", "red"))
    configure(stash, model, minConfidence=60, reviewConfidence=30)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(white) == {"AI_Tagged", "AI_Review"}
    assert stash.tags_of_image(red) == {"Red", "AI_Tagged"}
    [reviewed] = [item for item in run.output["items"] if item["id"] == white]
    assert reviewed["review"] == ["Bright"]
    assert run.output["review"] == 1
    cache = Path(stash.server_connection()["Dir"]) / "plugin_data" / "ai_tagger" / "cache.sqlite3"
    with sqlite3.connect(cache) as db:
        kept = db.execute("SELECT review FROM items WHERE kind = 'image' AND id = ?", (white,)).fetchone()
    [suggestion] = json.loads(kept[0])
    assert suggestion["tag"] == "Bright" and suggestion["score"] == 0.35 and suggestion["tag_id"] is None
    assert suggestion["rule"] == "minConfidence: 60%; reviewConfidence: 30%", "the review page shows why"


def test_preview_lists_each_item_in_stashs_log_with_scores_in_percent(stash, model, tmp_path):
    white = stash.add_image(media.make_image(tmp_path / "w.jpg", "white"))
    configure(stash, model, minConfidence=60, reviewConfidence=30)

    run = run_plugin(stash, {"mode": "preview"})

    listing = f"image {white} (w.jpg): no tag would pass; for review: Bright 35% ("
    assert any(line.startswith(listing) for line in run.log_lines("i")), run.log_lines("i")
    assert candidates(run)["Bright"]["score"] == 0.35, "the output's fields keep their 0..1 scale"


def test_review_tier_is_off_by_default(stash, model, tmp_path):
    white = stash.add_image(media.make_image(tmp_path / "w.jpg", "white"))

    run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(white) == {"AI_Tagged"}


def test_only_existing_tags_constrains_the_answer_to_the_vocabulary(stash, model, tmp_path):
    stash.add_tag("Red")
    stash.add_tag("Water", aliases=["Lake"])
    green = stash.add_image(media.make_image(tmp_path / "g.jpg", "green"))
    red = stash.add_image(media.make_image(tmp_path / "r.jpg", "red"))
    configure(stash, model, onlyExistingTags=True)

    run = run_plugin(stash, {"mode": "tag_images"})

    schema = model.requests[0]["response_format"]["json_schema"]["schema"]
    assert sorted(schema["properties"]["tags"]["items"]["properties"]["name"]["enum"]) == ["Red", "Water"]
    assert stash.tags_of_image(green) == {"AI_Tagged"}
    assert stash.tags_of_image(red) == {"Red", "AI_Tagged"}
    assert not [op for op, _ in stash.operations if op == "TagCreate" and _["input"]["name"] == "Outdoors"]
    assert any("closed list" in line for line in run.log_lines("i"))


def test_vocabulary_parent_limits_the_names_sent(stash, model, tmp_path):
    colours = stash.add_tag("Colours")
    stash.add_tag("Red", parent_ids=[colours])
    stash.add_tag("Unrelated")
    stash.add_image(media.make_image(tmp_path / "r.jpg", "red"))
    configure(stash, model, vocabularyParent="Colours")

    run = run_plugin(stash, {"mode": "tag_images"})

    text = model.requests[0]["text"]
    assert "Red" in text and "Unrelated" not in text
    assert any("sending 1 tag name(s)" in line and "Colours" in line for line in run.log_lines("i"))


def test_malformed_rules_file_fails_before_any_write_naming_the_line(stash, model, tmp_path):
    stash.add_image(media.make_image(tmp_path / "r.jpg", "red"))
    configure(stash, model, rulesFile=rules_file(tmp_path, "thresholds:\n  Dog: 80\n  Cat: high\n"))
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "line 3" in run.error and "rules.yml" in run.error
    assert stash.mutation_count == 0 and model.completion_count == 0


def test_relative_rules_file_is_found_in_the_plugin_folder(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "b.jpg", "blue"))
    configure(stash, model, rulesFile="rules.example.yml")

    run = run_plugin(stash, {"mode": "tag_images"})

    assert run.error is None, run.error
    assert "AI_Tagged" in stash.tags_of_image(image)


def test_min_frames_needs_a_tag_in_enough_frames(stash, model, tmp_path):
    video = media.make_video(tmp_path / "v.mp4", ["red", "red", "red", "green"], seconds_per_colour=2.5)
    scene = stash.add_scene(video)
    configure(stash, model, framesPerScene=4, minConfidence=30, minFrames=2)

    run_plugin(stash, {"mode": "tag_scenes"})

    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}
