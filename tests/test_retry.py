"""The one retry policy (gateway and Stash): which waits it takes, and that it caps them.

A real server on loopback: ``responses`` replaces the transport, so it would not exercise urllib3.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ai_tagger.retry import PooledSessions, RetryPolicy, retry_after


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next (status, headers) of ``script``, then 200."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.seen = 0


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen += 1
        status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def server() -> Iterator[Scripted]:
    httpd = Scripted([])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def post(server: Scripted, waits: list[float], *, retries: int = 3, max_wait: float = 60) -> int:
    policy = RetryPolicy.create(
        retries=retries, statuses={429, 503}, backoff=0.5, raise_on_status=False, max_wait=max_wait, sleep=waits.append
    )
    session = PooledSessions(lambda: policy).get()
    return session.post(f"http://127.0.0.1:{server.server_address[1]}/x", json={}, timeout=5).status_code


def test_litellm_retry_after_header_is_the_wait(server):
    # LiteLLM forwards an upstream's Retry-After only as llm_provider-retry-after.
    server.script = [(429, {"llm_provider-retry-after": "1.5"})]
    waits: list[float] = []
    assert post(server, waits) == 200
    assert waits == [1.5] and server.seen == 2


def test_a_long_wait_asked_for_is_capped(server):
    server.script = [(503, {"Retry-After": "3600"})]
    waits: list[float] = []
    assert post(server, waits, max_wait=2) == 200
    assert waits == [2]


def test_without_a_header_backoff_grows(server):
    server.script = [(503, {}), (503, {}), (503, {})]
    waits: list[float] = []
    assert post(server, waits) == 200
    # 0.5 * 2**n, times a jitter of 0.5..1.5
    assert [0.25 <= waits[0] <= 0.75, 0.5 <= waits[1] <= 1.5, 1 <= waits[2] <= 3] == [True, True, True]


def test_the_last_response_comes_back_when_retries_run_out(server):
    server.script = [(503, {"Retry-After": "0"})] * 5
    assert post(server, [], retries=2) == 503
    assert server.seen == 3


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2"}, 2.0),  # any case
        ({"llm_provider-retry-after": "1.5"}, 1.5),  # fractions, as LiteLLM sends them
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_dates_and_litellm(headers, seconds):
    assert retry_after(headers) == seconds
