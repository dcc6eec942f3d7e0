"""The pipeline, Tagger, TagBook and Cache, run in-process through ``entry.main`` with a fake provider.

Fast (no interpreter start, no ffmpeg: images only) and precise: the provider is a test double
registered under its own name, like a third-party provider would be, with a ``history`` of the
requests it saw. Stash is the bundled server on loopback.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ai_tagger.analyze.gateway.base import Candidate, GatewayConfig, TagAnswer, TagRequest, Usage, register
from ai_tagger.entry import main
from ai_tagger.errors import GatewayError, GatewayFatal
from tests import media
from tests.conftest import PLUGIN_ID
from tests.servers.stash_server import FakeStash


@register
class FakeProvider:
    """Answers every picture with ``answers[colour of the picture]``; ``failures`` raise instead."""

    name: ClassVar[str] = "fake-in-process"
    answers: ClassVar[dict[str, list[tuple[str, float]]]] = {}
    failures: ClassVar[dict[str, Exception]] = {}
    history: ClassVar[list[TagRequest]] = []
    configs: ClassVar[list[GatewayConfig]] = []
    lock = threading.Lock()

    def __init__(self, config: GatewayConfig) -> None:
        self.configs.append(config)

    def preflight(self) -> None:
        failure = self.failures.get("preflight")
        if failure:
            raise failure

    def describe(self, request: TagRequest) -> TagAnswer:
        colour = media.mean_colour_name(request.pictures[0])
        with self.lock:
            self.history.append(request)
        if colour in self.failures:
            raise self.failures[colour]
        tags = self.answers.get(colour, [])
        return TagAnswer([Candidate(name=n, confidence=c) for n, c in tags], Usage(100, 10))


@pytest.fixture(autouse=True)
def fresh_provider() -> None:
    FakeProvider.answers = {"red": [("Red", 0.9)], "blue": [("Water", 0.8), ("Sky", 0.3)], "green": [("Grass", 0.7)]}
    FakeProvider.failures = {}
    FakeProvider.history = []
    FakeProvider.configs = []


@pytest.fixture
def stash() -> Any:
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, settings())
        yield server


def settings(**extra: Any) -> dict[str, Any]:
    return {"provider": FakeProvider.name, "gatewayUrl": "http://unused.test/v1", "model": "m", **extra}


def images(stash: FakeStash, folder: Path, *colours: str) -> list[str]:
    return [
        stash.add_image(media.make_image(folder / f"{i}-{colour}.png", colour, size=(32, 32)), width=32, height=32)
        for i, colour in enumerate(colours)
    ]


def run(stash: FakeStash, data: Path, mode: str = "tag_untagged", **args: Any) -> tuple[Any, str | None, str]:
    stdin = io.StringIO(json.dumps({"server_connection": stash.server_connection(),
                                    "args": {"mode": mode, "dataDir": str(data), **args}}))
    stdout, stderr = io.StringIO(), io.StringIO()
    main(stdin, stdout, stderr)
    result = json.loads(stdout.getvalue())
    return result["output"], result["error"], stderr.getvalue()


def writes(stash: FakeStash) -> list[str]:
    with stash.lock:
        return [op for op, _ in stash.operations if op in ("BulkImageUpdate", "BulkSceneUpdate")]


def test_each_item_gets_its_tags_and_status_in_one_write(stash, tmp_path):
    red, blue = images(stash, tmp_path, "red", "blue")

    output, error, _ = run(stash, tmp_path / "data")

    assert error is None
    assert (output["tagged"], output["errored"], output["gateway_calls"]) == (2, 0, 2)
    assert stash.tags_of_image(red) == {"Red", "AI_Tagged"}
    assert stash.tags_of_image(blue) == {"Water", "AI_Tagged"}  # Sky is below minConfidence
    assert writes(stash) == ["BulkImageUpdate", "BulkImageUpdate"]
    assert output["tokens"] == {"prompt": 200, "completion": 20, "total": 220}


def test_provider_gets_a_narrow_config_not_the_whole_settings(stash, tmp_path):
    images(stash, tmp_path, "red")
    stash.set_plugin_settings(PLUGIN_ID, settings(apiKey="sk-in-process", concurrency=3, requestTimeout=9))

    run(stash, tmp_path / "data")

    [config] = FakeProvider.configs
    assert (config.url, config.model, config.api_key, config.concurrency, config.timeout) == (
        "http://unused.test/v1", "m", "sk-in-process", 3, 9
    )
    assert config.auth_headers() == {"Authorization": "Bearer sk-in-process"}
    assert "sk-in-process" not in repr(config)


def test_a_tag_many_items_want_is_created_once(stash, tmp_path):
    images(stash, tmp_path, "red", "red", "red", "red")

    output, error, _ = run(stash, tmp_path / "data")

    assert error is None and output["tagged"] == 4
    assert output["created_tags"].count("Red") == 1
    with stash.lock:
        created = [variables["input"]["name"] for op, variables in stash.operations if op == "TagCreate"]
    assert created.count("Red") == 1


def test_a_second_look_is_answered_from_the_cache(stash, tmp_path):
    images(stash, tmp_path, "red", "blue")
    run(stash, tmp_path / "data", "preview")
    assert len(FakeProvider.history) == 2

    output, error, _ = run(stash, tmp_path / "data")

    assert error is None
    assert (output["tagged"], output["cache_hits"], output["gateway_calls"]) == (2, 2, 0)
    assert len(FakeProvider.history) == 2


def test_reapply_redecides_from_the_cache_without_the_provider(stash, tmp_path):
    [blue] = images(stash, tmp_path, "blue")
    run(stash, tmp_path / "data")
    stash.set_plugin_settings(PLUGIN_ID, settings(minConfidence=20))

    output, error, _ = run(stash, tmp_path / "data", "reapply")

    assert error is None and output["processed"] == 1
    assert stash.tags_of_image(blue) == {"Water", "Sky", "AI_Tagged"}
    assert len(FakeProvider.history) == 1


def test_an_item_error_marks_only_that_item(stash, tmp_path):
    red, green = images(stash, tmp_path, "red", "green")
    FakeProvider.failures = {"green": GatewayError("model overloaded")}

    output, error, log = run(stash, tmp_path / "data")

    assert error is None
    assert (output["tagged"], output["errored"]) == (1, 1)
    assert stash.tags_of_image(red) == {"Red", "AI_Tagged"}
    assert stash.tags_of_image(green) == {"AI_Errored"}
    assert "model overloaded" in log


def test_a_run_error_during_the_run_stops_it_and_keeps_what_is_done(stash, tmp_path):
    images(stash, tmp_path, "green")
    FakeProvider.failures = {"green": GatewayFatal("the gateway refused the key")}

    output, error, _ = run(stash, tmp_path / "data")

    assert error == "the gateway refused the key"
    assert output["stopped"] == error and output["errored"] == 0
    assert writes(stash) == []


def test_a_run_error_before_the_run_is_the_answer(stash, tmp_path):
    images(stash, tmp_path, "red")
    FakeProvider.failures = {"preflight": GatewayFatal("the gateway is unreachable")}

    output, error, _ = run(stash, tmp_path / "data")

    assert (output, error) == (None, "the gateway is unreachable")
    assert FakeProvider.history == []


def test_token_budget_ends_the_run_cleanly(stash, tmp_path):
    images(stash, tmp_path, *["red"] * 6)
    stash.set_plugin_settings(PLUGIN_ID, settings(maxTokensPerRun=100, concurrency=1))

    output, error, log = run(stash, tmp_path / "data", "tag_images")

    assert error is None
    assert output["stopped"].startswith("token budget reached")
    assert output["processed"] == 1  # the first answer (110 tokens) spends the budget
    assert "\x01w\x02token budget reached" in log


def test_a_bad_limit_is_a_clear_error_not_a_crash(stash, tmp_path):
    output, error, _ = run(stash, tmp_path / "data", limit="ten")

    assert output is None and error is not None and error.startswith("limit must be a whole number")
