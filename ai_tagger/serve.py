"""The built-in local model as a sidecar: ``python3 -m ai_tagger.serve`` (or ``ai-tagger serve``).

Serves the ``labels`` contract (``POST /labels``, ``GET /models``, ``GET /health``) from the same
detector as ``provider: local``, so the plugin in an Alpine Stash container, where onnxruntime
has no wheels, gets the same tags, scores and frames over HTTP with ``provider: labels``.

Why the standard library's ``ThreadingHTTPServer`` and no new dependency: the work per request
is one CPU-bound inference, so the server's job is admission, not I/O scale. A fixed number of
requests are admitted (``--workers`` inferring, as many again waiting); anything beyond gets
503 with ``Retry-After`` at once (the plugin waits and retries), and connections beyond
:data:`MAX_CONNECTIONS` are refused the same way before a thread is started. A request is
admitted only once its body has arrived, so a client that sends slowly (or not at all) holds no
admission slot: headers and body must arrive within ``--request-timeout`` seconds (plus a second
per MB) or the request gets 408. Bodies being read are bounded by :data:`MAX_READING` bytes in all,
so memory stays bounded; the load test (4 clients x 50 requests, ``--workers 2``) shows it holding.
Every picture's declared size is read before decoding and refused above the shared pixel limit
(413). Without an API key the server refuses to listen anywhere but loopback (``--allow-no-key``
overrides), and a key is accepted only as ``Authorization: <scheme> <key>`` or the bare key.

It also serves face embeddings (``POST /faces``) when ``requirements-faces.txt`` is installed
beside it, so a plugin that cannot import dlib (Alpine) recognises performers with
``faceServerUrl``: the same NudeNet face boxes (dlib's detector when NudeNet sees none), the same
5-point landmarks and 128-d ResNet embeddings as in process. Pictures and embeddings stay between
the plugin and this server: faces never leave the machines the user runs.

Imports only the standard library and the detector module (and the face engine, which loads dlib
only when installed): no requests, pydantic or yaml, so it starts fast and runs where only
``requirements-local.txt`` is installed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import heapq
import hmac
import io
import ipaddress
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from ai_tagger import __version__
from ai_tagger.analyze.local.detector import (
    MODELS,
    Detector,
    DetectorUnavailable,
    PictureError,
    PictureTooLarge,
    aggregate,
    available_cores,
    cpu_threads,
)

MAX_BODY = 32_000_000
"""Bytes of one request body (32 MB): 64 frames at the default maxImageSide (768 px, tens of KB each) fit many times."""
MAX_IMAGES = 64
MAX_CONNECTIONS = 256
"""Open connections at once; each holds a thread, so beyond this a connection gets 503 and is closed."""
MAX_DRAIN = 8 * MAX_BODY
"""A refused body up to this size is read and discarded so the client sees the answer, not a reset."""
IDLE_TIMEOUT = 60.0
"""Seconds a kept-alive connection may sit idle between requests before it is closed."""
REQUEST_TIMEOUT = 10.0
"""Seconds (``--request-timeout``) a request's headers and body may take to arrive, plus a second per
:data:`BODY_RATE` bytes of body; a slower request gets 408."""
BODY_RATE = 1_000_000
MAX_READING = 4 * MAX_BODY
"""Bytes of request bodies being read at once, all connections together (128 MB)."""
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*")
MAX_RETRY_AFTER = 30
MAX_DUE = 10_000
"""Refused requests remembered for spreading Retry-After (a bound, not a limit on clients)."""
KEY_ENV = "AI_TAGGER_SERVE_KEY"

_BUSY = b'{"error": {"message": "too many open connections; retry after 1 second"}}'
BUSY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY), _BUSY)
)


class Refused(Exception):
    """A request the server answers with a 4xx/5xx JSON error; ``headers`` go with it."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class Gate:
    """Admission: ``workers`` requests run, as many again wait; the rest are told when to retry."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.capacity = 2 * workers
        self._admitted = 0
        self._lock = threading.Lock()
        self._seconds = 0.5  # running mean of one request's service time, for Retry-After
        self._due: list[float] = []  # heap: when each refused request was told to come back

    def enter(self) -> bool:
        with self._lock:
            if self._admitted >= self.capacity:
                return False
            self._admitted += 1
            return True

    def leave(self, seconds: float) -> None:
        with self._lock:
            self._admitted -= 1
            self._seconds = 0.8 * self._seconds + 0.2 * seconds

    def retry_after(self) -> int:
        """Whole seconds (HTTP's Retry-After) until this refused request's turn is likely to come.

        Its turn comes after the admitted requests and after those refused before it that are
        still due back, so a crowd refused together is spread over the following seconds
        instead of returning at the same instant (and being refused again).
        """
        with self._lock:
            now = time.monotonic()
            while self._due and self._due[0] <= now:
                heapq.heappop(self._due)
            ahead = self.capacity + len(self._due)
            wait = max(1, min(MAX_RETRY_AFTER, math.ceil(self._seconds * ahead / self.workers)))
            if len(self._due) < MAX_DUE:
                heapq.heappush(self._due, now + wait)
            return wait

    def state(self) -> dict[str, int]:
        with self._lock:
            return {"workers": self.workers, "admitted": self._admitted, "capacity": self.capacity}


def authorized(header: str | None, key: str | None) -> bool:
    """``Authorization: <scheme> <key>`` (one scheme word, as the plugin's authScheme) or the bare key.

    Nothing else: a value that merely ends with the key ("whatever words <key>") is refused."""
    if not key:
        return True
    parts = (header or "").split()
    if len(parts) == 2 and _SCHEME.fullmatch(parts[0]):
        candidate = parts[1]
    elif len(parts) == 1:
        candidate = parts[0]
    else:
        return False
    return hmac.compare_digest(candidate.encode("utf-8", "replace"), key.encode("utf-8", "replace"))


class Deadlines:
    """Requests that must have arrived by a time: a reaper thread shuts the reading side of a late
    connection, so its blocked read ends at once (the per-read socket timeout alone lets a client
    that trickles a byte now and then hold a request open for ever)."""

    def __init__(self) -> None:
        self._due: dict[socket.socket, float] = {}
        self._late: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._reap, name="deadlines", daemon=True).start()

    def arm(self, sock: socket.socket, at: float) -> None:
        with self._lock:
            self._due[sock] = at

    def disarm(self, sock: socket.socket) -> bool:
        """Stop watching ``sock``; whether its deadline had passed (its reading side is shut)."""
        with self._lock:
            self._due.pop(sock, None)
            late = sock in self._late
            self._late.discard(sock)
            return late

    def _reap(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [sock for sock, at in self._due.items() if at <= now]
                for sock in late:
                    del self._due[sock]
                    self._late.add(sock)
            for sock in late:
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass


class Budget:
    """Bytes of bodies being read at once; a request that does not fit is told to retry."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        with self._lock:
            if self._used + size > self.limit:
                return False
            self._used += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size


def decode_images(body: bytes, *, any_model: bool = False) -> list[bytes]:
    """The ``labels`` (or ``faces``) request's pictures; :class:`Refused` (4xx) naming the broken rule."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(
            400, 'the body is not JSON; send {"model": "nudenet-320n", "images": ["<base64>", ...]}'
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("images"), list):
        raise Refused(400, 'the body must be {"model": "nudenet-320n", "images": ["<base64>", ...]}')
    model = payload.get("model")
    if model is not None and model not in MODELS and not any_model:
        raise Refused(404, f"model {str(model)[:80]!r} is not served here; this server serves {', '.join(MODELS)}")
    images = payload["images"]
    if not images:
        raise Refused(400, "images is empty: send at least one base64 JPEG or PNG")
    if len(images) > MAX_IMAGES:
        raise Refused(413, f"{len(images)} images: the limit is {MAX_IMAGES} images per request")
    pictures = []
    for number, image in enumerate(images, 1):
        if not isinstance(image, str):
            raise Refused(400, f"image {number} is not a base64 string")
        try:
            pictures.append(base64.b64decode(image, validate=True))
        except (binascii.Error, ValueError):
            raise Refused(400, f"image {number} is not valid base64") from None
    return pictures


def labels(detector: Detector, pictures: Sequence[bytes]) -> dict[str, Any]:
    """The ``labels`` answer: exactly what ``provider: local`` makes of the same pictures."""
    try:
        per_frame = detector.detect(pictures)
    except PictureTooLarge as exc:
        raise Refused(413, f"{exc}: send pictures the size the plugin sends (maxImageSide)") from None
    except PictureError as exc:
        raise Refused(422, f"{exc}: every image must be a JPEG or PNG that decodes") from None
    found = aggregate(per_frame)
    return {
        "model": MODELS[0],
        "labels": [{"name": x.name, "score": x.score, "frames": list(x.frames), "opt_in": x.opt_in} for x in found],
    }


def faces(engine: Any, detector: Detector, pictures: Sequence[bytes]) -> dict[str, Any]:
    """The ``faces`` answer: per picture, each face's box and 128-d embedding, largest first."""
    from ai_tagger.analyze.faces.engine import PictureError as FacePictureError
    from ai_tagger.analyze.faces.engine import face_boxes

    try:
        detections = detector.detect(pictures)
        found = []
        for picture, detected in zip(pictures, detections, strict=True):
            boxes = face_boxes(detected)
            found.append(engine.faces(picture, boxes) if boxes else engine.faces(picture))
    except (PictureError, FacePictureError) as exc:
        raise Refused(422, f"{exc}: every image must be a JPEG or PNG that decodes") from None
    return {
        "model": FACE_MODEL,
        "faces": [[{"box": list(face.box), "embedding": list(face.embedding)} for face in one] for one in found],
    }


FACE_MODEL = "dlib-resnet-v1"


class Handler(BaseHTTPRequestHandler):
    """One request: check it, admit it, answer JSON, log one line. Never raises out."""

    protocol_version = "HTTP/1.1"  # keep-alive: the plugin's session reuses its connections
    server_version = f"ai-tagger-serve/{__version__}"
    timeout = IDLE_TIMEOUT
    server: SidecarServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silenced: :meth:`_log` writes the one line per request, without headers or bodies."""

    def handle_one_request(self) -> None:
        """Wait up to the idle timeout for a request to start; from its first byte, it must arrive in time."""
        try:
            if not cast(io.BufferedReader, self.rfile).peek(1):
                self.close_connection = True
                return
        except OSError:
            self.close_connection = True
            return
        self._started = time.monotonic()
        deadlines = self.server.deadlines
        deadlines.arm(self.connection, self._started + self.server.request_timeout)
        try:
            super().handle_one_request()
        finally:
            if deadlines.disarm(self.connection):
                self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - the base class's naming
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._post)

    def _handle(self, route: Any) -> None:
        started = time.perf_counter()
        self._images = 0
        status = 500
        try:
            status, answer, headers = route(self.path.split("?", 1)[0])
        except Refused as refused:
            status, answer, headers = refused.status, {"error": {"message": str(refused)}}, refused.headers
        except Exception as exc:  # noqa: BLE001 - one bad request must never take the server down
            status, answer, headers = 500, {"error": {"message": f"the model failed: {type(exc).__name__}"}}, {}
        # Logged before the answer goes out: a client that has its answer finds the line written
        # (a server stopped right after the answer would otherwise lose it).
        self._log(status, started)
        try:
            self._send(status, answer, headers)
        except OSError:
            self.close_connection = True

    def _get(self, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if path == "/health":
            return 200, {"status": "ok", "models": list(MODELS), **self.server.gate.state()}, {}
        self._check_key()
        if path in ("/models", "/v1/models"):
            data = [{"id": name, "object": "model", "owned_by": "ai-tagger"} for name in MODELS]
            return 200, {"object": "list", "data": data}, {}
        raise Refused(404, f"no such endpoint: GET {path[:100]}; try POST /labels, GET /models or GET /health")

    def _post(self, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        face_route = path in ("/faces", "/v1/faces")
        if face_route and self.server.faces is None:
            self._discard_body()
            raise Refused(501, f"this server does not serve faces: {self.server.faces_missing}")
        if path not in ("/labels", "/v1/labels") and not face_route:
            self._discard_body()
            raise Refused(404, f"no such endpoint: POST {path[:100]}; the labels contract is POST /labels")
        self._check_key()
        length = self._length()
        budget, gate = self.server.budget, self.server.gate
        if not budget.reserve(length):
            self._discard_body(length)
            raise Refused(503, "the server is busy reading other requests; retry after 1 second", {"Retry-After": "1"})
        try:
            body = self._read(length)
            if not gate.enter():
                raise Refused(
                    503, "the server is busy; retry after the given seconds", {"Retry-After": str(gate.retry_after())}
                )
            started = time.perf_counter()
            try:
                pictures = decode_images(body, any_model=face_route)
                self._images = len(pictures)
                if face_route:
                    return 200, faces(self.server.faces, self.server.detector, pictures), {}
                return 200, labels(self.server.detector, pictures), {}
            finally:
                gate.leave(time.perf_counter() - started)
        finally:
            budget.release(length)

    def _check_key(self) -> None:
        if not authorized(self.headers.get("Authorization"), self.server.api_key):
            self._discard_body()
            raise Refused(
                401, "missing or wrong API key: send Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"}
            )

    def _length(self) -> int:
        raw = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or raw is None:
            self.close_connection = True
            raise Refused(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise Refused(400, "Content-Length is not a number") from None
        if length < 0:
            self.close_connection = True
            raise Refused(400, "Content-Length is negative")
        if length > MAX_BODY:
            self._discard_body(length)
            raise Refused(413, f"the body is {length} bytes: the limit is {MAX_BODY} bytes (32 MB) per request")
        return length

    def _read(self, length: int) -> bytes:
        """The whole body, in time (``--request-timeout`` plus a second per MB), or 408."""
        deadlines = self.server.deadlines
        deadlines.arm(self.connection, self._started + self.server.request_timeout + length / BODY_RATE)
        try:
            body = self.rfile.read(length)
        except OSError:
            body = b""
        if deadlines.disarm(self.connection):
            self.close_connection = True
            raise Refused(408, f"the request did not arrive within {self.server.request_timeout:g} s (plus 1 s per MB)")
        if len(body) < length:
            self.close_connection = True
            raise Refused(400, f"the body ended after {len(body)} of {length} bytes")
        return body

    def _discard_body(self, length: int | None = None) -> None:
        """Read a refused body away so the client gets the answer; close when that is not sensible."""
        if length is None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
        if length < 0 or length > MAX_DRAIN or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                self.close_connection = True
                return
            length -= len(chunk)

    def _send(self, status: int, answer: dict[str, Any], headers: dict[str, str]) -> None:
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _log(self, status: int, started: float) -> None:
        """One line: time, client, method, path (no query), images, status, ms. No headers, no bodies."""
        ms = (time.perf_counter() - started) * 1000
        path = self.path.split("?", 1)[0][:100].encode("ascii", "backslashreplace").decode()
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        line = (
            f"{when} {self.client_address[0]} {self.command} {path} images={self._images} status={status} ms={ms:.0f}"
        )
        self.server.log(line)


class SidecarServer(ThreadingHTTPServer):
    """A thread per connection, at most :data:`MAX_CONNECTIONS`; the detector is shared."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        detector: Detector,
        workers: int,
        api_key: str | None,
        request_timeout: float = REQUEST_TIMEOUT,
        face_engine: Any = None,
    ) -> None:
        self.detector = detector
        self.faces = face_engine
        self.faces_missing = "start it with face_engine"
        self.gate = Gate(workers)
        self.budget = Budget(MAX_READING)
        self.deadlines = Deadlines()
        self.request_timeout = request_timeout
        self.api_key = api_key
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._log_lock = threading.Lock()
        super().__init__(address, Handler)

    def log(self, line: str) -> None:
        with self._log_lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            try:
                request.sendall(BUSY_CONNECTIONS)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A broken connection is logged as one line, never a traceback with request data."""
        error = sys.exc_info()[0]
        self.log(f"connection from {client_address[0]} ended with {error.__name__ if error else 'an error'}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m ai_tagger.serve",
        description="Serve AI Tagger's built-in local model (nudenet-320n) over the labels contract: "
        "POST /labels, GET /models, GET /health.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in Docker)"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--api-key", help=f"require Authorization: <scheme> <key> on /labels and /models; or set {KEY_ENV}"
    )
    parser.add_argument(
        "--workers", type=int, default=available_cores(), help="inferences at once (default: the CPU count)"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=REQUEST_TIMEOUT,
        help=f"seconds a request's headers and body may take to arrive, plus 1 s per MB (default {REQUEST_TIMEOUT:g})",
    )
    parser.add_argument(
        "--allow-no-key",
        action="store_true",
        help="serve without an API key on an address other than loopback (anyone who reaches it may use it)",
    )
    return parser


def loopback(host: str) -> bool:
    """``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _face_engine() -> tuple[Any, str]:
    """The face engine when the face packages are installed here, else None and why (one line)."""
    from ai_tagger.analyze.faces.engine import FaceEngine, FacesUnavailable

    try:
        return FaceEngine.load(), ""
    except FacesUnavailable as exc:
        return None, str(exc)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model once, then serve until interrupted; exit code 2 when the model cannot load."""
    args = _parser().parse_args(argv)
    if args.workers < 1:
        _parser().error("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        _parser().error("--port must be 0 to 65535")
    if not 0 < args.request_timeout <= 3600:
        _parser().error("--request-timeout must be more than 0 and at most 3600 seconds")
    key = args.api_key or os.environ.get(KEY_ENV) or None
    if not key and not loopback(args.host) and not args.allow_no_key:
        print(
            f"ai_tagger.serve: refusing to listen on {args.host} without an API key: anyone who can reach it "
            f"could use the model. Set {KEY_ENV} (Docker: docker run -e {KEY_ENV}=...), listen on 127.0.0.1, "
            "or pass --allow-no-key to serve without one anyway",
            file=sys.stderr,
        )
        return 2
    try:
        detector = Detector.load(threads=max(1, cpu_threads() // args.workers), parallel=args.workers)
    except DetectorUnavailable as exc:
        print(f"ai_tagger.serve: {exc}", file=sys.stderr)
        return 2
    engine, why = _face_engine()
    try:
        server = SidecarServer((args.host, args.port), detector, args.workers, key, args.request_timeout, engine)
        server.faces_missing = why
    except OSError as exc:
        print(f"ai_tagger.serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    server.log(
        f"ai_tagger.serve: {', '.join(MODELS)} on http://{args.host}:{server.server_port} (workers {args.workers}, "
        f"API key {'required' if key else 'not required'}; faces {'on POST /faces' if engine else 'off: ' + why})"
    )
    signal.signal(signal.SIGTERM, _interrupt)  # as PID 1 in a container, SIGTERM is ignored without a handler
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
