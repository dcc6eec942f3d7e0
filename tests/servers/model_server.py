"""A fake OpenAI-compatible vision model whose answers depend on the pixels it receives.

Why: the tagger's whole job is "frames in, tags out". A canned-response mock cannot
tell whether the right frames were sent, in the right order, or whether answers were
mapped back to the right frames. This server looks at every image it receives and
answers from what it sees, so end-to-end tests can assert real behaviour.

How an answer is computed
-------------------------
* Every image (``image_url`` part holding a ``data:`` URI) is decoded with Pillow and
  its mean RGB is classified to the nearest :class:`Colour` of ``server.palette``
  (see :func:`classify`).
* **Grid mode**: if any text in the request matches ``grid RxC`` (regex
  ``grid (\\d+)x(\\d+)``, case-insensitive, e.g. "this image is a grid 2x3 of
  frames"), each image is split into R rows x C columns and every cell is
  classified as its own frame. Frames are numbered row-major, 1-based, and numbering
  continues across images (image 2's first cell follows image 1's last cell).
  Without the marker, frame N is simply the N-th image of the request.
* When the request asks for a ``description`` (a schema property, or the word quoted in its
  text), the answer also has ``"description"``: the colours seen, e.g. "The pictures are mostly red."
* The answer is ``{"tags": [...]}`` with, for every palette entry that has a
  ``tag_name`` and was seen in at least one frame (in order of first appearance)::

      {"name": tag_name, "confidence": confidence, "frames": [1-based frame indices]}

Answer format (``choices[0].message.content``)
----------------------------------------------
* ``response_format`` of type ``json_schema``/``json_object`` and
  ``honour_response_format=True`` (default): the bare JSON string.
* ``response_format`` requested but ``honour_response_format=False``: like Ollama or
  llama.cpp, prose plus a fenced ```` ```json ```` block (or ``answer_style`` if it is
  ``"prose"``).
* no ``response_format``: ``answer_style`` decides: ``"json"`` (bare JSON),
  ``"fenced"`` (prose + fenced block) or ``"prose"`` (JSON inside a sentence).

Misbehaviour knobs (constructor args, also mutable attributes at runtime)
------------------------------------------------------------------------
``latency`` (sleep per inference call), ``fail_next`` (HTTP statuses returned by the
next inference calls, in order; 429 carries ``Retry-After`` and
``llm_provider-retry-after``), ``malformed_colour`` (truncated JSON when any frame has
that colour), ``empty_colour`` (empty content when any frame has that colour),
``answer_case`` (the name of a file in ``tests/answers/``: every completion answers that
case's ``content``, ``finish_reason`` and reasoning field as the real server it describes
would, until the request's ``max_tokens`` reaches the case's ``cut_below``).

Also served: ``GET /v1/models``, ``GET /v1/models/{id}`` and ``POST /v1/labels``, a
plain REST classifier contract ``{"images": [b64...], "model": ...}`` ->
``{"labels": [{"name", "score", "frames"}]}``. ``fail_next`` and ``latency`` apply to
both completions and labels ("inference calls").

Recording: ``requests`` (completions) and ``label_requests`` (labels) hold one dict
per call, never the image data (``max_tokens`` included); ``max_in_flight`` is the peak number of inference
calls handled at once (to test concurrency limits).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from PIL import Image, ImageStat

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Colour:
    """A palette entry: the colour a frame is classified as, and the tag it yields."""

    name: str
    rgb: RGB
    tag_name: str | None
    confidence: float = 0.0


DEFAULT_PALETTE: tuple[Colour, ...] = (
    Colour("red", (220, 20, 20), "Red", 0.9),
    Colour("green", (20, 160, 20), "Outdoors", 0.85),
    Colour("blue", (20, 20, 220), "Water", 0.8),
    Colour("yellow", (230, 220, 30), "Beach", 0.7),
    Colour("white", (245, 245, 245), "Bright", 0.35),
    Colour("black", (10, 10, 10), "Dark", 0.6),
    Colour("gray", (128, 128, 128), None, 0.0),
)

GRID_RE = re.compile(r"grid (\d+)x(\d+)", re.IGNORECASE)
MALFORMED_CONTENT = '{"tags": [{"name": "x", "confidence": "very"'
SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})
JSON_FORMATS = frozenset({"json_schema", "json_object"})
ANSWERS_DIR = Path(__file__).resolve().parents[1] / "answers"


@cache
def answer_case(name: str) -> dict[str, Any]:
    """A corpus case, ``tests/answers/<name>.yml``: what a real server sent and what to read from it."""
    return yaml.safe_load((ANSWERS_DIR / f"{name}.yml").read_text(encoding="utf-8"))


def answer_case_names() -> list[str]:
    return sorted(path.stem for path in ANSWERS_DIR.glob("*.yml"))


# --------------------------------------------------------------------------- classifier


def classify(rgb: Sequence[float], palette: Iterable[Colour] = DEFAULT_PALETTE) -> Colour:
    """Nearest palette colour (Euclidean in RGB) to a mean colour."""
    r, g, b = (float(c) for c in rgb[:3])
    return min(palette, key=lambda c: (c.rgb[0] - r) ** 2 + (c.rgb[1] - g) ** 2 + (c.rgb[2] - b) ** 2)


def find_colour(name: str, palette: Iterable[Colour] = DEFAULT_PALETTE) -> Colour:
    """Palette entry by name (KeyError if unknown), so tests and media share one palette."""
    for colour in palette:
        if colour.name == name:
            return colour
    raise KeyError(f"unknown palette colour {name!r}")


def mean_rgb(image: Image.Image) -> tuple[float, float, float]:
    """Mean RGB of an image (alpha dropped, palette/greyscale modes converted)."""
    r, g, b = ImageStat.Stat(image.convert("RGB")).mean[:3]
    return (r, g, b)


def classify_image(image: Image.Image, palette: Iterable[Colour] = DEFAULT_PALETTE) -> Colour:
    """Classify a whole image by its mean colour."""
    return classify(mean_rgb(image), palette)


def split_grid(image: Image.Image, rows: int, cols: int) -> list[Image.Image]:
    """Cells of an image, row-major; edges rounded so cells tile the image exactly."""
    w, h = image.size
    cells = []
    for r in range(rows):
        for c in range(cols):
            box = (c * w // cols, r * h // rows, (c + 1) * w // cols, (r + 1) * h // rows)
            cells.append(image.crop(box))
    return cells


def tags_for_frames(frames: Sequence[Colour]) -> list[dict[str, Any]]:
    """One tag per taggable palette colour seen, with the 1-based frames it was seen in."""
    seen: dict[str, list[int]] = {}
    by_name: dict[str, Colour] = {}
    for index, colour in enumerate(frames, start=1):
        seen.setdefault(colour.name, []).append(index)
        by_name[colour.name] = colour
    # Keep the order stable (first appearance) so answers are deterministic.
    return [
        {"name": by_name[n].tag_name, "confidence": by_name[n].confidence, "frames": idx}
        for n, idx in seen.items()
        if by_name[n].tag_name is not None
    ]


def describe_frames(frames: Sequence[Colour]) -> str:
    """The answer's ``description`` when one is asked for: the colours seen, in order of appearance."""
    seen = list(dict.fromkeys(c.name for c in frames))
    return f"The pictures are mostly {' then '.join(seen) or 'blank'}." if seen else "Nothing is visible."


def _asks_description(response_format: Any, text: str) -> bool:
    """The plugin asks for a description in its schema (``description`` property) or in words."""
    schema = (response_format or {}).get("json_schema", {}).get("schema", {}) if isinstance(
        response_format, dict) else {}
    return "description" in (schema.get("properties") or {}) or '"description"' in text


def image_tokens(width: int, height: int, detail: str | None) -> int:
    """OpenAI's vision token formula: 85 base + 170 per 512 px tile at high detail."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles


def render_content(payload: dict[str, Any], style: str) -> str:
    """Serialise an answer the way different real servers tend to."""
    compact = json.dumps(payload)
    if style == "json":
        return compact
    if style == "fenced":
        return (
            "Here are the tags I found in the frames:\n\n```json\n"
            + json.dumps(payload, indent=2)
            + "\n```\nLet me know if you need more detail."
        )
    if style == "prose":
        return f"Sure! Based on the images, the result is {compact} and that is all I can see."
    raise ValueError(f"unknown answer_style {style!r}")


# --------------------------------------------------------------------------- server


class _HTTPError(Exception):
    """Raised inside handlers to send an OpenAI-style error response."""

    def __init__(self, status: int, message: str, code: str | None = None, err_type: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.err_type = err_type
        self.headers = headers or {}


_FAIL_INFO = {
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached, please retry later."),
    500: ("server_error", "internal_error", "The server had an error while processing your request."),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
    504: ("server_error", "gateway_timeout", "Gateway timeout."),
}


@dataclass
class _DecodedImage:
    image: Image.Image
    detail: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Don't join handler threads on close: keep-alive clients would make stop() hang.
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    fake: FakeModel


class FakeModel:
    """OpenAI-compatible chat-completions server answering from image colours.

    Use as a context manager (or ``start()``/``stop()``); see the module docstring
    for the answer contract. All knobs are plain attributes and can be changed while
    the server runs; reads of them happen once per request.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] | None = None,
        api_key: str | None = None,
        auth_scheme: str | None = "Bearer",
        palette: Sequence[Colour] | None = None,
        honour_response_format: bool = True,
        answer_style: str = "json",
        latency: float = 0.0,
        fail_next: Sequence[int] | None = None,
        retry_after: float = 1,
        malformed_colour: str | None = None,
        empty_colour: str | None = None,
        answer_case: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.models: list[str] = list(models) if models is not None else ["vision-test"]
        self.api_key: str = api_key if api_key is not None else "sk-test-" + secrets.token_hex(12)
        self.auth_scheme = auth_scheme
        self.palette: list[Colour] = list(palette) if palette is not None else list(DEFAULT_PALETTE)
        self.honour_response_format = honour_response_format
        self.answer_style = answer_style
        self.latency = latency
        self.fail_next: list[int] = list(fail_next or [])
        self.retry_after = retry_after
        self.malformed_colour = malformed_colour
        self.empty_colour = empty_colour
        self.answer_case = answer_case
        self.host = host

        self.requests: list[dict[str, Any]] = []
        self.label_requests: list[dict[str, Any]] = []
        self.auth_failures = 0
        self.max_in_flight = 0
        # Called after each request with (route, started, finished, body bytes); perf_counter
        # times. Benchmarks and tests observe the server through these, never by patching it.
        self.listeners: list[Callable[[str, float, float, int], None]] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeModel:
        """Bind an ephemeral port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self.host, 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-model-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """Server root without the /v1 prefix."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client wants as base URL."""
        return f"{self.root_url}/v1"

    @property
    def auth_header(self) -> dict[str, str]:
        """The Authorization header a correct client sends."""
        value = f"{self.auth_scheme} {self.api_key}" if self.auth_scheme else self.api_key
        return {"Authorization": value}

    # ----------------------------------------------------------------- recording

    @property
    def completion_count(self) -> int:
        """Chat-completion calls that passed auth (any resulting status)."""
        with self._lock:
            return len(self.requests)

    @property
    def images_received(self) -> int:
        """Images in all recorded chat-completion calls (retries count again)."""
        with self._lock:
            return sum(r["n_images"] for r in self.requests)

    def reset(self) -> None:
        """Forget recordings (not the behaviour knobs)."""
        with self._lock:
            self.requests.clear()
            self.label_requests.clear()
            self.auth_failures = 0
            self.max_in_flight = 0

    def _record(self, target: list[dict[str, Any]], record: dict[str, Any]) -> None:
        with self._lock:
            target.append(record)

    def _enter_flight(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave_flight(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _pop_failure(self) -> int | None:
        with self._lock:
            return self.fail_next.pop(0) if self.fail_next else None

    def _check_auth(self, header: str | None) -> None:
        expected = f"{self.auth_scheme} {self.api_key}" if self.auth_scheme else self.api_key
        ok = header is not None and (
            header.strip() == expected
            if not self.auth_scheme
            else (header.split(" ", 1)[0].lower() == self.auth_scheme.lower()
                  and header.split(" ", 1)[-1].strip() == self.api_key)
        )
        if not ok:
            with self._lock:
                self.auth_failures += 1
            raise _HTTPError(401, "Incorrect API key provided.", code="invalid_api_key")

    def _fail_if_asked(self) -> None:
        status = self._pop_failure()
        if status is None:
            return
        err_type, code, message = _FAIL_INFO.get(status, ("server_error", f"http_{status}", f"Injected HTTP {status}."))
        headers: dict[str, str] = {}
        if status in (429, 503):
            headers = {"Retry-After": _fmt_seconds(self.retry_after),
                       "llm_provider-retry-after": _fmt_seconds(self.retry_after)}
        raise _HTTPError(status, message, code=code, err_type=err_type, headers=headers)

    # ----------------------------------------------------------------- endpoints

    def handle_models(self, model_id: str | None) -> dict[str, Any]:
        entries = {m: {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.models}
        if model_id is None:
            return {"object": "list", "data": list(entries.values())}
        if model_id not in entries:
            raise _HTTPError(404, f"The model '{model_id}' does not exist", code="model_not_found")
        return entries[model_id]

    def handle_completion(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        record: dict[str, Any] = {"model": None, "n_images": 0, "image_sizes": [], "detail": [], "text": "",
                                  "response_format": None, "headers": headers, "status": None}
        self._record(self.requests, record)
        self._enter_flight()
        try:
            result = self._completion(body, record)
            record["status"] = 200
            return result
        except _HTTPError as err:
            record["status"] = err.status
            raise
        finally:
            self._leave_flight()

    def _completion(self, body: bytes, record: dict[str, Any]) -> dict[str, Any]:
        payload = _parse_json_object(body)
        model = payload.get("model")
        record["model"] = model
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HTTPError(400, "'messages' must be a non-empty array", code="invalid_messages")
        texts, images = _parse_messages(messages)
        record["text"] = "\n".join(texts)
        record["n_images"] = len(images)
        record["image_sizes"] = [im.image.size for im in images]
        record["detail"] = [im.detail for im in images]
        response_format = payload.get("response_format")
        record["response_format"] = response_format if isinstance(response_format, dict) else None
        max_tokens = payload.get("max_tokens", payload.get("max_completion_tokens"))
        record["max_tokens"] = max_tokens

        if model not in self.models:
            raise _HTTPError(404, f"The model '{model}' does not exist or you do not have access to it.",
                             code="model_not_found")
        if self.latency:
            time.sleep(self.latency)
        self._fail_if_asked()

        palette = list(self.palette)
        frames = _frames(images, record["text"], palette)
        answer: dict[str, Any] = {"tags": tags_for_frames(frames)}
        names = {c.name for c in frames}
        if _asks_description(response_format, record["text"]):
            answer["description"] = describe_frames(frames)
        wants_json = isinstance(response_format, dict) and response_format.get("type") in JSON_FORMATS
        message: dict[str, Any] = {"role": "assistant"}
        finish_reason = "stop"
        case = answer_case(self.answer_case) if self.answer_case else None
        if case is not None and isinstance(max_tokens, int) and max_tokens >= case.get("cut_below", math.inf):
            case = None
        if case is not None:
            content = case["content"]
            finish_reason = case.get("finish_reason", "stop")
            if case.get("reasoning"):
                message[case.get("reasoning_field", "reasoning_content")] = case["reasoning"]
        elif self.malformed_colour is not None and self.malformed_colour in names:
            content = MALFORMED_CONTENT
        elif self.empty_colour is not None and self.empty_colour in names:
            content = ""
        elif wants_json and self.honour_response_format:
            content = render_content(answer, "json")
        elif wants_json:
            content = render_content(answer, "fenced" if self.answer_style == "json" else self.answer_style)
        else:
            content = render_content(answer, self.answer_style)

        prompt_tokens = math.ceil(len(record["text"]) / 4) + sum(
            image_tokens(im.image.size[0], im.image.size[1], im.detail) for im in images)
        completion_tokens = math.ceil(len(content or "") / 4)
        if finish_reason == "length" and isinstance(max_tokens, int):
            completion_tokens = max_tokens
        message["content"] = content
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def handle_labels(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        record: dict[str, Any] = {"model": None, "n_images": 0, "image_sizes": [], "headers": headers,
                                  "status": None}
        self._record(self.label_requests, record)
        self._enter_flight()
        try:
            payload = _parse_json_object(body)
            model = payload.get("model")
            record["model"] = model
            raw = payload.get("images")
            if not isinstance(raw, list) or not raw or not all(isinstance(i, str) for i in raw):
                raise _HTTPError(400, "'images' must be a non-empty array of base64 strings", code="invalid_images")
            images = [_decode_image(i, allow_bare=True) for i in raw]
            record["n_images"] = len(images)
            record["image_sizes"] = [im.size for im in images]
            if model is not None and model not in self.models:
                raise _HTTPError(404, f"The model '{model}' does not exist", code="model_not_found")
            if self.latency:
                time.sleep(self.latency)
            self._fail_if_asked()
            palette = list(self.palette)
            tags = tags_for_frames([classify_image(im, palette) for im in images])
            record["status"] = 200
            return {"model": model or self.models[0],
                    "labels": [{"name": t["name"], "score": t["confidence"], "frames": t["frames"]} for t in tags]}
        except _HTTPError as err:
            record["status"] = err.status
            raise
        finally:
            self._leave_flight()


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _HTTPError(400, f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise _HTTPError(400, "Request body must be a JSON object", code="invalid_json")
    return payload


def _decode_image(url: str, *, allow_bare: bool = False) -> Image.Image:
    """Decode a data URI (or, for labels, bare base64) to a loaded Pillow image."""
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or ";base64" not in header:
            raise _HTTPError(400, "image data URI must be base64 encoded", code="invalid_image_url")
    elif allow_bare:
        data = url
    else:
        raise _HTTPError(400, "only data: image URLs are supported by this server", code="invalid_image_url")
    try:
        raw = base64.b64decode(data, validate=False)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError) as exc:
        raise _HTTPError(400, f"Could not decode image: {exc}", code="invalid_image") from None
    return image


def _parse_messages(messages: list[Any]) -> tuple[list[str], list[_DecodedImage]]:
    """All text parts (any role) and all images, in order."""
    texts: list[str] = []
    images: list[_DecodedImage] = []
    for message in messages:
        if not isinstance(message, dict):
            raise _HTTPError(400, "each message must be an object", code="invalid_messages")
        content = message.get("content")
        if content is None:
            continue
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise _HTTPError(400, "message content must be a string or an array", code="invalid_messages")
        for part in content:
            if not isinstance(part, dict):
                raise _HTTPError(400, "content parts must be objects", code="invalid_messages")
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise _HTTPError(400, "text part needs a string 'text'", code="invalid_messages")
                texts.append(text)
            elif kind == "image_url":
                spec = part.get("image_url")
                url = spec.get("url") if isinstance(spec, dict) else spec
                if not isinstance(url, str):
                    raise _HTTPError(400, "image_url part needs a 'url'", code="invalid_image_url")
                detail = spec.get("detail") if isinstance(spec, dict) else None
                images.append(_DecodedImage(_decode_image(url), detail))
            else:
                raise _HTTPError(400, f"unsupported content part type {kind!r}", code="invalid_messages")
    return texts, images


def _frames(images: Sequence[_DecodedImage], text: str, palette: Sequence[Colour]) -> list[Colour]:
    grid = GRID_RE.search(text)
    if grid is None:
        return [classify_image(im.image, palette) for im in images]
    rows, cols = int(grid.group(1)), int(grid.group(2))
    if not (1 <= rows <= 64 and 1 <= cols <= 64):
        raise _HTTPError(400, f"unreasonable grid {rows}x{cols}", code="invalid_grid")
    return [classify_image(cell, palette) for im in images for cell in split_grid(im.image, rows, cols)]


_ROUTES = {"/v1/models": "models", "/v1/chat/completions": "completion", "/v1/labels": "labels"}


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the FakeModel; any failure becomes a JSON error, never a crash."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK, ~40 ms a call that no real inference server (vLLM, Ollama) costs.
    disable_nagle_algorithm = True
    server_version = "FakeModel/1.0"
    timeout = 60  # idle keep-alive connections give their thread back eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        started = time.perf_counter()
        body = b""
        path = ""
        try:
            body = self._read_body() if method == "POST" else b""
            path = urlsplit(self.path).path.rstrip("/")
            fake._check_auth(self.headers.get("Authorization"))
            safe_headers = {k: v for k, v in self.headers.items() if k.lower() not in SECRET_HEADERS}
            if method == "GET" and path == "/v1/models":
                result = fake.handle_models(None)
            elif method == "GET" and path.startswith("/v1/models/"):
                result = fake.handle_models(unquote(path[len("/v1/models/"):]))
            elif method == "POST" and path == "/v1/chat/completions":
                result = fake.handle_completion(body, safe_headers)
            elif method == "POST" and path == "/v1/labels":
                result = fake.handle_labels(body, safe_headers)
            else:
                raise _HTTPError(404, f"Unknown route {method} {path}", code="unknown_url")
            self._send(200, result)
        except _HTTPError as err:
            self._send(err.status, {"error": {"message": err.message, "type": err.err_type, "param": None,
                                              "code": err.code}}, err.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the server must survive anything
            self._send(500, {"error": {"message": f"fake server bug: {exc!r}", "type": "server_error",
                                       "param": None, "code": "internal_error"}})
        finally:
            route = _ROUTES.get(path) or ("models" if path.startswith("/v1/models/") else path)
            for listener in list(fake.listeners):
                listener(route, started, time.perf_counter(), len(body))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    self.close_connection = True
                    raise _HTTPError(400, "bad chunked body", code="invalid_request") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise _HTTPError(400, "bad Content-Length", code="invalid_request") from None
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
