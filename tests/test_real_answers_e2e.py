"""End to end, as Stash runs the plugin, against a model server answering like real ones
(``answer_case`` picks a case of ``tests/answers/``): reasoning, names-only lists, bad tags among
good ones, answers cut by the token limit, 0-based frame numbers."""

from __future__ import annotations

from tests import media
from tests.conftest import configure, run_plugin


def test_reasoning_block_is_skipped_and_the_answer_after_it_applied(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "a.jpg", "gray"))
    model.answer_case = "think_block_with_example_json"

    run = run_plugin(stash, {"mode": "tag_images"})

    assert run.error is None, run.stderr
    assert stash.tags_of_image(image) == {"Dog", "Beach", "AI_Tagged"}


def test_names_only_tags_wait_for_review_or_trust_and_preview_says_why(stash, model, tmp_path):
    model.answer_case = "names_only"
    first = stash.add_image(media.make_image(tmp_path / "a.jpg", "gray"))

    preview = run_plugin(stash, {"mode": "preview"})
    [item] = preview.output["items"]
    assert {(c["outcome"], c["rule"]) for c in item["candidates"]} == {("unscored", "unscored: trustUnscoredTags off")}
    assert item["candidates"][0]["confidence"] is None

    configure(stash, model, reviewConfidence=40)
    run_plugin(stash, {"mode": "tag_images"})  # answered from the preview's cache
    assert stash.tags_of_image(first) == {"AI_Tagged", "AI_Review"}

    second = stash.add_image(media.make_image(tmp_path / "b.jpg", "white"))
    configure(stash, model, trustUnscoredTags=True)
    run_plugin(stash, {"mode": "tag_images"})
    assert stash.tags_of_image(second) == {"dog", "beach", "AI_Tagged"}


def test_one_bad_tag_is_dropped_with_a_debug_line_and_the_good_ones_applied(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "a.jpg", "gray"))
    model.answer_case = "negative_confidence_among_good"

    run = run_plugin(stash, {"mode": "tag_images"})

    assert stash.tags_of_image(image) == {"Car", "Road", "AI_Tagged"}
    [line] = [line for line in run.log_lines("d") if "dropped tag" in line]
    assert "Snow" in line and f"image {image}" in line
    assert model.completion_count == 1


def test_reasoning_that_uses_up_max_tokens_is_asked_again_with_more_tokens(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "a.jpg", "red"))
    model.answer_case = "reasoning_exhausted_empty_content"  # answers only from max_tokens 3000
    configure(stash, model, maxAnswerTokens=2000)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert [r["max_tokens"] for r in model.requests] == [2000, 4000]
    assert stash.tags_of_image(image) == {"Red", "AI_Tagged"}
    assert run.output["gateway_calls"] == 2


def test_answer_cut_twice_by_the_token_limit_marks_only_that_item_errored(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "a.jpg", "red"))
    model.answer_case = "reasoning_exhausted_empty_content"
    configure(stash, model, maxAnswerTokens=1000)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert [r["max_tokens"] for r in model.requests] == [1000, 2000]
    assert stash.tags_of_image(image) == {"AI_Errored"}
    assert any("maxAnswerTokens" in line for line in run.log_lines("e"))


def test_zero_based_frame_numbers_are_shifted_and_logged_once_per_run(stash, model, tmp_path):
    video = media.make_video(tmp_path / "v.mp4", ["red", "blue"], seconds_per_colour=2)
    scenes = [stash.add_scene(video) for _ in range(2)]
    model.answer_case = "zero_based_frames"  # cites frames 0 and 1 of 2
    configure(stash, model, framesPerScene=2, disableCache=True, minConfidence=70)

    run = run_plugin(stash, {"mode": "preview"})

    assert sum("numbers frames from 0" in line for line in run.log_lines()) == 1
    for item in run.output["items"]:
        frames = {c["name"]: c["frames"] for c in item["candidates"]}
        assert frames == {"Red": [1, 2], "Car": [2]}
    assert len(run.output["items"]) == len(scenes)


def test_answer_cut_mid_tag_keeps_its_complete_tags_after_asking_again(stash, model, tmp_path):
    image = stash.add_image(media.make_image(tmp_path / "a.jpg", "gray"))
    model.answer_case = "truncated_by_length"  # cut inside its second tag, however many tokens
    configure(stash, model, maxAnswerTokens=500)

    run = run_plugin(stash, {"mode": "tag_images"})

    assert [r["max_tokens"] for r in model.requests] == [500, 1000]
    assert stash.tags_of_image(image) == {"dog", "AI_Tagged"}
    assert any("token limit" in line for line in run.log_lines("w"))
