"""The Stash client against the fake server: paging that survives items changing under it."""

from __future__ import annotations

from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.stash.models import ItemUpdate, ServerConnection


def client_for(stash) -> StashClient:
    return StashClient(ServerConnection.model_validate(stash.server_connection()))


def test_untagged_pages_by_id_while_items_get_tagged(stash, tmp_path):
    ids = stash.seed_scenes(25, tmp_path / "none.mp4", duration=10)
    done = stash.add_tag("done")
    client = client_for(stash)
    seen = []
    for item in client.untagged("scene", page_size=10):
        seen.append(item.id)
        client.update_item("scene", item.id, ItemUpdate(add_tags=(done,)))  # the item leaves the untagged set at once
    assert seen == ids


def test_untagged_pages_by_number_when_the_server_ignores_the_id_criterion(stash, tmp_path, monkeypatch):
    ids = stash.seed_scenes(25, tmp_path / "none.mp4", duration=10)
    client = client_for(stash)
    execute = client.execute

    def without_id(document, variables=None):
        variables = dict(variables or {})
        if "scene_filter" in variables:
            variables["scene_filter"] = {k: v for k, v in variables["scene_filter"].items() if k != "id"}
        return execute(document, variables)

    monkeypatch.setattr(client, "execute", without_id)
    assert [item.id for item in client.untagged("scene", page_size=10)] == ids


def test_tag_vocabulary_is_read_in_pages(stash):
    stash.seed_tags(2500)
    assert len(client_for(stash).all_tags()) == 2500


def test_tags_load_without_usage_counts_when_stash_cannot_give_them(stash, monkeypatch):
    """Usage counts only rank the prompt's vocabulary: a server failing on them must not stop a run."""
    stash.add_tag("Dog")
    client = client_for(stash)
    execute = client.execute

    def failing_counts(document, variables=None):
        if "scene_count" in document:
            raise StashError("Cannot return null for non-nullable field Tag.scene_count")
        return execute(document, variables)

    monkeypatch.setattr(client, "execute", failing_counts)
    assert [t.name for t in client.all_tags()] == ["Dog"]


def test_items_load_without_fingerprints_when_stash_cannot_give_them(stash, tmp_path, monkeypatch):
    """Fingerprints only key the cache: a server failing on them must not stop a run."""
    ids = stash.seed_scenes(3, tmp_path / "none.mp4", duration=10)
    client = client_for(stash)
    execute = client.execute

    def failing_fingerprints(document, variables=None):
        if "fingerprints" in document:
            raise StashError("Cannot return null for non-nullable field VideoFile.fingerprints")
        return execute(document, variables)

    monkeypatch.setattr(client, "execute", failing_fingerprints)
    assert client.count_untagged("scene") == 3
    items = list(client.untagged("scene"))
    assert [item.id for item in items] == ids
    assert items[0].file.fingerprint().startswith("path:")
