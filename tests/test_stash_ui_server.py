"""The server behind the browser tests answers like Stash: its routes, and ``plugins`` built from
our manifest under Stash's real schema. Without a browser, so a routing mistake shows up here
first and fast (the browser tests would only time out on it)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers.stash_ui import PLUGIN_ID, StashWithUI, load_manifest, shared_dir, ui_build, unpack_ui

pytestmark = pytest.mark.skipif(ui_build() is None, reason="Stash's UI build (../shared/stash-ui) is not available")

PLUGINS = """query Plugins { plugins { id name enabled requires tasks { name description }
  hooks { name description hooks } settings { name display_name description type } paths { javascript css } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StashWithUI]:
    with StashWithUI(ui_dir=unpack_ui(tmp_path_factory.mktemp("stash-ui"))) as started:
        yield started


def get(server: StashWithUI, path: str) -> requests.Response:
    return requests.get(server.url + path, timeout=30, cookies={"session": server.session_cookie["Value"]})


def test_the_fixture_is_read_from_shared_and_never_copied_into_the_repository(server):
    assert shared_dir() is not None and server.ui_dir is not None
    assert not server.ui_dir.resolve().is_relative_to(Path(__file__).resolve().parents[1])


def test_routes_are_stashs_plugin_assets_then_files_then_the_single_page_app(server):
    script = get(server, f"/plugin/{PLUGIN_ID}/javascript")
    ui = load_manifest()["ui"]
    assert script.status_code == 200 and script.headers["Content-Type"] == "text/javascript"
    assert script.content == b"\n".join(Path(__file__).resolve().parents[1].joinpath(f).read_bytes()
                                        for f in ui["javascript"])
    assert get(server, f"/plugin/{PLUGIN_ID}/css").status_code == 200
    for missing in (f"/plugin/{PLUGIN_ID}/review", f"/plugin/{PLUGIN_ID}/assets/x.png", "/plugin/other/javascript"):
        assert get(server, missing).status_code == 404, missing

    index = get(server, "/plugins/ai-tagger")
    assert index.status_code == 200 and '<div id="root">' in index.text
    assert get(server, "/scenes/1").text == index.text

    asset = next(p for p in sorted((server.ui_dir or Path()).glob("assets/*.js.gz")))
    served = requests.get(f"{server.url}/assets/{asset.name[:-3]}", timeout=30, stream=True)
    assert served.headers["Content-Encoding"] == "gzip" and served.headers["Content-Type"] == "text/javascript"
    assert served.raw.read() == asset.read_bytes() and gzip.decompress(asset.read_bytes())
    assert get(server, "/customlocales").json() == {} and get(server, "/css").text == ""


def test_plugins_answers_from_the_manifest_like_stash(server):
    manifest = load_manifest()
    [plugin] = server.execute(PLUGINS)["data"]["plugins"]

    assert plugin["id"] == PLUGIN_ID and plugin["name"] == manifest["name"] and plugin["enabled"]
    assert [t["name"] for t in plugin["tasks"]] == [t["name"] for t in manifest["tasks"]]
    assert plugin["hooks"][0]["hooks"] == manifest["hooks"][0]["triggeredBy"]
    assert {s["name"]: (s["display_name"], s["description"], s["type"]) for s in plugin["settings"]} == {
        k: (s["displayName"], s["description"], s["type"]) for k, s in manifest["settings"].items()}
    assert plugin["paths"] == {"javascript": [f"{server.url}/plugin/{PLUGIN_ID}/javascript"],
                               "css": [f"{server.url}/plugin/{PLUGIN_ID}/css"]}


def test_fields_without_data_get_typed_defaults_and_status_is_ok(server):
    answer = server.execute("{ systemStatus { status } configuration { general { stashes { path } "
                            "maxSessionAge } interface { menuItems } ui } findPerformers { count } }")
    assert "errors" not in answer, answer
    data = answer["data"]
    assert data["systemStatus"]["status"] == "OK"
    assert data["configuration"]["general"] == {"stashes": [], "maxSessionAge": 0}
    assert data["configuration"]["ui"]["lastNoteSeen"], "no release-notes dialog over the page"
    assert data["findPerformers"] == {"count": 0}
