"""The sidecar (``python3 -m ai_tagger.serve``) against hostile clients (issue 27): decompression
bombs are refused before decoding, slow clients hold no admission slot and time out in seconds,
only the documented Authorization forms carry the key, and it will not listen beyond loopback
without a key. A real server process with the real model on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import pytest
import requests

from ai_tagger.media import pixels
from ai_tagger.serve import authorized, loopback
from tests import media
from tests.conftest import REPO
from tests.sidecar import Sidecar, sidecar

KEY = "hostile-test-key"


def bomb_png(side: int = 16_000) -> bytes:
    """A valid 1-bit greyscale PNG of side x side pixels, all black: ~30 KB that decodes to ~768 MB."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Iterator[Sidecar]:
    """One inference slot, a key, and a one-second request timeout."""
    log = tmp_path_factory.mktemp("hostile") / "serve.log"
    with sidecar(log, "--workers", "1", "--request-timeout", "1", env={"AI_TAGGER_SERVE_KEY": KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> bytes:
    return media.make_photo(tmp_path_factory.mktemp("photo") / "camera.jpg", "camera").read_bytes()


def post(url: str, images: list[bytes], **headers: str) -> requests.Response:
    body = {"model": "nudenet-320n", "images": [base64.b64encode(i).decode() for i in images]}
    return requests.post(f"{url}/labels", json=body, headers={"Authorization": f"Bearer {KEY}", **headers},
                         timeout=60)  # fmt: skip


def test_a_decompression_bomb_is_refused_before_decoding_with_413(one_worker, photo):
    bomb = bomb_png()
    assert len(bomb) < 100_000 and pixels.declared_size(bomb) == (16_000, 16_000)

    answer = post(one_worker.url, [photo, bomb])

    assert answer.status_code == 413, answer.text
    assert "picture 2 is 16000x16000 pixels" in answer.json()["error"]["message"]
    assert one_worker.rss_kb("VmHWM") < 700 * 1024  # decoded, the bomb alone would take 768 MB
    assert post(one_worker.url, [photo]).status_code == 200


def _slow_client(url: str, declared: int = 10_000) -> socket.socket:
    """Headers and the first bytes of a body, then nothing (slowloris)."""
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=30)
    client.sendall(
        f"POST /labels HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n{{\"images\": [".encode()
    )
    return client


def _answer(client: socket.socket) -> bytes:
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def test_slow_bodies_hold_no_admission_slot_and_time_out_with_408(one_worker, photo):
    slow = [_slow_client(one_worker.url) for _ in range(3)]  # more than the two slots of --workers 1
    time.sleep(0.3)

    answer = post(one_worker.url, [photo])  # the real request is served, not refused as busy

    assert answer.status_code == 200, answer.text
    started = time.monotonic()
    replies = [_answer(client) for client in slow]
    assert time.monotonic() - started < 10
    assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies), replies
    assert b"did not arrive within 1 s" in replies[0]


def test_headers_trickled_byte_by_byte_are_cut_off(one_worker):
    host, port = one_worker.url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=30)
    started = time.monotonic()
    closed = False
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        try:
            client.sendall(bytes([byte]))
        except OSError:
            closed = True
            break
        time.sleep(0.2)
        if time.monotonic() - started > 8:
            break
    client.settimeout(5)
    try:
        rest = client.recv(1024)
    except OSError:
        rest = b""
    assert closed or rest in (b"",) or rest.startswith(b"HTTP/1.1 400"), rest
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("header", "accepted"),
    [(f"Bearer {KEY}", True), (KEY, True), (f"Token {KEY}", True), (f"  Bearer   {KEY} ", True),
     (f"whatever words {KEY}", False), (f"Bearer x {KEY}", False), (f"x{KEY}", False), ("Bearer", False),
     (f"Bearer {KEY} extra", False), (f"B@d {KEY}", False), (None, False)],
)  # fmt: skip
def test_only_scheme_and_key_or_the_bare_key_is_accepted(header, accepted):
    assert authorized(header, KEY) is accepted


def test_a_value_that_merely_ends_with_the_key_is_refused_by_the_server(one_worker):
    answer = requests.get(f"{one_worker.url}/models", headers={"Authorization": f"whatever words {KEY}"}, timeout=10)

    assert answer.status_code == 401


def test_refuses_to_listen_beyond_loopback_without_a_key():
    done = subprocess.run([sys.executable, "-m", "ai_tagger.serve", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})  # fmt: skip

    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in done.stderr and "--allow-no-key" in done.stderr


@pytest.mark.parametrize(("host", "expected"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.2", False), ("example.com", False)])  # fmt: skip
def test_loopback_means_this_machine_only(host, expected):
    assert loopback(host) is expected


def test_pictures_over_the_limit_are_refused_by_every_decoder(tmp_path):
    from ai_tagger.errors import MediaError
    from ai_tagger.media.images import prepare_image

    with pytest.raises(MediaError, match="256000000 pixels|16000x16000 pixels"):
        prepare_image(bomb_png(), max_side=768)
    assert json.dumps(pixels.MAX_PIXELS)  # one limit, imported by the sidecar and the plugin alike
