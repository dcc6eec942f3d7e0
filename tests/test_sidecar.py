"""The local-model sidecar (``python3 -m ai_tagger.serve``): the built-in detector over ``labels``.

A real server process on 127.0.0.1 with the real model, fed real photographs (scikit-image's
samples), by the plugin run as Stash runs it and by plain HTTP clients.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ai_tagger import package
from ai_tagger.analyze.local.detector import Detector, aggregate
from ai_tagger.serve import MAX_BODY, MAX_IMAGES, Gate
from tests import imports, media
from tests.conftest import PLUGIN_ID, REPO, run_plugin
from tests.servers.stash_server import FakeStash
from tests.sidecar import Sidecar, sidecar
from tests.test_local_model import library  # noqa: F401 - the same photographs and astronaut video

KEY = "sidecar-test-key"
EXPECTED = {"astronaut": {"Female Face"}, "camera": {"Male Face"}, "chelsea": set(), "coffee": set()}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Sidecar]:
    """One sidecar for the module: two workers, a key from the environment (as in Docker)."""
    log = tmp_path_factory.mktemp("sidecar") / "serve.log"
    with sidecar(log, "--workers", "2", env={"AI_TAGGER_SERVE_KEY": KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> dict[str, bytes]:
    """Each photograph as the JPEG bytes the plugin would send."""
    folder = tmp_path_factory.mktemp("jpegs")
    return {name: media.make_photo(folder / f"{name}.jpg", name).read_bytes() for name in media.PHOTOS}


def labels_settings(server: Sidecar, **extra: Any) -> dict[str, Any]:
    return {"provider": "labels", "gatewayUrl": server.url, "apiKey": KEY, "model": "nudenet-320n",
            "minConfidence": 50, **extra}  # fmt: skip


def post_labels(url: str, images: list[bytes], key: str | None = KEY, **extra: Any) -> requests.Response:
    body = {"model": "nudenet-320n", "images": [base64.b64encode(i).decode() for i in images], **extra}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{url}/labels", json=body, headers=headers, timeout=60)


def _library_stash(stash: FakeStash, library: dict[str, Path]) -> None:  # noqa: F811
    for name in media.PHOTOS:
        stash.add_image(library[name])
    stash.add_scene(library["video"])


def _rows(run: Any) -> dict[tuple[str, str], Any]:
    """Each item's status, tags and candidates (name, confidence, score, frames) by kind and id."""
    rows = {}
    for item in run.output["items"]:
        candidates = [(c["name"], c["confidence"], c["score"], c["frames"]) for c in item["candidates"]]
        rows[item["kind"], item["id"]] = (item["status"], sorted(item["tags"]), candidates)
    return rows


# --- the same answers as provider local -----------------------------------------------------


def test_sidecar_answers_exactly_what_provider_local_computes(served, jpegs):
    detector = Detector.load()
    pictures = [jpegs["astronaut"], jpegs["chelsea"], jpegs["camera"], jpegs["astronaut"]]
    expected = [{"name": x.name, "score": x.score, "frames": list(x.frames), "opt_in": x.opt_in}
                for x in aggregate(detector.detect(pictures))]  # fmt: skip

    answer = post_labels(served.url, pictures)

    assert answer.status_code == 200, answer.text
    assert answer.json()["labels"] == expected
    assert [(x["name"], x["frames"]) for x in expected] == [("Female Face", [1, 4]), ("Male Face", [3])]


def test_tag_untagged_through_the_sidecar_matches_provider_local(served, library):  # noqa: F811
    runs = {}
    for provider, settings in (("local", {"provider": "local", "minConfidence": 50}),
                               ("labels", labels_settings(served))):  # fmt: skip
        with FakeStash() as stash:
            stash.set_plugin_settings(PLUGIN_ID, settings)
            _library_stash(stash, library)
            run = run_plugin(stash, {"mode": "tag_untagged"}, timeout=300)
            assert run.returncode == 0 and run.error is None, run.stderr
            runs[provider] = run
            tags = {name: stash.tags_of_image(str(i)) for i, name in enumerate(media.PHOTOS, 1)}
            assert tags == {name: found | {"AI_Tagged"} for name, found in EXPECTED.items()}, provider

    assert _rows(runs["labels"]) == _rows(runs["local"])
    [scene] = [row for key, row in _rows(runs["labels"]).items() if key[0] == "scene"]
    assert scene[1] == ["Female Face"] and scene[2][0][3] == [1, 2, 3, 4, 5, 6]


# --- keys, bad requests, limits -------------------------------------------------------------


def test_wrong_key_ends_the_run_at_preflight_with_one_error(served, library):  # noqa: F811
    with FakeStash() as stash:
        stash.set_plugin_settings(PLUGIN_ID, labels_settings(served, apiKey="not-the-key"))
        _library_stash(stash, library)
        stash.reset_log()

        run = run_plugin(stash, {"mode": "tag_untagged"})

        assert run.returncode == 1
        assert "refused the API key" in run.error and "apiKey" in run.error
        assert "not-the-key" not in run.stderr + run.stdout and KEY not in run.stderr + run.stdout
        assert stash.mutation_count == 0
        assert len(run.log_lines("e")) == 1


@pytest.mark.parametrize("header", [f"Bearer {KEY}", KEY, f"Token {KEY}"])
def test_key_is_accepted_under_any_auth_scheme_or_raw(served, header):
    answer = requests.get(f"{served.url}/models", headers={"Authorization": header}, timeout=10)

    assert answer.status_code == 200
    assert answer.json() == {"object": "list", "data": [{"id": "nudenet-320n", "object": "model",
                                                        "owned_by": "ai-tagger"}]}  # fmt: skip


def test_health_needs_no_key_and_models_does(served):
    assert requests.get(f"{served.url}/health", timeout=10).json()["status"] == "ok"
    assert requests.get(f"{served.url}/models", timeout=10).status_code == 401
    assert post_labels(served.url, [b"x"], key=None).status_code == 401


def _raw_post(url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{url}/labels", data=body, timeout=60,
                         headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
                                  **(headers or {})})  # fmt: skip


def test_bad_bodies_and_oversize_requests_get_a_4xx_naming_the_limit(served, jpegs):
    photo = base64.b64encode(jpegs["camera"]).decode()
    cases = {
        "not JSON": (_raw_post(served.url, b"{not json"), 400, "not JSON"),
        "wrong shape": (_raw_post(served.url, b'{"pictures": []}'), 400, '"images"'),
        "not a list of strings": (_raw_post(served.url, b'{"images": [1]}'), 400, "image 1 is not a base64 string"),
        "bad base64": (_raw_post(served.url, b'{"images": ["%%%"]}'), 400, "image 1 is not valid base64"),
        "no images": (_raw_post(served.url, b'{"images": []}'), 400, "empty"),
        "unknown model": (post_labels(served.url, [jpegs["camera"]], model="gpt-4o"), 404, "nudenet-320n"),
        "does not decode": (post_labels(served.url, [jpegs["camera"], b"GIF89a broken"]), 422, "picture 2"),
        "too many images": (_raw_post(served.url, json.dumps({"images": [photo] * (MAX_IMAGES + 1)}).encode()),
                            413, f"{MAX_IMAGES} images"),  # fmt: skip
        "body too large": (_raw_post(served.url, b" " * (MAX_BODY + 1)), 413, f"{MAX_BODY} bytes (32 MB)"),
        "no such endpoint": (requests.post(f"{served.url}/v1/chat/completions", json={}, timeout=10), 404, "/labels"),
    }
    for what, (answer, status, named) in cases.items():
        assert answer.status_code == status, (what, answer.text)
        assert named in answer.json()["error"]["message"], (what, answer.text)

    assert post_labels(served.url, [jpegs["camera"]]).json()["labels"][0]["name"] == "Male Face"  # still serving
    log = served.log()
    assert "status=413" in log and "status=422" in log
    assert KEY not in log and photo[:40] not in log  # neither keys nor image data in the log


def test_one_log_line_per_request_with_client_images_status_and_ms(tmp_path, jpegs):
    with sidecar(tmp_path / "serve.log", "--workers", "1") as server:
        post_labels(server.url, [jpegs["camera"]] * 3, key=None)
        requests.get(f"{server.url}/health", timeout=10)
    # Read once the server has stopped: a line is written after its answer is sent, so reading
    # right after the last answer could miss it.
    lines = server.log().splitlines()

    assert "nudenet-320n on http://127.0.0.1:" in lines[0] and "API key not required" in lines[0]
    assert len(lines) == 3
    assert " 127.0.0.1 POST /labels images=3 status=200 ms=" in lines[1]
    assert " 127.0.0.1 GET /health images=0 status=200 ms=" in lines[2]


# --- saturation and load --------------------------------------------------------------------


def test_saturated_server_answers_503_and_the_plugin_retries_finish_the_run(tmp_path, library, jpegs):  # noqa: F811
    with sidecar(tmp_path / "serve.log", "--workers", "1", "--api-key", KEY) as server:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: post_labels(server.url, [jpegs["astronaut"]] * 24), range(8)))
        busy = [a for a in answers if a.status_code == 503]
        assert busy and all(a.status_code in (200, 503) for a in answers)
        assert all(int(a.headers["Retry-After"]) >= 1 and "busy" in a.json()["error"]["message"] for a in busy)

        with FakeStash() as stash:
            stash.set_plugin_settings(PLUGIN_ID, labels_settings(server, concurrency=8))
            for name in media.PHOTOS * 2:
                stash.add_image(library[name])
            stash.add_scene(library["video"])
            before = server.log().count("status=503")

            run = run_plugin(stash, {"mode": "tag_untagged"}, timeout=300)

            assert run.returncode == 0 and run.error is None, run.stderr
            assert server.log().count("status=503") > before  # the plugin met a full queue
            assert run.output["errored"] == 0
            statuses = {stash.tags_of_image(str(i)) & {"AI_Tagged", "AI_Errored"} == {"AI_Tagged"} for i in range(1, 9)}
            assert statuses == {True}
            assert stash.tags_of_scene("1") == {"Female Face", "AI_Tagged"}


def test_a_crowd_refused_together_is_told_to_come_back_at_different_times():
    gate = Gate(workers=1)
    assert gate.enter() and gate.enter() and not gate.enter()  # one runs, one waits, the third is refused
    gate._seconds = 0.4

    waits = [gate.retry_after() for _ in range(6)]

    assert waits == sorted(waits) and waits[0] == 1 and waits[-1] > 2, waits
    gate.leave(0.4)
    assert gate.enter()


def test_load_four_clients_fifty_requests_each_against_two_workers(tmp_path, jpegs):
    pictures = [jpegs["astronaut"], jpegs["camera"]]
    body = {"model": "nudenet-320n", "images": [base64.b64encode(p).decode() for p in pictures]}
    with sidecar(tmp_path / "serve.log", "--workers", "2") as server:

        def client(requests_each: int) -> list[tuple[int, Any]]:
            with requests.Session() as session:
                answers = (session.post(f"{server.url}/labels", json=body, timeout=120) for _ in range(requests_each))
                return [(answer.status_code, answer.json()) for answer in answers]

        def four_clients(requests_each: int) -> list[tuple[int, Any]]:
            with ThreadPoolExecutor(4) as pool:
                return [answer for batch in pool.map(client, [requests_each] * 4) for answer in batch]

        warm = four_clients(2)  # both inference arenas and the connection threads exist from here on
        rss_start = server.rss_kb()
        answers = four_clients(50)
        rss_end, rss_peak = server.rss_kb(), server.rss_kb("VmHWM")
        alive = server.process.poll() is None

    print(f"\nsidecar RSS: {rss_start / 1024:.0f} MB after warm-up, {rss_end / 1024:.0f} MB after 4 x 50 requests, "
          f"peak {rss_peak / 1024:.0f} MB")  # fmt: skip
    assert alive and len(answers) == 200
    assert {status for status, _ in warm + answers} == {200}
    assert all(answer == warm[0][1] for _, answer in answers)
    assert [x["name"] for x in warm[0][1]["labels"]] == ["Female Face", "Male Face"]
    assert rss_end - rss_start < 32 * 1024, "memory grows with requests served"


# --- how it starts, what it imports, how it ships -------------------------------------------


def test_ai_tagger_serve_dispatches_to_the_server_and_modes_still_run(tmp_path):
    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from ai_tagger.entry import cli; sys.argv[0] = 'ai-tagger'; sys.exit(cli())"
        return subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip

    served_help = cli("serve", "--help")
    plugin_help = cli("--help")

    assert served_help.returncode == 0
    for option in ("--host", "--port", "--api-key", "--workers", "AI_TAGGER_SERVE_KEY"):
        assert option in served_help.stdout
    assert "--mode" in plugin_help.stdout and "--workers" not in plugin_help.stdout


def test_serve_runs_without_the_plugins_own_dependencies(tmp_path, monkeypatch, jpegs):
    """Only requirements-local.txt in the image: requests, pydantic, yaml and Pillow may be absent."""
    plugin_only = ["requests", "pydantic", "yaml", "json_repair", "PIL", "urllib3"]
    imports.without(monkeypatch, plugin_only)
    out = imports.record(monkeypatch, tmp_path / "modules.txt")
    with sidecar(tmp_path / "serve.log", "--workers", "1") as server:
        answer = post_labels(server.url, [jpegs["camera"]], key=None)

    assert answer.status_code == 200 and answer.json()["labels"][0]["name"] == "Male Face"
    assert imports.top_level(out) & set(plugin_only) == set()


def test_serve_ends_with_the_install_command_when_the_model_is_missing(tmp_path, monkeypatch):
    imports.without(monkeypatch, ["nudenet", "onnxruntime"])
    done = subprocess.run([sys.executable, "-m", "ai_tagger.serve", "--port", "0"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)  # fmt: skip

    assert done.returncode == 2
    assert "requirements-local.txt" in done.stderr and "Traceback" not in done.stderr


def test_plugin_zip_ships_the_server_but_not_the_docker_files():
    files = package.plugin_files()

    assert "ai_tagger/serve.py" in files
    assert not {"Dockerfile", "docker-compose.sidecar.yml", ".dockerignore"} & set(files)


def test_dockerfile_and_compose_run_the_sidecar_next_to_stash():
    """No Docker daemon here: the files are checked for what the README promises."""
    dockerfile = (REPO / "Dockerfile").read_text()
    compose = yaml.safe_load((REPO / "docker-compose.sidecar.yml").read_text())

    assert "\nFROM python:3.12-slim\n" in dockerfile
    assert "requirements-local.txt" in dockerfile and "Detector.load()" in dockerfile
    assert "EXPOSE 8765" in dockerfile and "\nUSER " in dockerfile
    assert 'CMD ["python", "-m", "ai_tagger.serve", "--host", "0.0.0.0"' in dockerfile
    services = compose["services"]
    assert services["stash"]["image"].startswith("stashapp/stash")
    sidecar_service = services["ai-tagger-local"]
    assert sidecar_service["build"]["dockerfile"] == "Dockerfile"
    assert "AI_TAGGER_SERVE_KEY" in sidecar_service["environment"]
    readme = (REPO / "README.md").read_text()
    assert "## Local model with Stash in Docker" in readme
    assert "http://ai-tagger-local:8765" in readme and "nudenet-320n" in readme
