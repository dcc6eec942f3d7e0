"""A run that stops on configuration stops before any item and marks nothing (issue 24, rough edges):
a gateway URL without ``/v1``, ffmpeg missing or at a wrong path, a gateway URL that is Stash itself or
a web page. Each through the plugin as Stash runs it, against the bundled Stash and model servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import media
from tests.conftest import configure, run_plugin


def _library(stash, tmp_path) -> None:
    stash.add_scene(media.make_corrupt(tmp_path / "broken.mp4"))  # an item error, were the run to start
    stash.add_scene(media.make_video(tmp_path / "red.mp4", ["red"], seconds_per_colour=2))
    stash.add_image(media.make_image(tmp_path / "blue.jpg", "blue"))


def _nothing_marked(stash) -> None:
    for kind, count in (("scene", 2), ("image", 1)):
        for item in range(1, count + 1):
            tags = stash.tags_of_scene(item) if kind == "scene" else stash.tags_of_image(item)
            assert not tags, (kind, item, tags)


def test_a_gateway_url_without_v1_stops_before_any_item(stash, model, tmp_path):
    _library(stash, tmp_path)
    configure(stash, model, gatewayUrl=model.root_url, concurrency=1)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1 and "ends in /v1" in run.error, run.error
    assert model.completion_count == 0 or all(r["n_images"] == 0 for r in model.requests)
    _nothing_marked(stash)
    assert len(run.log_lines("e")) == 1


def test_a_wrong_ffmpeg_path_stops_the_run_naming_the_setting_and_marks_no_scene(stash, model, tmp_path):
    _library(stash, tmp_path)
    stash.set_ffmpeg_path(tmp_path / "no" / "ffmpeg")

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "ffmpeg cannot run at" in run.error and "Settings > System > Application Paths" in run.error
    assert stash.tags_of_scene(1) == set() and stash.tags_of_scene(2) == set()


def test_an_ffmpeg_that_is_not_executable_is_the_same_configuration_error(stash, model, tmp_path):
    _library(stash, tmp_path)
    fake = tmp_path / "ffmpeg"
    fake.write_text("not a program")
    stash.set_ffmpeg_path(fake)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1 and "ffmpeg cannot run at" in run.error and "not executable" in run.error
    assert stash.tags_of_scene(1) == set() and stash.tags_of_scene(2) == set()


def test_a_gateway_url_pointing_at_stash_says_so_instead_of_blaming_the_key(stash, model, tmp_path):
    _library(stash, tmp_path)
    connection = stash.server_connection()
    configure(stash, model, gatewayUrl=f"http://localhost:{connection['Port']}/v1")

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "is Stash's own address" in run.error and "API key" not in run.error
    _nothing_marked(stash)


class _WebPage(BaseHTTPRequestHandler):
    """A web server that is no AI gateway: every path answers an HTML page, 401 for /models."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = b"<!DOCTYPE html><html><head><title>Login</title></head><body>Sign in</body></html>"
        self.send_response(401 if "models" in self.path else 200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture
def web_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_a_gateway_url_pointing_at_a_web_page_says_it_is_not_an_openai_server(stash, model, tmp_path, web_page):
    _library(stash, tmp_path)
    configure(stash, model, gatewayUrl=web_page)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert "not an OpenAI-compatible gateway" in run.error and "a web page" in run.error
    _nothing_marked(stash)
