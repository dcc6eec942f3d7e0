"""Scale-out through LiteLLM's router: one model name, several inference servers behind it.

One proxy for the module (a start costs ~12 s) serves three model groups, each on its own
FakeModels so the tests cannot disturb each other's counters, cool-downs or rate windows:

* ``vision-test``: two deployments, the plain scale-out;
* ``vision-failover``: two deployments, one of which starts failing mid-run;
* ``vision-limited``: one deployment with a router-side ``rpm`` limit.

The router runs ``usage-based-routing-v2`` (the strategy that enforces ``rpm``/``tpm``) with
cool-downs on and ``num_retries: 0``, so a failing server's errors reach the plugin and what
is exercised is the router's failover (cool-down) together with the plugin's own retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import media
from tests.conftest import run_plugin
from tests.litellm_gateway import MODEL_NAME, LiteLLMProxy, configure_proxy, deployment, venv_or_skip
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

pytestmark = pytest.mark.litellm

LATENCY = 0.2  # seconds per inference call on every server: long enough that calls overlap
FAILOVER = "vision-failover"
LIMITED = "vision-limited"
RPM = 3  # LiteLLM lets rpm - 1 calls through per calendar minute, then answers 429
ROUTER = {
    "routing_strategy": "usage-based-routing-v2",
    "num_retries": 0,
    "disable_cooldowns": False,
    "allowed_fails": 1,
    "cooldown_time": 30,
}
COLOURS = {"red": "Red", "green": "Outdoors", "blue": "Water", "yellow": "Beach"}


class Servers:
    def __init__(self, proxy: LiteLLMProxy, nodes: list[FakeModel], failover: list[FakeModel], limited: FakeModel):
        self.proxy, self.nodes, self.failover, self.limited = proxy, nodes, failover, limited

    def reset(self) -> None:
        for model in (*self.nodes, *self.failover, self.limited):
            model.reset()
            model.fail_next = []


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    venv = venv_or_skip()
    models = [FakeModel(models=[MODEL_NAME], latency=LATENCY, retry_after=0.05).start() for _ in range(5)]
    nodes, failover, limited = models[:2], models[2:4], models[4]
    extra = [deployment(m, FAILOVER) for m in failover] + [deployment(limited, LIMITED, rpm=RPM)]
    try:
        with LiteLLMProxy(nodes, venv=venv, workdir=tmp_path_factory.mktemp("litellm-router"),
                          extra_deployments=extra, router_settings=ROUTER) as proxy:
            yield Servers(proxy, nodes, failover, limited)
    finally:
        for model in models:
            model.stop()


@pytest.fixture
def router(servers: Servers) -> Iterator[Servers]:
    servers.reset()
    yield servers
    servers.reset()


@pytest.fixture
def stash() -> Iterator[FakeStash]:
    with FakeStash() as server:
        yield server


def add_images(stash: FakeStash, folder: Path, n: int) -> dict[str, str]:
    """n small images cycling through four colours; image id -> the tag its colour yields."""
    expected = {}
    colours = list(COLOURS)
    for i in range(n):
        colour = colours[i % len(colours)]
        expected[stash.add_image(media.make_image(folder / f"{i:03d}-{colour}.jpg", colour))] = COLOURS[colour]
    return expected


def assert_all_tagged(stash: FakeStash, expected: dict[str, str]) -> None:
    wrong = {i: stash.tags_of_image(i) for i, tag in expected.items() if stash.tags_of_image(i) != {tag, "AI_Tagged"}}
    assert not wrong, wrong


def statuses(model: FakeModel) -> list[int]:
    return [r["status"] for r in model.requests]


def test_one_model_name_spreads_work_over_both_servers(router, stash, tmp_path, red_video):
    scene = stash.add_scene(red_video)
    expected = add_images(stash, tmp_path, 59)
    configure_proxy(stash, router.proxy, concurrency=8)

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.error is None, run.stderr
    assert run.output["tagged"] == 60 and run.output["errored"] == 0
    assert stash.tags_of_scene(scene) == {"Red", "AI_Tagged"}
    assert_all_tagged(stash, expected)
    calls = [m.completion_count for m in router.nodes]
    assert sum(calls) == 60, calls
    assert min(calls) >= 60 / 3, f"one server got too little of the work: {calls}"
    assert not [line for line in run.log_lines("w") if "retry" in line]


def test_server_failing_mid_run_is_cooled_down_and_items_retried_on_the_other(router, stash, tmp_path):
    failing, healthy = router.failover
    expected = add_images(stash, tmp_path, 24)
    configure_proxy(stash, router.proxy, model=FAILOVER, concurrency=8)

    def break_after_two_answers() -> None:
        deadline = time.monotonic() + 60
        while statuses(failing).count(200) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        failing.fail_next = [500] * 1000

    breaker = threading.Thread(target=break_after_two_answers, daemon=True)
    breaker.start()
    run = run_plugin(stash, {"mode": "tag_untagged"})
    breaker.join()

    assert run.error is None, run.stderr
    assert run.output["tagged"] == 24 and run.output["errored"] == 0
    assert_all_tagged(stash, expected)
    failed = statuses(failing).count(500)
    assert statuses(failing).count(200) >= 2 and failed >= 1, statuses(failing)
    # The router stopped sending to it once it was cooled down: the healthy server did the rest.
    assert statuses(failing).count(200) + statuses(healthy).count(200) == 24
    # Without the cool-down about half of all calls and retries would go on landing there.
    assert failed < 12, f"the router kept sending to a failing server: {statuses(failing)}"
    retries = [line for line in run.log_lines("w") if "retry" in line]
    assert len(retries) == failed, retries
    assert all(line.startswith("gateway: HTTP 500; retry ") for line in retries), retries


def test_router_rate_limit_is_waited_out_without_failing_items(router, stash, tmp_path):
    """``rpm`` on the deployment: once the minute's calls are spent LiteLLM answers 429 itself
    (the upstream never sees those calls) with a Retry-After of up to 60 s; the plugin waits it
    out instead of marking items AI_Errored. This test therefore takes about a minute."""
    expected = add_images(stash, tmp_path, 4)
    configure_proxy(stash, router.proxy, model=LIMITED, concurrency=8)
    second = time.gmtime().tm_sec
    if second >= 55:  # LiteLLM counts rpm per calendar minute: keep the first calls in one minute
        time.sleep(61 - second)

    started = time.monotonic()
    run = run_plugin(stash, {"mode": "tag_untagged"}, timeout=240)
    elapsed = time.monotonic() - started

    assert run.error is None, run.stderr
    assert run.output["tagged"] == 4 and run.output["errored"] == 0
    assert_all_tagged(stash, expected)
    assert statuses(router.limited) == [200] * 4  # the 429s came from the router, not the server
    waits = [line for line in run.log_lines("w") if line.startswith("gateway: HTTP 429")]
    assert waits, run.stderr
    assert all("as it asked" in line for line in waits), waits
    shortest = min(float(line.rsplit(" in ", 1)[1].split(" s")[0]) for line in waits)
    assert elapsed >= shortest
