"""A stand-in for Stash's web UI for the browser test: the host page, the plugin's own UI files,
and Stash's ``/graphql`` and media URLs forwarded (with the browser's session cookie) to the
bundled Stash-compatible server. Same origin for all, as in Stash, so the page's plain
``fetch("graphql")`` works unchanged and nothing is loaded from elsewhere."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
UI = HERE.parents[1] / "ai_tagger" / "ui"
FILES = {
    "/host.js": HERE / "host.js",
    "/start.js": HERE / "start.js",
    "/vendor/react.production.min.js": HERE / "vendor" / "react.production.min.js",
    "/vendor/react-dom.production.min.js": HERE / "vendor" / "react-dom.production.min.js",
    "/plugin/ai_tagger/review.js": UI / "review.js",
    "/plugin/ai_tagger/review.css": UI / "review.css",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8"}
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"
"""No inline script and nothing from another origin: a page that needs more fails here first."""


class Host:
    def __init__(self, stash_url: str) -> None:
        self.stash_url = stash_url
        self.errors: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Host:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, body: bytes | None) -> None:
            request = urllib.request.Request(host.stash_url + self.path, data=body, method=self.command)
            for name in ("Cookie", "Content-Type", "Accept"):
                if self.headers.get(name):
                    request.add_header(name, self.headers[name])
            try:
                with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 - loopback only
                    self._send(response.status, response.read(), response.headers.get("Content-Type", ""))
            except urllib.error.HTTPError as exc:
                self._send(exc.code, exc.read(), exc.headers.get("Content-Type", "text/plain"))

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != "/graphql":
                return self._send(404, b"not found", "text/plain")
            self._forward(body)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path in FILES:
                file = FILES[path]
                return self._send(200, file.read_bytes(), TYPES[file.suffix])
            if path.startswith(("/scene/", "/image/")):
                return self._forward(None)
            self._send(200, (HERE / "host.html").read_bytes(), TYPES[".html"])

    return Handler
