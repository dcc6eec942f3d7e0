"""End to end: galleries tagged from their images, run as Stash runs the plugin.

Galleries of generated images on the bundled Stash server, the pixel-reading model server,
the plugin as a subprocess: a gallery gets what its sampled members show, at most
``imagesPerGallery`` pictures are sent, members tagged before cost nothing, and the journal,
undo and review cover galleries like scenes and images.
"""

from __future__ import annotations

from pathlib import Path

from tests import media
from tests.conftest import configure, run_plugin
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash


def ok(run):
    assert run.returncode == 0 and run.error is None, run.stderr
    return run.output


def folder_of(tmp_path: Path, name: str, colours: list[str]) -> Path:
    folder = tmp_path / name
    for index, colour in enumerate(colours):
        media.make_image(folder / f"{index:03d}.png", colour, size=(48, 32))
    return folder


def gallery_of(stash: FakeStash, tmp_path: Path, colours: list[str], name: str = "set") -> str:
    return stash.add_gallery(folder_of(tmp_path, name, colours))


def gallery_updates(stash: FakeStash) -> list[dict]:
    return [v["input"] for op, v in stash.operations if op == "BulkGalleryUpdate"]


def test_gallery_gets_the_tag_its_images_show_in_one_request(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red"] * 9)
    output = ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}
    assert model.completion_count == 1 and model.images_received == 6
    assert len(gallery_updates(stash)) == 1, "one mutation carries the gallery's tags and status tag"
    assert output["tagged"] == 1 and output["gateway_calls"] == 1
    assert all(not stash.tags_of_image(i) for i in stash.gallery(gallery)["image_ids"]), "members untouched"


def test_mixed_gallery_gets_only_what_passes_min_frames(stash, model, tmp_path):
    configure(stash, model, minFrames=2, minConfidence=50)
    gallery = gallery_of(stash, tmp_path, ["red", "red", "blue", "red", "red", "red"])
    output = ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}
    [item] = output["items"]
    water = next(c for c in item["candidates"] if c["tag"] == "Water")
    assert water["outcome"] == "too few frames" and water["frames"] == [3]


def test_sampled_count_never_exceeds_images_per_gallery(stash, model, tmp_path):
    configure(stash, model, imagesPerGallery=4)
    gallery_of(stash, tmp_path, ["green"] * 30)
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert model.images_received == 4
    member_reads = [v for op, v in stash.operations if op == "FindImages"]
    assert len(member_reads) == 4 and all(v["filter"]["per_page"] == 1 for v in member_reads)


def test_members_tagged_before_cost_nothing(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red", "red", "blue", "red"])
    ok(run_plugin(stash, {"mode": "tag_images"}))
    calls, pictures = model.completion_count, model.images_received
    assert calls == 4

    output = ok(run_plugin(stash, {"mode": "tag_galleries"}))

    assert model.completion_count == calls and model.images_received == pictures, "no call for cached members"
    assert output["gateway_calls"] == 0 and output["tokens"]["total"] == 0
    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}


def test_only_members_not_seen_before_are_sent(stash, model, tmp_path):
    colours = ["red", "blue", "red", "green", "red", "red"]
    gallery = gallery_of(stash, tmp_path, colours)
    first = stash.gallery(gallery)["image_ids"][0]
    ok(run_plugin(stash, {"mode": "tag_images", "limit": 1}))
    assert stash.tags_of_image(first) == {"Red", "AI_Tagged"}
    before = model.images_received

    ok(run_plugin(stash, {"mode": "tag_galleries"}))

    assert model.completion_count == 2 and model.images_received - before == 5


def test_a_tag_the_user_removed_from_a_member_is_not_suggested_on_its_evidence(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red", "red"])
    ok(run_plugin(stash, {"mode": "tag_images"}))
    for image in stash.gallery(gallery)["image_ids"]:
        stash.set_item_tags("image", image, ["AI_Tagged"])  # the user took "Red" off both images

    output = ok(run_plugin(stash, {"mode": "tag_galleries"}))

    assert stash.tags_of_gallery(gallery) == {"AI_Tagged"}
    assert output["items"][0]["candidates"] == []


def test_empty_gallery_is_skipped_with_one_log_line(stash, model, tmp_path):
    empty = stash.add_gallery(title="Nothing yet")
    run = run_plugin(stash, {"mode": "tag_galleries"})
    output = ok(run)
    assert stash.tags_of_gallery(empty) == set() and output["errored"] == 0
    assert [line for line in run.log_lines() if "Nothing yet" in line] == [
        f"gallery {empty} (Nothing yet): no images; skipped"
    ]
    assert model.completion_count == 0


def test_zip_gallery_is_read_through_stash_image_urls(stash, model, tmp_path):
    sources = {f"pics/{i}.png": media.make_image(tmp_path / f"src{i}.png", "blue", size=(40, 30)) for i in range(3)}
    gallery = stash.add_gallery(zip_path=media.make_zip(tmp_path / "set.zip", sources))
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert stash.tags_of_gallery(gallery) == {"Water", "AI_Tagged"}
    assert sum(n for path, n in stash.media_requests.items() if path.endswith("/image")) == 3


def test_an_unreadable_member_is_left_out_and_only_all_unreadable_errs(stash, model, tmp_path):
    folder = folder_of(tmp_path, "some", ["red", "red"])
    media.make_corrupt(folder / "001b.png")
    some = stash.add_gallery(folder)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.png", "b.png"):
        media.make_corrupt(broken / name)
    none = stash.add_gallery(broken)

    output = ok(run_plugin(stash, {"mode": "tag_galleries"}))

    assert stash.tags_of_gallery(some) == {"Red", "AI_Tagged"}
    assert stash.tags_of_gallery(none) == {"AI_Errored"}
    assert output["tagged"] == 1 and output["errored"] == 1
    assert model.images_received == 2


def test_tag_untagged_includes_galleries_unless_switched_off(stash: FakeStash, model: FakeModel, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red"])
    configure(stash, model, tagGalleries=False)
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert stash.tags_of_gallery(gallery) == set()
    configure(stash, model)
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}


def test_preview_covers_galleries_and_writes_nothing(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red"] * 3)
    output = ok(run_plugin(stash, {"mode": "preview"}))
    [item] = [i for i in output["items"] if i["kind"] == "gallery"]
    assert item["id"] == gallery and item["tags"] == ["Red"]
    assert stash.tags_of_gallery(gallery) == set() and gallery_updates(stash) == []
    calls = model.completion_count
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert model.completion_count == calls, "the run after a preview pays nothing again"


def test_undo_removes_only_what_the_run_added_to_a_gallery(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red"] * 2)
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    mine = stash.add_tag("Holiday")
    stash.execute(
        "mutation($input: BulkGalleryUpdateInput!) { bulkGalleryUpdate(input: $input) { id } }",
        {"input": {"ids": [gallery], "tag_ids": {"ids": [mine], "mode": "ADD"}}},
    )

    output = ok(run_plugin(stash, {"mode": "undo_last"}))

    assert stash.tags_of_gallery(gallery) == {"Holiday"}
    assert output["items"]["gallery"] == 1


def test_report_and_reapply_cover_galleries(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red"] * 2)
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    calls = model.completion_count
    configure(stash, model, minConfidence=95)
    ok(run_plugin(stash, {"mode": "reapply"}))
    assert stash.tags_of_gallery(gallery) == {"AI_Tagged"} and model.completion_count == calls
    report = ok(run_plugin(stash, {"mode": "report"}))
    assert report is not None


def test_review_lists_gallery_suggestions_with_their_sampled_images(stash, model, tmp_path):
    configure(stash, model, minConfidence=95, reviewConfidence=30)
    gallery = gallery_of(stash, tmp_path, ["red"] * 8)
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert stash.tags_of_gallery(gallery) == {"AI_Tagged", "AI_Review"}

    listed = ok(run_plugin(stash, {"mode": "review_list", "kind": "gallery"}))

    [item] = listed["items"]
    assert item["kind"] == "gallery" and item["url"] == f"/galleries/{gallery}" and item["title"] == "set"
    assert [s["tag"] for s in item["suggestions"]] == ["Red"]
    members = stash.gallery(gallery)["image_ids"]
    assert [i["id"] for i in item["images"]] == [members[p] for p in (0, 1, 3, 4, 6, 7)]
    assert all(i["url"].endswith(f"/image/{i['id']}/image") for i in item["images"])

    done = ok(run_plugin(stash, {"mode": "review_decide", "kind": "gallery", "id": gallery, "accept": ["Red"]}))
    assert done["accepted"] == ["Red"]
    assert stash.tags_of_gallery(gallery) == {"AI_Tagged", "Red"}


def test_one_tag_untagged_run_pays_once_for_images_and_their_gallery(stash, model, tmp_path):
    gallery = gallery_of(stash, tmp_path, ["red", "red", "blue"])
    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))
    assert model.completion_count == 3 and model.images_received == 3, "one call per image, none for the gallery"
    assert output["gateway_calls"] == 3 and output["tagged"] == 4
    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}
    assert [stash.tags_of_image(i) for i in stash.gallery(gallery)["image_ids"]] == [
        {"Red", "AI_Tagged"},
        {"Red", "AI_Tagged"},
        {"Water", "AI_Tagged"},
    ]
