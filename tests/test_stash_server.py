"""The fake Stash must behave like the real one where the plugin depends on it.

Integration tests of the plugin are only as good as this fake: auth, tag rules, bulk modes,
filters used for keyset paging, and the HTTP media endpoints (Range requests, zips).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from graphql import NonNullTypeNode, OperationDefinitionNode, parse

from ai_tagger.stash import queries
from tests.servers.stash_server import FakeStash

needs_ffmpeg = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 5 s test video, a JPEG, and a zip holding that JPEG as `photos/a.jpg`."""
    folder = tmp_path_factory.mktemp("media")
    files = {"video": folder / "clip.mp4", "jpeg": folder / "a.jpg", "zip": folder / "photos.zip"}
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=5:size=320x240:rate=25",
                        "-pix_fmt", "yuv420p", "-g", "25", str(files["video"])], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1",
                        str(files["jpeg"])], check=True)
    else:
        files["video"].write_bytes(bytes(range(256)) * 400)
        files["jpeg"].write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
    with zipfile.ZipFile(files["zip"], "w") as zf:
        zf.write(files["jpeg"], "photos/a.jpg")
    return files


@pytest.fixture
def stash() -> FakeStash:
    with FakeStash() as server:
        yield server


def gql(stash: FakeStash, query: str, variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None) -> requests.Response:
    auth = {"Cookie": stash.cookie_header} if headers is None else headers
    return requests.post(f"{stash.url}/graphql", json={"query": query, "variables": variables or {}},
                         headers=auth, timeout=10)


def data(stash: FakeStash, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = gql(stash, query, variables).json()
    assert "errors" not in body, body
    return body["data"]


def get(stash: FakeStash, path: str, **headers: str) -> requests.Response:
    return requests.get(f"{stash.url}{path}", headers={"Cookie": stash.cookie_header, **headers}, timeout=10)


# ---- authentication ----------------------------------------------------------------------

def test_requests_without_credentials_get_401_and_are_counted(stash: FakeStash) -> None:
    assert gql(stash, queries.VERSION, headers={}).status_code == 401
    assert gql(stash, queries.VERSION, headers={"Cookie": "session=wrong"}).status_code == 401
    assert requests.get(f"{stash.url}/scene/1/stream", timeout=10).status_code == 401
    assert stash.rejected_requests == 3
    assert stash.operations == []


def test_session_cookie_from_server_connection_authenticates(stash: FakeStash) -> None:
    cookie = stash.server_connection()["SessionCookie"]
    response = gql(stash, queries.VERSION, headers={"Cookie": f"{cookie['Name']}={cookie['Value']}"})
    assert response.status_code == 200
    assert response.json() == {"data": {"version": {"version": "v0.28.0"}}}


def test_api_key_header_authenticates(stash: FakeStash) -> None:
    assert gql(stash, queries.VERSION, headers={"ApiKey": stash.api_key}).status_code == 200


def test_server_connection_looks_like_stash_stdin(stash: FakeStash) -> None:
    conn = stash.server_connection(Host="0.0.0.0")
    assert conn["Scheme"] == "http" and conn["Host"] == "0.0.0.0" and conn["Port"] == stash.port
    assert conn["SessionCookie"]["Name"] == "session" and conn["SessionCookie"]["Path"] == "/"
    assert Path(conn["PluginDir"]) == Path(__file__).resolve().parents[1]


# ---- GraphQL behaviour ----------------------------------------------------------------------

def test_unknown_field_is_rejected_like_stash(stash: FakeStash) -> None:
    response = gql(stash, "query { findScenes { count nonsense } }")
    assert response.status_code == 422
    assert "nonsense" in response.json()["errors"][0]["message"]


def test_tag_create_rejects_existing_name_or_alias_case_insensitively(stash: FakeStash) -> None:
    stash.add_tag("Outdoor", aliases=["outside"])
    for name, aliases in (("OUTDOOR", []), ("Outside", []), ("new", ["outdoor"])):
        body = gql(stash, queries.TAG_CREATE, {"input": {"name": name, "aliases": aliases}}).json()
        assert body["data"] == {"tagCreate": None}
        assert "already exists" in body["errors"][0]["message"]
    assert stash.tag_by_name("new") is None


def test_tag_create_stores_parents_aliases_and_flags(stash: FakeStash) -> None:
    parent = stash.add_tag("AI")
    tag = data(stash, queries.TAG_CREATE, {"input": {"name": "Beach", "aliases": ["shore"], "parent_ids": [parent],
                                                     "ignore_auto_tag": True}})["tagCreate"]
    assert tag["parents"] == [{"id": parent}] and tag["aliases"] == ["shore"]
    assert stash.tag_by_name("Beach")["ignore_auto_tag"] is True
    children = data(stash, "query($ids: [ID!]) { findTags(ids: $ids) { tags { children { name } } } }",
                    {"ids": [parent]})
    assert children["findTags"]["tags"] == [{"children": [{"name": "Beach"}]}]


def test_bulk_add_keeps_the_users_tags(stash: FakeStash, media: dict[str, Path]) -> None:
    user, ai = stash.add_tag("favourite"), stash.add_tag("beach")
    scene = stash.add_scene(media["video"], tag_ids=[user])
    data(stash, queries.BULK_SCENE_UPDATE, {"input": {"ids": [scene], "tag_ids": {"ids": [ai], "mode": "ADD"}}})
    assert stash.tags_of_scene(scene) == {"favourite", "beach"}
    data(stash, queries.BULK_SCENE_UPDATE, {"input": {"ids": [scene], "tag_ids": {"ids": [ai], "mode": "REMOVE"}}})
    assert stash.tags_of_scene(scene) == {"favourite"}
    listed = data(stash, queries.FIND_TAGS_WITH_USE, {"filter": {"per_page": -1, "sort": "name"}})["findTags"]["tags"]
    assert [(t["name"], t["scene_count"]) for t in listed] == [("beach", 0), ("favourite", 1)]


def test_bulk_update_with_unknown_tag_changes_nothing(stash: FakeStash, media: dict[str, Path]) -> None:
    tag = stash.add_tag("beach")
    image = stash.add_image(media["jpeg"])
    body = gql(stash, queries.BULK_IMAGE_UPDATE,
               {"input": {"ids": [image], "tag_ids": {"ids": [tag, "999"], "mode": "ADD"}}}).json()
    assert body["errors"] and stash.tags_of_image(image) == set()


def test_keyset_paging_visits_every_untagged_scene_once(stash: FakeStash) -> None:
    tagged = stash.add_tag("done")
    ids = stash.seed_scenes(250, "/nonexistent/clip.mp4")
    data(stash, queries.BULK_SCENE_UPDATE, {"input": {"ids": ids[::10], "tag_ids": {"ids": [tagged], "mode": "SET"}}})
    seen, last = [], 0
    while True:
        page = data(stash, queries.FIND_SCENES, {
            "filter": {"per_page": 40, "sort": "id", "direction": "ASC"},
            "scene_filter": {"tags": {"value": [], "modifier": "IS_NULL"},
                             "id": {"value": last, "modifier": "GREATER_THAN"}}})["findScenes"]
        if not page["scenes"]:
            break
        assert page["count"] == 225 - len(seen)
        seen += [s["id"] for s in page["scenes"]]
        last = int(seen[-1])
    assert seen == [i for i in ids if i not in ids[::10]]


def test_tag_filters_honour_modifiers_and_depth(stash: FakeStash) -> None:
    animal = stash.add_tag("animal")
    dog, cat = stash.add_tag("dog", parent_ids=[animal]), stash.add_tag("cat", parent_ids=[animal])
    s_dog, s_cat, s_both, s_none = (stash.add_scene(f"/x/{n}.mp4", tag_ids=t)
                                    for n, t in (("d", [dog]), ("c", [cat]), ("b", [dog, cat]), ("n", [])))

    def find(tags: dict[str, Any]) -> list[str]:
        result = data(stash, queries.FIND_SCENES, {"scene_filter": {"tags": tags}})["findScenes"]
        return [s["id"] for s in result["scenes"]]

    assert find({"value": [dog], "modifier": "INCLUDES"}) == [s_dog, s_both]
    assert find({"value": [dog, cat], "modifier": "INCLUDES_ALL"}) == [s_both]
    assert find({"value": [dog], "modifier": "EXCLUDES"}) == [s_cat, s_none]
    assert find({"value": [], "modifier": "NOT_NULL"}) == [s_dog, s_cat, s_both]
    assert find({"value": [animal], "modifier": "INCLUDES"}) == []
    assert find({"value": [animal], "modifier": "INCLUDES", "depth": -1}) == [s_dog, s_cat, s_both]


def test_paging_defaults_and_sorting(stash: FakeStash) -> None:
    for title in ("b", "c", "a"):
        stash.add_scene(f"/x/{title}.mp4", title=title)
    stash.seed_scenes(30, "/x/bulk.mp4")
    default = data(stash, queries.FIND_SCENES)["findScenes"]
    assert default["count"] == 33 and len(default["scenes"]) == 25
    by_title = data(stash, queries.FIND_SCENES, {"filter": {"sort": "title", "direction": "DESC", "per_page": 3,
                                                            "q": ".mp4", "page": 1},
                                                 "scene_filter": {"path": {"value": "/x/", "modifier": "INCLUDES"},
                                                                  "title": {"value": "Scene", "modifier": "EXCLUDES"}}})
    assert [s["title"] for s in by_title["findScenes"]["scenes"]] == ["c", "b", "a"]


def test_a_20000_scene_library_pages_by_id(stash: FakeStash) -> None:
    # How fast seeding and paging are is the benchmarks' business (rss seeds 20,000 scenes).
    stash.seed_tags(100)
    stash.seed_scenes(20_000, "/nonexistent/clip.mp4")
    page = data(stash, queries.FIND_SCENES, {
        "filter": {"per_page": 100, "sort": "id", "direction": "ASC"},
        "scene_filter": {"tags": {"value": [], "modifier": "IS_NULL"},
                         "id": {"value": 10_000, "modifier": "GREATER_THAN"}}})["findScenes"]
    assert page["count"] == 10_000 and len(page["scenes"]) == 100
    assert [int(s["id"]) for s in page["scenes"]] == list(range(10_001, 10_101))


def test_plugin_settings_and_ffmpeg_path_come_from_configuration(stash: FakeStash) -> None:
    stash.set_plugin_settings("ai_tagger", {"threshold": 0.5})
    stash.set_plugin_settings("other", {"x": 1})
    stash.set_ffmpeg_path("/opt/ff/ffmpeg", "/opt/ff/ffprobe")
    config = data(stash, queries.CONFIGURATION, {"include": ["ai_tagger"]})["configuration"]
    assert config == {"general": {"ffmpegPath": "/opt/ff/ffmpeg", "ffprobePath": "/opt/ff/ffprobe"},
                      "plugins": {"ai_tagger": {"threshold": 0.5}}}


def test_run_plugin_task_queues_a_job_until_finished(stash: FakeStash) -> None:
    job_id = data(stash, queries.RUN_PLUGIN_TASK, {"plugin_id": "ai_tagger", "task_name": "Tag new",
                                                   "description": "AI Tagger", "args_map": {"mode": "new"}})
    assert stash.jobs[0] | {"id": job_id["runPluginTask"]} == stash.jobs[0]
    assert stash.jobs[0]["args_map"] == {"mode": "new"} and stash.jobs[0]["task_name"] == "Tag new"
    assert data(stash, queries.JOB_QUEUE)["jobQueue"] == [{"id": "1", "status": "READY", "description": "AI Tagger"}]
    stash.jobs[0]["status"] = "FINISHED"
    assert data(stash, queries.JOB_QUEUE)["jobQueue"] == []


def test_operations_are_logged_by_name(stash: FakeStash) -> None:
    data(stash, queries.VERSION)
    data(stash, queries.RUN_PLUGIN_TASK, {"plugin_id": "ai_tagger"})
    assert [name for name, _ in stash.operations] == ["Version", "RunPluginTask"]
    assert stash.operations[1][1] == {"plugin_id": "ai_tagger"}
    assert stash.mutation_count == 1
    stash.reset_log()
    assert stash.operations == [] and stash.mutation_count == 0


SAMPLE_VARIABLES = {
    "TAG_CREATE": {"input": {"name": "sample"}},
    "BULK_SCENE_UPDATE": {"input": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "ADD"}}},
    "BULK_IMAGE_UPDATE": {"input": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "ADD"}}},
    "REVIEW_SCENE_UPDATE": {"add": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "ADD"}},
                            "remove": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "REMOVE"}}},
    "REVIEW_IMAGE_UPDATE": {"add": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "ADD"}},
                            "remove": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "REMOVE"}}},
    "BULK_GALLERY_UPDATE": {"input": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "ADD"}}},
    "REVIEW_GALLERY_UPDATE": {"add": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "ADD"}},
                              "remove": {"ids": ["1"], "tag_ids": {"ids": ["1"], "mode": "REMOVE"}}},
    "RUN_PLUGIN_TASK": {"plugin_id": "ai_tagger"},
    "SCENE_MARKER_CREATE": {
        "input": {"scene_id": "1", "primary_tag_id": "1", "title": "seeded", "seconds": 1.0, "end_seconds": 2.0}
    },
    "TAG_DESTROY": {"input": {"id": "1"}},
    "SCENE_MARKERS_DESTROY": {"ids": []},
}


def required_variables(document: str) -> set[str]:
    ops = [d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
    return {v.variable.name.value for op in ops for v in op.variable_definitions
            if isinstance(v.type, NonNullTypeNode) and v.default_value is None}


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_every_plugin_document_executes_on_the_fake(stash: FakeStash, media: dict[str, Path], name: str) -> None:
    variables = SAMPLE_VARIABLES.get(name, {})
    if not required_variables(queries.ALL[name]) <= variables.keys():
        pytest.skip(f"no sample variables for {name}; add them to SAMPLE_VARIABLES")
    stash.add_tag("seeded")
    stash.add_scene(media["video"])
    stash.add_gallery(zip_path=media["zip"])
    response = gql(stash, queries.ALL[name], variables)
    assert response.status_code == 200 and "errors" not in response.json(), response.text


# ---- media endpoints -------------------------------------------------------------------------

def test_stream_range_request_returns_206_with_exact_bytes(stash: FakeStash, media: dict[str, Path]) -> None:
    scene = stash.add_scene(media["video"])
    content = media["video"].read_bytes()
    response = get(stash, f"/scene/{scene}/stream", Range="bytes=100-199")
    assert response.status_code == 206
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    assert response.headers["Content-Length"] == "100" and response.content == content[100:200]
    tail = get(stash, f"/scene/{scene}/stream", Range="bytes=-10")
    assert tail.status_code == 206 and tail.content == content[-10:]
    assert get(stash, f"/scene/{scene}/stream", Range=f"bytes={len(content)}-").status_code == 416
    whole = get(stash, f"/scene/{scene}/stream")
    assert whole.status_code == 200 and whole.content == content
    assert stash.media_requests[f"/scene/{scene}/stream"] == 4


@needs_ffmpeg
def test_ffmpeg_seeks_in_the_stream_with_the_session_cookie(stash: FakeStash, media: dict[str, Path],
                                                            tmp_path: Path) -> None:
    scene = stash.add_scene(media["video"])
    assert stash.scene(scene)["file"]["duration"] == pytest.approx(5.0, abs=0.1)
    out = tmp_path / "frame.jpg"
    subprocess.run(["ffmpeg", "-v", "error", "-headers", f"Cookie: {stash.cookie_header}\r\n", "-ss", "2",
                    "-i", f"{stash.url}/scene/{scene}/stream", "-frames:v", "1", "-y", str(out)],
                   check=True, timeout=60)
    assert out.stat().st_size > 0
    assert stash.rejected_requests == 0


def test_zipped_image_is_served_from_inside_the_archive(stash: FakeStash, media: dict[str, Path]) -> None:
    image = stash.add_image("photos/a.jpg", zip_path=media["zip"], width=64, height=48)
    found = data(stash, queries.FIND_IMAGES, {"ids": [image]})["findImages"]["images"][0]
    file = found["visual_files"][0]
    assert file["__typename"] == "ImageFile" and file["zip_file"] == {"path": str(media["zip"])}
    assert file["path"] == f"{media['zip']}/photos/a.jpg"
    assert found["paths"]["image"] == f"{stash.url}/image/{image}/image"
    for kind in ("image", "thumbnail"):
        response = get(stash, f"/image/{image}/{kind}")
        assert response.status_code == 200 and response.content == media["jpeg"].read_bytes()
        assert response.headers["Content-Type"] == "image/jpeg"


def test_stopped_server_refuses_connections(media: dict[str, Path]) -> None:
    stash = FakeStash().start()
    session = requests.Session()
    session.post(f"{stash.url}/graphql", json={"query": queries.VERSION}, headers={"ApiKey": stash.api_key})
    stash.stop()
    with pytest.raises(requests.ConnectionError):
        session.post(f"{stash.url}/graphql", json={"query": queries.VERSION}, headers={"ApiKey": stash.api_key},
                     timeout=5)
