"""Galleries as Stash holds them, and how the plugin reads them cheaply.

The fake Stash grows galleries (a folder's images, a zip's members) whose images come in path
order, as Stash lists them; the client pages untagged galleries like scenes and reads only the
sampled members, one small page per position, never the whole set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_tagger.stash.client import StashClient
from ai_tagger.stash.galleries import sample_positions, sampled_members
from ai_tagger.stash.models import ItemUpdate, ServerConnection
from tests.media import make_image, make_zip
from tests.servers.stash_server import FakeStash


@pytest.fixture
def stash() -> FakeStash:
    with FakeStash() as server:
        yield server


def client_for(stash: FakeStash) -> StashClient:
    return StashClient(ServerConnection.model_validate(stash.server_connection()))


def folder_of(tmp_path: Path, name: str, colours: list[str]) -> Path:
    folder = tmp_path / name
    for index, colour in enumerate(colours):
        make_image(folder / f"{index:03d}.png", colour, size=(32, 24))
    return folder


def find_image_reads(stash: FakeStash) -> list[dict]:
    return [variables for name, variables in stash.operations if name == "FindImages"]


@pytest.mark.parametrize(
    ("count", "wanted", "expected"),
    [
        (0, 6, []),
        (1, 6, [0]),
        (4, 6, [0, 1, 2, 3]),
        (6, 6, [0, 1, 2, 3, 4, 5]),
        (200, 6, [0, 40, 80, 119, 159, 199]),
        (7, 6, [0, 1, 2, 4, 5, 6]),
        (200, 1, [0]),
        (200, 2, [0, 199]),
    ],
)
def test_sample_is_first_last_and_evenly_between(count: int, wanted: int, expected: list[int]) -> None:
    assert sample_positions(count, wanted) == expected


@pytest.mark.parametrize("count", [0, 1, 2, 5, 6, 7, 11, 12, 13, 39, 200, 1001])
@pytest.mark.parametrize("wanted", [1, 2, 3, 6, 13])
def test_sample_never_exceeds_the_wanted_count_and_stays_inside(count: int, wanted: int) -> None:
    positions = sample_positions(count, wanted)
    assert len(positions) == min(count, wanted) == len(set(positions))
    assert all(0 <= p < count for p in positions)
    if count:
        assert positions[0] == 0 and positions[-1] == count - 1 or wanted == 1


def test_untagged_galleries_page_like_scenes_and_count(stash: FakeStash, tmp_path: Path) -> None:
    tag = stash.add_tag("mine")
    ids = [stash.add_gallery(folder_of(tmp_path, f"set{i}", ["red"])) for i in range(5)]
    stash.add_gallery(folder_of(tmp_path, "tagged", ["red"]), tag_ids=[tag])
    client = client_for(stash)
    assert client.count_untagged("gallery") == 5
    found = list(client.untagged("gallery", page_size=2))
    assert [g.id for g in found] == ids
    assert all(g.kind == "gallery" and g.image_count == 1 for g in found)
    assert found[0].path == str(tmp_path / "set0") and "set0" in found[0].label


def test_members_come_in_the_galleries_order_with_files_and_fingerprints(stash: FakeStash, tmp_path: Path) -> None:
    folder = tmp_path / "set"
    for name in ("c.png", "a.png", "b.png"):
        make_image(folder / name, "green", size=(32, 24))
    gallery = stash.add_gallery(folder)
    [item] = client_for(stash).untagged("gallery")
    members = sampled_members(client_for(stash), item, 6)
    assert [Path(m.file.path).name for m in members] == ["a.png", "b.png", "c.png"]
    assert all(m.kind == "image" and m.file.fingerprint().startswith("oshash:") for m in members)
    assert stash.gallery(gallery)["image_ids"] == [m.id for m in members]


def test_a_large_gallery_is_sampled_one_small_page_per_position(stash: FakeStash, tmp_path: Path) -> None:
    make_image(tmp_path / "one.png", "red", size=(16, 16))
    images = [
        stash.add_image(tmp_path / "one.png", fingerprints={"md5": f"m{i}"}, width=16, height=16) for i in range(200)
    ]
    gallery = stash.add_gallery(image_ids=images)
    client = client_for(stash)
    [item] = client.untagged("gallery")
    assert item.image_count == 200
    stash.reset_log()
    members = sampled_members(client, item, 6)
    assert [m.id for m in members] == [images[p] for p in (0, 40, 80, 119, 159, 199)]
    reads = find_image_reads(stash)
    assert len(reads) == 6
    assert all(r["filter"]["per_page"] == 1 for r in reads)
    assert all(r["image_filter"]["galleries"] == {"value": [gallery], "modifier": "INCLUDES"} for r in reads)


def test_a_small_gallery_is_read_in_one_request(stash: FakeStash, tmp_path: Path) -> None:
    stash.add_gallery(folder_of(tmp_path, "set", ["red", "green", "blue"]))
    client = client_for(stash)
    [item] = client.untagged("gallery")
    stash.reset_log()
    assert len(sampled_members(client, item, 6)) == 3
    assert len(find_image_reads(stash)) == 1


def test_zip_gallery_members_are_read_through_their_image_urls(stash: FakeStash, tmp_path: Path) -> None:
    sources = {f"pics/{i}.png": make_image(tmp_path / f"src{i}.png", "blue", size=(20, 20)) for i in range(3)}
    archive = make_zip(tmp_path / "set.zip", sources)
    stash.add_gallery(zip_path=archive)
    client = client_for(stash)
    [item] = client.untagged("gallery")
    assert item.path == str(archive)
    members = sampled_members(client, item, 2)
    assert len(members) == 2 and all(m.file.zip_file and m.file.zip_file.path == str(archive) for m in members)
    assert client.download(members[0].media_url) == sources["pics/0.png"].read_bytes()


def test_empty_gallery_has_no_members(stash: FakeStash) -> None:
    stash.add_gallery(title="nothing yet")
    client = client_for(stash)
    [item] = client.untagged("gallery")
    assert item.image_count == 0 and item.label == "gallery 1 (nothing yet)"
    assert sampled_members(client, item, 6) == []


def test_gallery_tags_are_added_and_removed_without_touching_the_users(stash: FakeStash, tmp_path: Path) -> None:
    mine, ai = stash.add_tag("mine"), stash.add_tag("ai")
    gallery = stash.add_gallery(folder_of(tmp_path, "set", ["red"]), tag_ids=[mine])
    client = client_for(stash)
    client.update_item("gallery", gallery, ItemUpdate(add_tags=(ai,)))
    assert stash.tags_of_gallery(gallery) == {"mine", "ai"}
    assert client.current("gallery", [gallery])[gallery].tag_ids == {mine, ai}
    client.update_item("gallery", gallery, ItemUpdate(remove_tags=(ai,)))
    assert stash.tags_of_gallery(gallery) == {"mine"}
    client.update_item("gallery", gallery, ItemUpdate(add_tags=(ai,), remove_tags=(mine,)))
    assert stash.tags_of_gallery(gallery) == {"ai"}


def test_one_gallery_update_adds_performers_and_details(stash: FakeStash) -> None:
    gallery = stash.add_gallery()
    ann, bob = stash.add_performer("Ann"), stash.add_performer("Bob")
    client = client_for(stash)
    client.update_item("gallery", gallery, ItemUpdate(add_performers=(ann, bob), details="A beach"))
    client.update_item("gallery", gallery, ItemUpdate(remove_performers=(ann,)))
    assert stash.gallery(gallery)["performer_ids"] == {bob}
    state = client.current("gallery", [gallery])[gallery]
    assert state.performer_ids == {bob} and state.details == "A beach"


def test_gallery_review_view_has_title_cover_and_named_tags(stash: FakeStash, tmp_path: Path) -> None:
    mine = stash.add_tag("mine")
    gallery = stash.add_gallery(folder_of(tmp_path, "holiday", ["red"]), tag_ids=[mine])
    view = client_for(stash).review_items("gallery", [gallery])[gallery]
    assert view.title == "holiday" and view.tags == {mine: "mine"}
    assert view.picture and view.picture.endswith(f"/gallery/{gallery}/cover")
    assert client_for(stash).download(view.picture) == (tmp_path / "holiday" / "000.png").read_bytes()


def test_tag_usage_counts_galleries_and_destroy_leaves_them(stash: FakeStash, tmp_path: Path) -> None:
    tag = stash.add_tag("shared")
    gallery = stash.add_gallery(tag_ids=[tag])
    client = client_for(stash)
    assert client.tag_usage([tag]) == {tag: 1}
    client.destroy_tag(tag)
    assert stash.tags_of_gallery(gallery) == set()
