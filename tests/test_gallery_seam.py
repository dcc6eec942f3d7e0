"""Galleries through the analyzer seam: every analyzer sees a gallery's sampled members as its
frames, and what they find (performers with tags) goes in the gallery's one write.

In-process through ``entry.main`` with the seam's test face analyzer and the in-process provider.
"""

from __future__ import annotations

from typing import Any

import pytest

from ai_tagger.analyze.base import PerformerMatch
from tests import media
from tests.conftest import PLUGIN_ID
from tests.servers.stash_server import FakeStash
from tests.test_analyzer_seam import FakeFaces, faces_on  # noqa: F401 - faces_on is its autouse fixture
from tests.test_in_process import FakeProvider, run, settings


@pytest.fixture
def server() -> Any:
    with FakeStash() as stash:
        stash.set_plugin_settings(PLUGIN_ID, settings())
        yield stash


def gallery_writes(stash: FakeStash) -> list[dict[str, Any]]:
    with stash.lock:
        return [v["input"] for op, v in stash.operations if op in ("BulkGalleryUpdate", "ReviewGalleryUpdate")]


def test_performers_found_in_a_gallerys_members_go_in_its_one_write(server, tmp_path):
    stash = server
    alice = stash.add_performer("Alice")
    FakeFaces.matches = [PerformerMatch(alice, "Alice", 0.9)]
    folder = tmp_path / "set"
    for n in range(3):
        media.make_image(folder / f"{n}.png", "red", size=(32, 32))
    gallery = stash.add_gallery(folder)

    output, error, _ = run(stash, tmp_path / "data", mode="tag_galleries")

    assert error is None and output["performers_applied"] == 1
    [write] = gallery_writes(stash)
    assert write["performer_ids"] == {"ids": [alice], "mode": "ADD"} and write["tag_ids"]["mode"] == "ADD"
    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}
    assert stash.gallery(gallery)["performer_ids"] == {alice}
    assert FakeFaces.seen == [gallery]
    [request] = FakeProvider.history
    assert request.kind == "gallery" and request.frame_count == 3, "the members went as one request"

    undone, error, _ = run(stash, tmp_path / "data", mode="undo_last")
    assert error is None
    assert stash.tags_of_gallery(gallery) == set() and stash.gallery(gallery)["performer_ids"] == set()
