"""A fake Stash server for integration tests, the demo and benchmarks.

It speaks enough of Stash's HTTP API for AI Tagger: POST /graphql (executed by graphql-core
against the hand-written subset in stash_schema.graphql, so a document real Stash would
reject is rejected here too), cookie or ApiKey authentication, and the media endpoints the
plugin falls back to when it cannot open a file path (scene stream with HTTP Range, image
and thumbnail, including images inside zip archives). Galleries (folder- or zip-based) hold
images in path order, as Stash shows them.

Data lives in memory behind one lock; every GraphQL request runs under it, so each mutation
is atomic and readers never see half of one.
"""

from __future__ import annotations

import bisect
import hashlib
import inspect
import json
import mimetypes
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute,
    parse,
    validate,
)

SCHEMA_FILE = Path(__file__).with_name("stash_schema.graphql")
REPO_ROOT = Path(__file__).resolve().parents[2]
STASH_VERSION = "v0.28.0"
DEFAULT_PER_PAGE = 25  # Stash's default when filter.per_page is absent
DEFAULT_VIDEO = {"duration": 10.0, "width": 640, "height": 360, "frame_rate": 25.0}
DEFAULT_IMAGE = {"width": 640, "height": 480}

Record = dict[str, Any]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def probe_media(source: str | bytes) -> dict[str, Any]:
    """Width/height (and duration/frame rate for video) via ffprobe; {} when that fails.

    `source` is a file path, or the bytes of an image (zip members are piped in)."""
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        return {}
    target, data = ("pipe:0", source) if isinstance(source, bytes) else (str(source), None)
    cmd = [ffprobe, "-v", "error", "-select_streams", "v:0", "-print_format", "json",
           "-show_entries", "stream=width,height,r_frame_rate,duration:format=duration", target]
    try:
        out = subprocess.run(cmd, input=data, capture_output=True, timeout=30, check=True).stdout
        info = json.loads(out or b"{}")
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    streams = info.get("streams") or [{}]
    stream, fmt = streams[0], info.get("format") or {}
    result: dict[str, Any] = {}
    if stream.get("width"):
        result["width"], result["height"] = int(stream["width"]), int(stream["height"])
    duration = stream.get("duration") or fmt.get("duration")
    if duration not in (None, "N/A"):
        result["duration"] = float(duration)
    num, _, den = str(stream.get("r_frame_rate", "")).partition("/")
    if num.isdigit() and den.isdigit() and int(den):
        result["frame_rate"] = round(int(num) / int(den), 3)
    return result


# ---- filters ------------------------------------------------------------------------------

def _string_test(crit: Mapping[str, Any]) -> Callable[[str | None], bool]:
    """StringCriterionInput as a predicate; case-insensitive like Stash's SQLite LIKE."""
    mod, want = crit["modifier"], crit["value"]
    w = want.casefold()
    tests: dict[str, Callable[[str], bool]] = {
        "IS_NULL": lambda h: not h, "NOT_NULL": lambda h: bool(h),
        "EQUALS": lambda h: h.casefold() == w, "NOT_EQUALS": lambda h: h.casefold() != w,
        "INCLUDES": lambda h: w in h.casefold(), "EXCLUDES": lambda h: w not in h.casefold(),
        "MATCHES_REGEX": lambda h: bool(re.search(want, h, re.I)),
        "NOT_MATCHES_REGEX": lambda h: not re.search(want, h, re.I),
    }
    if mod not in tests:
        raise GraphQLError(f"unsupported string modifier {mod}")
    test = tests[mod]
    return lambda value: test(value or "")


def _int_test(crit: Mapping[str, Any]) -> Callable[[int], bool]:
    mod, a = crit["modifier"], crit["value"]
    b = crit.get("value2") if crit.get("value2") is not None else a
    tests: dict[str, Callable[[int], bool]] = {
        "EQUALS": lambda v: v == a, "NOT_EQUALS": lambda v: v != a,
        "GREATER_THAN": lambda v: v > a, "LESS_THAN": lambda v: v < a,
        "BETWEEN": lambda v: a <= v <= b, "NOT_BETWEEN": lambda v: not a <= v <= b,
        "IS_NULL": lambda v: False, "NOT_NULL": lambda v: True,
    }
    if mod not in tests:
        raise GraphQLError(f"unsupported int modifier {mod}")
    return tests[mod]


def _id_bounds(flt: Mapping[str, Any] | None) -> tuple[int, int | None]:
    """[low, high) id range an object filter can match, so keyset paging skips what it has seen."""
    crit = (flt or {}).get("id")
    if not crit or flt.get("OR"):
        return 0, None
    mod, a = crit["modifier"], crit["value"]
    b = crit.get("value2") if crit.get("value2") is not None else a
    return {"GREATER_THAN": (a + 1, None), "LESS_THAN": (0, a), "EQUALS": (a, a + 1),
            "BETWEEN": (a, b + 1)}.get(mod, (0, None))


class FakeStash:
    """In-memory Stash: seed it, point the plugin at `url`, then inspect what it did."""

    def __init__(self, plugin_dir: str | os.PathLike | None = None) -> None:
        self.api_key = secrets.token_hex(16)
        self.session_cookie: dict[str, Any] = {
            "Name": "session", "Value": secrets.token_urlsafe(24), "Path": "/", "Domain": "",
            "Expires": "0001-01-01T00:00:00Z", "RawExpires": "", "MaxAge": 0, "Secure": False,
            "HttpOnly": True, "SameSite": 0, "Raw": "", "Unparsed": None,
        }
        self.plugin_dir = str(Path(plugin_dir).resolve()) if plugin_dir else str(REPO_ROOT)
        self.lock = threading.RLock()
        self.schema = self._build_schema()
        # graphql-core's default resolver unless a subclass answers fields the data does not hold.
        self.field_resolver: Callable[..., Any] | None = None
        # Serves a GET before the media routes when set: True when it answered (the web UI).
        self.web: Callable[[BaseHTTPRequestHandler], bool] | None = None
        self._attach_resolvers()
        self.tags: dict[int, Record] = {}
        self.scenes: dict[int, Record] = {}
        self.images: dict[int, Record] = {}
        self.galleries: dict[int, Record] = {}
        self.markers: list[Record] = []
        self.performers: dict[int, Record] = {}
        self.jobs: list[Record] = []
        self.plugin_settings: dict[str, dict[str, Any]] = {}
        self.plugin_python = sys.executable  # the Python runPluginOperation starts the plugin with
        self.ffmpeg_path = ""
        self.ffprobe_path = ""
        self._next_id = {"tag": 1, "scene": 1, "image": 1, "file": 1, "job": 1, "marker": 1, "performer": 1,
                         "gallery": 1}
        self._scene_tag_counts: Counter[int] = Counter()
        self._image_tag_counts: Counter[int] = Counter()
        self._gallery_tag_counts: Counter[int] = Counter()
        self.operations: list[tuple[str | None, dict[str, Any]]] = []
        # Called after each GraphQL request with (operation name, variables, HTTP status), outside
        # the lock: benchmarks and tests observe the server through these, never by patching it.
        self.listeners: list[Callable[[str | None, dict[str, Any], int], None]] = []
        self.mutation_count = 0
        self.rejected_requests = 0
        self.media_requests: Counter[str] = Counter()
        self._screenshots: dict[tuple[str, float], bytes | None] = {}
        self._connections: set[Any] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._config_dir = tempfile.mkdtemp(prefix="fake-stash-")
        self.port = 0
        self.url = ""

    def _build_schema(self) -> GraphQLSchema:
        return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeStash:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-stash",
                                        daemon=True)  # short poll: stop() returns quickly
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
            with self.lock:  # close kept-alive connections too, so clients see the server gone
                connections, self._connections = list(self._connections), set()
            for conn in connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        shutil.rmtree(self._config_dir, ignore_errors=True)

    def __enter__(self) -> FakeStash:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def server_connection(self, **overrides: Any) -> dict[str, Any]:
        """What Stash writes into the plugin's stdin as `server_connection`."""
        conn = {"Scheme": "http", "Host": "127.0.0.1", "Port": self.port,
                "SessionCookie": dict(self.session_cookie), "Dir": self._config_dir,
                "PluginDir": self.plugin_dir}
        conn.update(overrides)
        return conn

    @property
    def cookie_header(self) -> str:
        return f"{self.session_cookie['Name']}={self.session_cookie['Value']}"

    # ---- seeding -----------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] = value + 1
        return value

    def add_tag(self, name: str, aliases: Iterable[str] = (), parent_ids: Iterable[str | int] = (),
                ignore_auto_tag: bool = False, description: str | None = None) -> str:
        with self.lock:
            return str(self._create_tag({"name": name, "aliases": list(aliases), "description": description,
                                         "parent_ids": [str(p) for p in parent_ids],
                                         "ignore_auto_tag": ignore_auto_tag})["id"])

    def seed_tags(self, n: int, prefix: str = "tag") -> list[str]:
        """n tags named `{prefix}{id}`, without the duplicate checks of tagCreate (fast)."""
        with self.lock:
            ids = []
            for _ in range(n):
                tid = self._new_id("tag")
                self.tags[tid] = {"id": tid, "name": f"{prefix}{tid}", "aliases": [],
                                  "parent_ids": [], "ignore_auto_tag": False, "description": None}
                ids.append(str(tid))
            return ids

    def _file_record(self, path: str, size: int, mod_time: str, fingerprints: Any, salt: str = "") -> Record:
        if fingerprints is None:
            fingerprints = {
                "oshash": hashlib.sha1(f"{path}:{size}{salt}".encode()).hexdigest()[:16],
                "md5": hashlib.md5(f"{path}{salt}".encode()).hexdigest(),
            }
        if isinstance(fingerprints, Mapping):
            fingerprints = [{"type": k, "value": str(v)} for k, v in fingerprints.items()]
        return {"id": self._new_id("file"), "path": path, "basename": os.path.basename(path), "size": size,
                "mod_time": mod_time, "fingerprints": [dict(f) for f in fingerprints]}

    def _video_meta(self, path: str, duration: Any, width: Any, height: Any, frame_rate: Any) -> dict[str, Any]:
        given = {"duration": duration, "width": width, "height": height, "frame_rate": frame_rate}
        probed = probe_media(path) if None in given.values() and os.path.isfile(path) else {}
        return {k: v if v is not None else probed.get(k, DEFAULT_VIDEO[k]) for k, v in given.items()}

    def add_scene(self, path: str | os.PathLike, *, title: str | None = None, tag_ids: Iterable[str | int] = (),
                  performer_ids: Iterable[str | int] = (),
                  duration: float | None = None, width: int | None = None, height: int | None = None,
                  frame_rate: float | None = None, fingerprints: Any = None) -> str:
        """One scene with one video file. Unknown metadata is probed from the file if it exists."""
        path = str(path)
        meta = self._video_meta(path, duration, width, height, frame_rate)
        st = os.stat(path) if os.path.isfile(path) else None
        with self.lock:
            tags = self._check_tag_ids(tag_ids)
            sid = self._new_id("scene")
            file = self._file_record(path, st.st_size if st else 0, _rfc3339(st.st_mtime) if st else _now(),
                                     fingerprints)
            self.scenes[sid] = {"id": sid, "title": title, "details": None, "organized": False, "tags": tags,
                                "file": {**file, **meta}, "media": path,
                                "performers": self._check_performer_ids(performer_ids)}
            self._scene_tag_counts.update(tags)
            return str(sid)

    def seed_scenes(self, n: int, path: str | os.PathLike, *, tag_ids: Iterable[str | int] = (),
                    title_prefix: str | None = "Scene ", duration: float | None = None, width: int | None = None,
                    height: int | None = None, frame_rate: float | None = None) -> list[str]:
        """n scenes sharing one media file (probed once), each with distinct fingerprints. Fast."""
        path = str(path)
        meta = self._video_meta(path, duration, width, height, frame_rate)
        st = os.stat(path) if os.path.isfile(path) else None
        size, mod_time = (st.st_size, _rfc3339(st.st_mtime)) if st else (0, _now())
        with self.lock:
            tags = self._check_tag_ids(tag_ids)
            ids = []
            for _ in range(n):
                sid = self._new_id("scene")
                file = self._file_record(path, size, mod_time, None, salt=f"#{sid}")
                title = None if title_prefix is None else f"{title_prefix}{sid}"
                self.scenes[sid] = {"id": sid, "title": title, "details": None, "organized": False,
                                    "tags": set(tags), "file": {**file, **meta}, "media": path, "performers": set()}
                ids.append(str(sid))
            for t in tags:
                self._scene_tag_counts[t] += n
            return ids

    def add_image(self, path: str | os.PathLike, *, zip_path: str | os.PathLike | None = None,
                  title: str | None = None, tag_ids: Iterable[str | int] = (), width: int | None = None,
                  height: int | None = None, fingerprints: Any = None,
                  performer_ids: Iterable[str | int] = ()) -> str:
        """One image. With zip_path, `path` is the member name inside that zip archive."""
        path = str(path)
        if zip_path is not None:
            zip_path = str(zip_path)
            with zipfile.ZipFile(zip_path) as zf:
                data = zf.read(path)
                info = zf.getinfo(path)
            shown, size = os.path.join(zip_path, path), info.file_size
            mod_time = datetime(*info.date_time, tzinfo=timezone.utc).isoformat(timespec="seconds")
        else:
            data = None
            shown = path
            st = os.stat(path) if os.path.isfile(path) else None
            size, mod_time = (st.st_size, _rfc3339(st.st_mtime)) if st else (0, _now())
        probed = {}
        if width is None or height is None:
            source = data if data is not None else (path if os.path.isfile(path) else None)
            probed = probe_media(source) if source is not None else {}
        dims = {"width": width if width is not None else probed.get("width", DEFAULT_IMAGE["width"]),
                "height": height if height is not None else probed.get("height", DEFAULT_IMAGE["height"])}
        with self.lock:
            tags = self._check_tag_ids(tag_ids)
            iid = self._new_id("image")
            file = {**self._file_record(shown, size, mod_time, fingerprints), **dims}
            if zip_path is not None:
                zst = os.stat(zip_path)
                file["zip_file"] = self._file_record(zip_path, zst.st_size, _rfc3339(zst.st_mtime), None)
            self.images[iid] = {"id": iid, "title": title, "details": None, "organized": False, "tags": tags,
                                "file": file, "media": path, "zip": zip_path, "galleries": set(),
                                "performers": self._check_performer_ids(performer_ids)}
            self._image_tag_counts.update(tags)
            return str(iid)

    def add_gallery(self, folder: str | os.PathLike | None = None, *, zip_path: str | os.PathLike | None = None,
                    image_ids: Iterable[str | int] = (), title: str | None = None,
                    tag_ids: Iterable[str | int] = ()) -> str:
        """A gallery, as a Stash scan makes one: of a folder's image files, or of a zip archive's
        members (each becomes an image read through its URL), plus any existing ``image_ids``.
        With neither folder nor zip it is a virtual gallery (empty unless given images)."""
        members = [self._int_id(i) for i in image_ids]
        if zip_path is not None:
            zip_path = str(zip_path)
            with zipfile.ZipFile(zip_path) as zf:
                names = sorted(n for n in zf.namelist() if not n.endswith("/"))
            members += [int(self.add_image(name, zip_path=zip_path)) for name in names]
        elif folder is not None:
            files = sorted(p for p in Path(folder).iterdir() if p.is_file())
            members += [int(self.add_image(p)) for p in files]
        path = str(zip_path or folder or "")
        with self.lock:
            tags = self._check_tag_ids(tag_ids)
            self._records("image", members)
            gid = self._new_id("gallery")
            zipped = None
            if zip_path is not None:
                zst = os.stat(zip_path)
                zipped = self._file_record(zip_path, zst.st_size, _rfc3339(zst.st_mtime), None)
            self.galleries[gid] = {
                "id": gid, "title": title, "details": None, "organized": False, "tags": tags,
                "performers": set(), "images": members, "folder": str(folder) if folder is not None else None,
                "zip": zipped, "file": {"path": path, "basename": os.path.basename(path), "size": 0},
            }
            for iid in members:
                self.images[iid]["galleries"].add(gid)
            self._gallery_tag_counts.update(tags)
            return str(gid)

    def add_performer(self, name: str, image: str | os.PathLike | bytes | None = None) -> str:
        """A performer; ``image`` (a file or its bytes) is served at /performer/<id>/image, else a silhouette."""
        with self.lock:
            pid = self._new_id("performer")
            self.performers[pid] = {"id": pid, "name": name, "image": image, "version": 1}
            return str(pid)

    def set_performer_image(self, performer_id: str | int, image: str | os.PathLike | bytes | None) -> None:
        """Replace a performer's image, as the Stash UI does: its image_path changes with it."""
        with self.lock:
            rec = self.performers[self._int_id(performer_id)]
            rec["image"], rec["version"] = image, rec["version"] + 1

    def performers_of(self, kind: str, item_id: str | int) -> set[str]:
        """The names of the item's performers."""
        with self.lock:
            rec = self._table(kind)[0][self._int_id(item_id)]
            return {self.performers[p]["name"] for p in rec.get("performers", ())}

    def set_item_performers(self, kind: str, item_id: str | int, names: Iterable[str]) -> None:
        """As the user would in Stash's UI: the item's performers become exactly these (by name)."""
        with self.lock:
            by_name = {p["name"]: pid for pid, p in self.performers.items()}
            self._table(kind)[0][self._int_id(item_id)]["performers"] = {by_name[n] for n in names}

    def _check_performer_ids(self, ids: Iterable[Any] | None) -> set[int]:
        found = {self._int_id(i) for i in ids or ()}
        missing = found - set(self.performers)
        if missing:
            raise GraphQLError(f"performer with id {min(missing)} not found")
        return found

    def performer_image(self, performer_id: str) -> tuple[str, bytes | None] | None:
        """(name, None) to serve a file, (name, bytes) for bytes, None when the performer is unknown;
        Stash's silhouette when the performer has no image."""
        with self.lock:
            rec = self.performers.get(int(performer_id))
            if rec is None:
                return None
            image = rec["image"]
        if image is None:
            return "silhouette.svg", SILHOUETTE
        if isinstance(image, bytes):
            return "performer.jpg", image
        return (str(image), None) if os.path.isfile(image) else None

    def set_plugin_settings(self, plugin_id: str, settings: Mapping[str, Any]) -> None:
        with self.lock:
            self.plugin_settings[plugin_id] = dict(settings)

    def set_ffmpeg_path(self, path: str | os.PathLike, ffprobe_path: str | os.PathLike | None = None) -> None:
        """Like the user filling in Settings > System > FFmpeg. ffprobe defaults to the sibling binary."""
        with self.lock:
            self.ffmpeg_path = str(path)
            if ffprobe_path is None:
                sibling = Path(path).with_name("ffprobe" + Path(path).suffix)
                ffprobe_path = sibling if sibling.exists() else ""
            self.ffprobe_path = str(ffprobe_path)

    # ---- inspection --------------------------------------------------------------------

    @staticmethod
    def _snapshot(rec: Record) -> Record:
        """A copy for tests: string ids like the API, `tag_ids` a set, no shared mutable state."""
        out = {k: v for k, v in rec.items() if k != "tags"}
        out.update(id=str(rec["id"]), tag_ids={str(t) for t in rec["tags"]}, file=dict(rec["file"]),
                   path=rec["file"]["path"])
        return out

    def scene(self, scene_id: str | int) -> Record:
        with self.lock:
            return self._snapshot(self.scenes[int(scene_id)])

    def image(self, image_id: str | int) -> Record:
        with self.lock:
            return self._snapshot(self.images[int(image_id)])

    def tag_by_name(self, name: str) -> Record | None:
        """The tag so named (case-insensitive), ids as strings; None if absent."""
        with self.lock:
            for tag in self.tags.values():
                if tag["name"].casefold() == name.casefold():
                    return {**tag, "id": str(tag["id"]), "parent_ids": [str(p) for p in tag["parent_ids"]],
                            "aliases": list(tag["aliases"])}
            return None

    def tags_of_scene(self, scene_id: str | int) -> set[str]:
        with self.lock:
            return {self.tags[t]["name"] for t in self.scenes[int(scene_id)]["tags"]}

    def tags_of_image(self, image_id: str | int) -> set[str]:
        with self.lock:
            return {self.tags[t]["name"] for t in self.images[int(image_id)]["tags"]}

    def gallery(self, gallery_id: str | int) -> Record:
        """A copy of the gallery: ``tag_ids``/``performer_ids`` string sets, member ``image_ids`` in order."""
        with self.lock:
            rec = self.galleries[int(gallery_id)]
            return {"id": str(rec["id"]), "title": rec["title"], "tag_ids": {str(t) for t in rec["tags"]},
                    "performer_ids": {str(p) for p in rec["performers"]}, "path": rec["file"]["path"],
                    "image_ids": [str(i["id"]) for i in self._gallery_images(rec)]}

    def tags_of_gallery(self, gallery_id: str | int) -> set[str]:
        with self.lock:
            return {self.tags[t]["name"] for t in self.galleries[int(gallery_id)]["tags"]}

    def reset_log(self) -> None:
        with self.lock:
            self.operations.clear()
            self.mutation_count = 0
            self.rejected_requests = 0
            self.media_requests.clear()

    # ---- GraphQL -------------------------------------------------------------------------

    def execute(self, query: str, variables: Mapping[str, Any] | None = None,
                operation_name: str | None = None) -> dict[str, Any]:
        """Run one GraphQL request atomically; returns the response body as Stash would."""
        return self.execute_request(query, variables, operation_name)[1]

    def execute_request(self, query: str, variables: Mapping[str, Any] | None = None,
                        operation_name: str | None = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body). Like Stash's gqlgen: a request that fails to parse, validate or
        coerce its variables gets 422 and no data; resolver errors get 200 with `errors`."""
        status, body = self._execute_request(query, variables, operation_name)
        with self.lock:
            name = self.operations[-1][0] if self.operations else operation_name
            listeners = list(self.listeners)
        for listener in listeners:
            listener(name, dict(variables or {}), status)
        return status, body

    def _execute_request(self, query: str, variables: Mapping[str, Any] | None,
                         operation_name: str | None) -> tuple[int, dict[str, Any]]:
        variables = dict(variables or {})
        with self.lock:
            try:
                document = parse(query)
            except GraphQLError as exc:
                self.operations.append((operation_name, variables))
                return 422, {"errors": [exc.formatted], "data": None}
            op = next((n for n in document.definitions if isinstance(n, OperationDefinitionNode)
                       and (operation_name is None or (n.name and n.name.value == operation_name))), None)
            if operation_name is None and op is not None and op.name:
                operation_name = op.name.value
            self.operations.append((operation_name, variables))
            if op is not None and op.operation == OperationType.MUTATION:
                self.mutation_count += 1
            errors = validate(self.schema, document)
            if errors:
                return 422, {"errors": [e.formatted for e in errors], "data": None}
            result = execute(self.schema, document, variable_values=variables, operation_name=operation_name,
                             field_resolver=self.field_resolver)
            if inspect.isawaitable(result):  # pragma: no cover - all resolvers are synchronous
                raise TypeError("fake Stash resolvers must be synchronous")
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
            if result.data is None and all(not e.path for e in result.errors):
                return 422, body
        return 200, body

    def _attach_resolvers(self) -> None:
        resolvers: dict[str, dict[str, Callable[..., Any]]] = {
            "Query": {
                "findScene": lambda _, info, id=None: self._one(self.scenes, id, self._scene_view),
                "findScenes": self._find_scenes,
                "findImage": lambda _, info, id=None: self._one(self.images, id, self._image_view),
                "findImages": self._find_images,
                "findGallery": lambda _, info, id: self._one(self.galleries, id, self._gallery_view),
                "findGalleries": self._find_galleries,
                "findTag": lambda _, info, id: self._one(self.tags, id, self._tag_view),
                "findTags": self._find_tags,
                "findPerformers": self._find_performers,
                "configuration": lambda _, info: self._configuration(),
                "jobQueue": lambda _, info: [j for j in self.jobs if j["status"] != "FINISHED"],
                "findJob": lambda _, info, input: next((j for j in self.jobs if j["id"] == input["id"]), None),
                "version": lambda _, info: {"version": STASH_VERSION, "hash": "fake", "build_time": _now()},
            },
            "Mutation": {
                "tagCreate": lambda _, info, input: self._tag_view(self._create_tag(input)),
                "bulkSceneUpdate": lambda _, info, input: self._bulk_update("scene", input),
                "bulkImageUpdate": lambda _, info, input: self._bulk_update("image", input),
                "bulkGalleryUpdate": lambda _, info, input: self._bulk_update("gallery", input),
                "sceneUpdate": lambda _, info, input: self._update("scene", input),
                "imageUpdate": lambda _, info, input: self._update("image", input),
                "sceneMarkerCreate": lambda _, info, input: self._create_marker(input),
                "sceneMarkersDestroy": lambda _, info, ids: self._destroy_markers(ids),
                "tagDestroy": lambda _, info, input: self._destroy_tag(input["id"]),
                "runPluginTask": self._run_plugin_task,
                "runPluginOperation": self._run_plugin_operation,
            },
        }
        for type_name, fields in resolvers.items():
            gql_type = self.schema.get_type(type_name)
            for field_name, fn in fields.items():
                gql_type.fields[field_name].resolve = fn

    # views: dicts for graphql-core's default resolver; callables are only run when selected

    def _one(self, table: dict[int, Record], id: Any, view: Callable[[Record], Any]) -> Any:
        rec = table.get(self._int_id(id)) if id is not None else None
        return view(rec) if rec else None

    def _tag_view(self, tag: Record) -> Record:
        tid = tag["id"]
        children = lambda: [t for t in self.tags.values() if tid in t["parent_ids"]]  # noqa: E731
        return {
            "id": str(tid), "name": tag["name"], "description": tag["description"],
            "aliases": list(tag["aliases"]), "ignore_auto_tag": tag["ignore_auto_tag"],
            "scene_count": lambda info, depth=None: self._count_with_descendants(self._scene_tag_counts, tid, depth),
            "image_count": lambda info, depth=None: self._count_with_descendants(self._image_tag_counts, tid, depth),
            "scene_marker_count": lambda info, depth=None: sum(
                tid == m["primary_tag_id"] or tid in m["tag_ids"] for m in self.markers),
            "gallery_count": lambda info, depth=None: self._count_with_descendants(
                self._gallery_tag_counts, tid, depth),
            "performer_count": 0, "studio_count": 0, "group_count": 0,
            "parents": lambda info: [self._tag_view(self.tags[p]) for p in tag["parent_ids"]],
            "children": lambda info: [self._tag_view(t) for t in children()],
            "parent_count": len(tag["parent_ids"]),
            "child_count": lambda info: len(children()),
        }

    def _count_with_descendants(self, counts: Counter[int], tid: int, depth: int | None) -> int:
        if not depth:
            return counts[tid]
        return sum(counts[t] for t in self._expand_tags([tid], depth))

    def _scene_view(self, scene: Record) -> Record:
        sid, file = scene["id"], scene["file"]
        base = f"{self.url}/scene/{sid}"
        return {
            "id": str(sid), "title": scene["title"], "details": scene["details"], "organized": scene["organized"],
            "tags": lambda info: [self._tag_view(self.tags[t]) for t in sorted(scene["tags"])],
            "files": [self._file_view(file, "VideoFile")],
            "paths": {"stream": f"{base}/stream", "screenshot": f"{base}/screenshot", "preview": f"{base}/preview",
                      "webp": f"{base}/webp", "vtt": f"{base}_thumbs.vtt", "sprite": f"{base}_sprite.jpg"},
            "scene_markers": lambda info: [self._marker_view(m) for m in self.markers if m["scene_id"] == sid],
            "performers": lambda info: self._performer_views(scene),
        }

    def _image_view(self, image: Record) -> Record:
        iid = image["id"]
        base = f"{self.url}/image/{iid}"
        return {
            "id": str(iid), "title": image["title"], "details": image["details"], "organized": image["organized"],
            "tags": lambda info: [self._tag_view(self.tags[t]) for t in sorted(image["tags"])],
            "visual_files": [self._file_view(image["file"], "ImageFile")],
            "paths": {"image": f"{base}/image", "thumbnail": f"{base}/thumbnail", "preview": None},
            "performers": lambda info: self._performer_views(image),
            "galleries": lambda info: [self._gallery_view(self.galleries[g]) for g in sorted(image["galleries"])],
        }

    def _gallery_images(self, gallery: Record) -> list[Record]:
        """The gallery's images in Stash's order: by path, then id."""
        members = [self.images[i] for i in gallery["images"] if i in self.images]
        return sorted(members, key=lambda r: (r["file"]["path"], r["id"]))

    def _gallery_view(self, gallery: Record) -> Record:
        gid = gallery["id"]
        zipped = gallery["zip"]
        folder = gallery["folder"]

        def cover(info: Any) -> Record | None:
            members = self._gallery_images(gallery)
            return self._image_view(members[0]) if members else None

        return {
            "id": str(gid), "title": gallery["title"], "details": gallery["details"],
            "organized": gallery["organized"],
            "tags": lambda info: [self._tag_view(self.tags[t]) for t in sorted(gallery["tags"])],
            "performers": lambda info: self._performer_views(gallery),
            "files": [self._file_view(zipped, "GalleryFile")] if zipped else [],
            "folder": {"id": str(gid), "path": folder, "zip_file": None, "mod_time": _now()} if folder else None,
            "image_count": lambda info: len(self._gallery_images(gallery)),
            "paths": {"cover": f"{self.url}/gallery/{gid}/cover", "preview": f"{self.url}/gallery/{gid}/preview"},
            "cover": cover,
        }


    def _performer_views(self, rec: Record) -> list[Record]:
        return [self._performer_view(self.performers[p]) for p in sorted(rec.get("performers", ()))]

    def _performer_view(self, performer: Record) -> Record:
        pid = performer["id"]
        query = "default=true" if performer["image"] is None else f"t={performer['version']}"
        return {
            "id": str(pid), "name": performer["name"], "image_path": f"{self.url}/performer/{pid}/image?{query}",
            "scene_count": lambda info: sum(pid in s["performers"] for s in self.scenes.values()),
            "image_count": lambda info: sum(pid in i["performers"] for i in self.images.values()),
        }

    def _file_view(self, file: Record, typename: str) -> Record:
        view = {**file, "__typename": typename, "id": str(file["id"]),
                "fingerprint": lambda info, type: next(
                    (f["value"] for f in file["fingerprints"] if f["type"] == type), None)}
        zipped = file.get("zip_file")
        view["zip_file"] = self._file_view(zipped, "BasicFile") if zipped else None
        if typename == "VideoFile":
            view.update(format=Path(file["path"]).suffix.lstrip(".") or "mp4", video_codec="h264",
                        audio_codec="aac", bit_rate=0)
        elif typename == "ImageFile":
            view.setdefault("format", Path(file["path"]).suffix.lstrip(".").lower() or "jpeg")
        return view

    def _marker_view(self, marker: Record) -> Record:
        return {**marker, "id": str(marker["id"]),
                "scene": lambda info: self._scene_view(self.scenes[marker["scene_id"]]),
                "primary_tag": lambda info: self._tag_view(self.tags[marker["primary_tag_id"]]),
                "tags": lambda info: [self._tag_view(self.tags[t]) for t in marker["tag_ids"]]}

    # finders

    @staticmethod
    def _int_id(value: Any) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise GraphQLError(f'strconv.Atoi: parsing "{value}": invalid syntax') from None

    def _expand_tags(self, ids: Iterable[Any], depth: int | None) -> set[int]:
        """Tag ids plus their descendants `depth` levels down (-1: all), as Stash's hierarchy filters."""
        found = {self._int_id(i) for i in ids}
        frontier, level = set(found), 0
        while frontier and depth and (depth < 0 or level < depth):
            frontier = {t["id"] for t in self.tags.values() if frontier & set(t["parent_ids"])} - found
            found |= frontier
            level += 1
        return found

    def _tags_predicate(self, crit: Mapping[str, Any]) -> Callable[[set[int]], bool]:
        mod, depth = crit["modifier"], crit.get("depth")
        if mod == "IS_NULL":
            return lambda tags: not tags
        if mod == "NOT_NULL":
            return lambda tags: bool(tags)
        values = crit.get("value") or []
        excluded = self._expand_tags(crit.get("excludes") or [], depth)
        if mod == "INCLUDES":
            wanted = self._expand_tags(values, depth)
            return lambda tags: (not values or bool(tags & wanted)) and not tags & excluded
        if mod == "INCLUDES_ALL":
            groups = [self._expand_tags([v], depth) for v in values]
            return lambda tags: all(tags & g for g in groups) and not tags & excluded
        if mod == "EXCLUDES":
            banned = self._expand_tags(values, depth) | excluded
            return lambda tags: not tags & banned
        raise GraphQLError(f"unsupported tags modifier {mod}")

    def _object_predicate(self, flt: Mapping[str, Any] | None) -> Callable[[Record], bool]:
        """SceneFilterType/ImageFilterType: id, title, path, tags; AND/OR/NOT sub-filters."""
        if not flt:
            return lambda rec: True
        checks: list[Callable[[Record], bool]] = []
        if flt.get("id"):
            id_test = _int_test(flt["id"])
            checks.append(lambda rec: id_test(rec["id"]))
        if flt.get("title"):
            title_test = _string_test(flt["title"])
            checks.append(lambda rec: title_test(rec["title"]))
        if flt.get("path"):
            path_test = _string_test(flt["path"])
            checks.append(lambda rec: path_test(rec["file"]["path"]))
        if flt.get("tags"):
            tag_pred = self._tags_predicate(flt["tags"])
            checks.append(lambda rec: tag_pred(rec["tags"]))
        if flt.get("galleries"):
            gallery_pred = self._ids_predicate(flt["galleries"])
            checks.append(lambda rec: gallery_pred(rec.get("galleries", set())))
        if flt.get("image_count"):
            count_test = _int_test(flt["image_count"])
            checks.append(lambda rec: count_test(len(self._gallery_images(rec))))
        if flt.get("is_zip") is not None:
            want_zip = bool(flt["is_zip"])
            checks.append(lambda rec: (rec.get("zip") is not None) == want_zip)
        if flt.get("performer_count"):
            count_test = _int_test(flt["performer_count"])
            checks.append(lambda rec: count_test(len(rec["performers"])))
        return self._combine(checks, flt, self._object_predicate)

    def _ids_predicate(self, crit: Mapping[str, Any]) -> Callable[[set[int]], bool]:
        """MultiCriterionInput over a set of related ids (an image's galleries)."""
        mod = crit["modifier"]
        values = {self._int_id(v) for v in crit.get("value") or []}
        excluded = {self._int_id(v) for v in crit.get("excludes") or []}
        tests: dict[str, Callable[[set[int]], bool]] = {
            "IS_NULL": lambda ids: not ids, "NOT_NULL": lambda ids: bool(ids),
            "INCLUDES": lambda ids: bool(ids & values) and not ids & excluded,
            "INCLUDES_ALL": lambda ids: values <= ids and not ids & excluded,
            "EXCLUDES": lambda ids: not ids & (values | excluded),
        }
        if mod not in tests:
            raise GraphQLError(f"unsupported multi-criterion modifier {mod}")
        return tests[mod]

    def _tag_predicate(self, flt: Mapping[str, Any] | None) -> Callable[[Record], bool]:
        if not flt:
            return lambda tag: True
        checks: list[Callable[[Record], bool]] = []
        if flt.get("name"):
            name_test = _string_test(flt["name"])
            checks.append(lambda t: name_test(t["name"]))
        if flt.get("aliases"):
            alias_test = _string_test(flt["aliases"])
            negative = flt["aliases"]["modifier"] in ("EXCLUDES", "NOT_EQUALS", "IS_NULL", "NOT_MATCHES_REGEX")
            combine = all if negative else any
            checks.append(lambda t: combine(alias_test(a) for a in t["aliases"] or [""]))
        if flt.get("parents"):
            parent_pred = self._tags_predicate(flt["parents"])
            checks.append(lambda t: parent_pred(set(t["parent_ids"])))
        return self._combine(checks, flt, self._tag_predicate)

    @staticmethod
    def _combine(checks: list[Callable[[Record], bool]], flt: Mapping[str, Any],
                 sub: Callable[[Any], Callable[[Record], bool]]) -> Callable[[Record], bool]:
        and_, or_, not_ = (sub(flt[k]) if flt.get(k) else None for k in ("AND", "OR", "NOT"))
        if len(checks) == 1 and and_ is or_ is not_ is None:
            return checks[0]

        def predicate(rec: Record) -> bool:
            ok = all(check(rec) for check in checks)
            if and_ is not None:
                ok = ok and and_(rec)
            if or_ is not None:
                ok = ok or or_(rec)
            if not_ is not None:
                ok = ok and not not_(rec)
            return ok
        return predicate

    @staticmethod
    def _page(items: list[Record], flt: Mapping[str, Any] | None, sort_keys: Mapping[str, Callable]) -> list[Record]:
        """Sort (items arrive in id order) and slice a FindFilterType page; per_page -1 is all."""
        flt = flt or {}
        sort, desc = flt.get("sort") or "id", flt.get("direction") == "DESC"
        if sort.startswith("random"):
            _, _, seed = sort.partition("_")
            random.Random(seed or None).shuffle(items)
        elif sort != "id" or desc:
            items.sort(key=sort_keys.get(sort, sort_keys["id"]), reverse=desc)
        per_page = flt.get("per_page")
        per_page = DEFAULT_PER_PAGE if per_page is None else per_page
        if per_page < 0:
            return items
        start = (max(flt.get("page") or 1, 1) - 1) * per_page
        return items[start:start + per_page]

    def _find(self, table: dict[int, Record], ids: list[str] | None, flt: Mapping[str, Any] | None,
              obj_filter: Mapping[str, Any] | None) -> tuple[int, list[Record]]:
        pred = self._object_predicate(obj_filter)
        low, high = _id_bounds(obj_filter)
        if ids is not None:
            keys = sorted({self._int_id(i) for i in ids})
        else:
            keys = list(table)  # ascending: ids are handed out in order
        keys = keys[bisect.bisect_left(keys, low):None if high is None else bisect.bisect_left(keys, high)]
        source = [table[i] for i in keys if i in table]
        q = ((flt or {}).get("q") or "").casefold()
        matches = [r for r in source if pred(r) and (not q or q in (r["title"] or "").casefold()
                                                      or q in r["file"]["path"].casefold())]
        keys = {"id": lambda r: r["id"], "path": lambda r: (r["file"]["path"], r["id"]),
                "title": lambda r: ((r["title"] or r["file"]["basename"]).casefold(), r["id"]),
                "filesize": lambda r: (r["file"]["size"], r["id"]),
                "duration": lambda r: (r["file"].get("duration", 0), r["id"])}
        return len(matches), self._page(matches, flt, keys)

    def _find_scenes(self, _: Any, info: Any, filter=None, scene_filter=None, ids=None) -> Record:
        count, page = self._find(self.scenes, ids, filter, scene_filter)
        return {"count": count, "scenes": [self._scene_view(s) for s in page],
                "duration": sum(s["file"]["duration"] for s in page), "filesize": sum(s["file"]["size"] for s in page)}

    def _find_images(self, _: Any, info: Any, filter=None, image_filter=None, ids=None) -> Record:
        count, page = self._find(self.images, ids, filter, image_filter)
        return {"count": count, "images": [self._image_view(i) for i in page],
                "megapixels": sum(i["file"]["width"] * i["file"]["height"] for i in page) / 1e6,
                "filesize": sum(i["file"]["size"] for i in page)}

    def _find_galleries(self, _: Any, info: Any, filter=None, gallery_filter=None, ids=None) -> Record:
        count, page = self._find(self.galleries, ids, filter, gallery_filter)
        return {"count": count, "galleries": [self._gallery_view(g) for g in page]}

    def _find_performers(self, _: Any, info: Any, filter=None, performer_filter=None, ids=None) -> Record:
        keys = sorted({self._int_id(i) for i in ids}) if ids is not None else list(self.performers)
        rows = [self.performers[k] for k in keys if k in self.performers]
        name = (performer_filter or {}).get("name")
        if name:
            name_test = _string_test(name)
            rows = [r for r in rows if name_test(r["name"])]
        sort_keys = {"id": lambda r: r["id"], "name": lambda r: (r["name"].casefold(), r["id"])}
        page = self._page(rows, filter, sort_keys)
        return {"count": len(rows), "performers": [self._performer_view(p) for p in page]}

    def _find_tags(self, _: Any, info: Any, filter=None, tag_filter=None, ids=None) -> Record:
        pred = self._tag_predicate(tag_filter)
        wanted = {self._int_id(i) for i in ids} if ids is not None else None
        q = ((filter or {}).get("q") or "").casefold()
        matches = [t for t in self.tags.values() if (wanted is None or t["id"] in wanted) and pred(t)
                   and (not q or q in t["name"].casefold() or any(q in a.casefold() for a in t["aliases"]))]
        keys = {"id": lambda t: t["id"], "name": lambda t: (t["name"].casefold(), t["id"]),
                "scenes_count": lambda t: (self._scene_tag_counts[t["id"]], t["id"]),
                "images_count": lambda t: (self._image_tag_counts[t["id"]], t["id"])}
        page = self._page(matches, filter, keys)
        return {"count": len(matches), "tags": [self._tag_view(t) for t in page]}

    def _configuration(self) -> Record:
        def plugins(info: Any, include: list[str] | None = None) -> dict[str, Any]:
            ids = self.plugin_settings if include is None else include
            return {p: dict(self.plugin_settings[p]) for p in ids if p in self.plugin_settings}
        return {"general": {"ffmpegPath": self.ffmpeg_path, "ffprobePath": self.ffprobe_path}, "plugins": plugins}

    # mutations: validate everything first, then change; a GraphQLError leaves data untouched

    def _check_tag_ids(self, ids: Iterable[Any] | None) -> set[int]:
        tags = {self._int_id(i) for i in ids or ()}
        missing = sorted(tags - self.tags.keys())
        if missing:
            raise GraphQLError(f"tag with id {missing[0]} not found")
        return tags

    def _name_owner(self, name: str) -> Record | None:
        folded = name.casefold()
        for tag in self.tags.values():
            if tag["name"].casefold() == folded or any(a.casefold() == folded for a in tag["aliases"]):
                return tag
        return None

    def _create_tag(self, data: Mapping[str, Any]) -> Record:
        name = (data.get("name") or "").strip()
        if not name:
            raise GraphQLError("tag name must not be blank")
        aliases = [a.strip() for a in data.get("aliases") or [] if a.strip()]
        for candidate in [name, *aliases]:
            owner = self._name_owner(candidate)
            if owner is not None:
                what = "name" if owner["name"].casefold() == candidate.casefold() else "alias"
                raise GraphQLError(f"tag with {what} '{candidate}' already exists (tag '{owner['name']}')")
        if len({a.casefold() for a in aliases} | {name.casefold()}) != len(aliases) + 1:
            raise GraphQLError(f"tag '{name}': aliases must be unique and differ from the name")
        parents = self._check_tag_ids(data.get("parent_ids"))
        children = self._check_tag_ids(data.get("child_ids"))
        tid = self._new_id("tag")
        tag = {"id": tid, "name": name, "aliases": aliases, "parent_ids": sorted(parents),
               "ignore_auto_tag": bool(data.get("ignore_auto_tag")), "description": data.get("description")}
        self.tags[tid] = tag
        for child in children:
            self.tags[child]["parent_ids"].append(tid)
        return tag

    def _table(self, kind: str) -> tuple[dict[int, Record], Counter[int], Callable[[Record], Record]]:
        if kind == "scene":
            return self.scenes, self._scene_tag_counts, self._scene_view
        if kind == "gallery":
            return self.galleries, self._gallery_tag_counts, self._gallery_view
        return self.images, self._image_tag_counts, self._image_view

    def _records(self, kind: str, ids: Iterable[Any]) -> list[Record]:
        table = self._table(kind)[0]
        out = []
        for raw in ids:
            rec = table.get(self._int_id(raw))
            if rec is None:
                raise GraphQLError(f"{kind} with id {raw} not found")
            out.append(rec)
        return out

    def _apply(self, kind: str, rec: Record, data: Mapping[str, Any], new_tags: set[int] | None) -> None:
        counts = self._table(kind)[1]
        for key in ("title", "details", "organized"):
            if key in data:
                rec[key] = data[key]
        if new_tags is not None and new_tags != rec["tags"]:
            counts.subtract(rec["tags"] - new_tags)
            counts.update(new_tags - rec["tags"])
            rec["tags"] = new_tags

    def _bulk_update(self, kind: str, data: Mapping[str, Any]) -> list[Record]:
        records = self._records(kind, data.get("ids") or [])
        spec = data.get("tag_ids")
        ids = self._check_tag_ids(spec.get("ids")) if spec else set()
        people = data.get("performer_ids")
        performer_ids = self._check_performer_ids(people.get("ids")) if people else set()
        for rec in records:
            new = None
            if spec:
                mode = spec["mode"]
                new = ids if mode == "SET" else rec["tags"] | ids if mode == "ADD" else rec["tags"] - ids
            if people:
                mode, had = people["mode"], rec.setdefault("performers", set())
                rec["performers"] = (
                    performer_ids if mode == "SET" else had | performer_ids if mode == "ADD" else had - performer_ids
                )
            self._apply(kind, rec, data, set(new) if new is not None else None)
        return [self._table(kind)[2](r) for r in records]

    def _update(self, kind: str, data: Mapping[str, Any]) -> Record:
        [rec] = self._records(kind, [data["id"]])
        tags = self._check_tag_ids(data["tag_ids"]) if data.get("tag_ids") is not None else None
        self._apply(kind, rec, data, tags)
        return self._table(kind)[2](rec)

    def set_item_details(self, kind: str, item_id: str | int, details: str | None) -> None:
        with self.lock:
            self._table(kind)[0][self._int_id(item_id)]["details"] = details

    def add_marker(self, scene_id: str | int, tag_id: str | int, seconds: float, end_seconds: float | None = None,
                   title: str = "") -> str:
        """A marker made by someone else (the user), as the Stash UI would create it."""
        with self.lock:
            data: dict[str, Any] = {"scene_id": scene_id, "primary_tag_id": tag_id, "seconds": seconds, "title": title}
            if end_seconds is not None:
                data["end_seconds"] = end_seconds
            return str(self._create_marker(data)["id"])

    def markers_of_scene(self, scene_id: str | int) -> list[Record]:
        """Markers of a scene as plain dicts, primary tag by name, sorted by start."""
        with self.lock:
            found = [{**m, "id": str(m["id"]), "tag": self.tags[m["primary_tag_id"]]["name"]}
                     for m in self.markers if m["scene_id"] == int(scene_id)]
        return sorted(found, key=lambda m: (m["seconds"], m["tag"]))

    def _create_marker(self, data: Mapping[str, Any]) -> Record:
        if "end_seconds" in data and _version_tuple(STASH_VERSION) < (0, 28):
            # Stash before 0.28 has no end_seconds in SceneMarkerCreateInput and rejects the request.
            raise GraphQLError('Variable "$input" got invalid value; Field "end_seconds" is not defined')
        [scene] = self._records("scene", [data["scene_id"]])
        primary = self._check_tag_ids([data["primary_tag_id"]]).pop()
        marker = {"id": self._new_id("marker"), "scene_id": scene["id"], "title": data["title"],
                  "seconds": data["seconds"], "end_seconds": data.get("end_seconds"), "primary_tag_id": primary,
                  "tag_ids": sorted(self._check_tag_ids(data.get("tag_ids")))}
        self.markers.append(marker)
        return self._marker_view(marker)

    def _destroy_markers(self, ids: Iterable[Any]) -> bool:
        wanted = {self._int_id(i) for i in ids}
        missing = sorted(wanted - {m["id"] for m in self.markers})
        if missing:
            raise GraphQLError(f"scene marker with id {missing[0]} not found")
        self.markers = [m for m in self.markers if m["id"] not in wanted]
        return True

    def _destroy_tag(self, raw_id: Any) -> bool:
        """Like Stash: the tag leaves every object and every tag it was a parent of."""
        tid = self._int_id(raw_id)
        if tid not in self.tags:
            raise GraphQLError(f"tag with id {tid} not found")
        del self.tags[tid]
        for kind in ("scene", "image", "gallery"):
            table, counts, _ = self._table(kind)
            for rec in table.values():
                if tid in rec["tags"]:
                    rec["tags"] = rec["tags"] - {tid}
            counts.pop(tid, None)
        for tag in self.tags.values():
            if tid in tag["parent_ids"]:
                tag["parent_ids"].remove(tid)
        self.markers = [m for m in self.markers if m["primary_tag_id"] != tid]
        for marker in self.markers:
            marker["tag_ids"] = [t for t in marker["tag_ids"] if t != tid]
        return True

    def delete_item(self, kind: str, item_id: str | int) -> None:
        """The user deletes a scene or image in Stash (tests)."""
        with self.lock:
            table, counts, _ = self._table(kind)
            rec = table.pop(int(item_id))
            counts.subtract(rec["tags"])
            if kind == "image":
                for gallery in self.galleries.values():
                    if rec["id"] in gallery["images"]:
                        gallery["images"].remove(rec["id"])
            if kind == "scene":
                self.markers = [m for m in self.markers if m["scene_id"] != rec["id"]]

    def set_item_tags(self, kind: str, item_id: str | int, names: Iterable[str]) -> None:
        """The user edits an item's tags in Stash's UI (tests): the tags so named, created if missing."""
        with self.lock:
            ids = set()
            for name in names:
                owner = self._name_owner(name) or self._create_tag({"name": name})
                ids.add(owner["id"])
            table = self._table(kind)[0]
            self._apply(kind, table[int(item_id)], {}, ids)

    def _run_plugin_task(self, _: Any, info: Any, plugin_id: str, task_name: str | None = None,
                         description: str | None = None, args_map: Mapping[str, Any] | None = None) -> str:
        job_id = str(self._new_id("job"))
        self.jobs.append({"id": job_id, "status": "READY", "addTime": _now(), "progress": None, "subTasks": None,
                          "description": description or f"Running plugin task: {task_name or plugin_id}",
                          "plugin_id": plugin_id, "task_name": task_name, "args_map": dict(args_map or {})})
        return job_id

    def _run_plugin_operation(self, _: Any, info: Any, plugin_id: str, args: Mapping[str, Any] | None = None) -> Any:
        """Like Stash: run the plugin at once with the task's stdin JSON and answer its ``output``;
        its ``error`` becomes the GraphQL error. The plugin calls back into this server, so the
        request lock (held once, by this thread) is let go while it runs."""
        if plugin_id != "ai_tagger":
            raise GraphQLError(f"plugin {plugin_id} not found")
        stdin = json.dumps({"server_connection": self.server_connection(), "args": dict(args or {})})
        command = [self.plugin_python, str(Path(self.plugin_dir) / "ai_tagger")]
        self.lock.release()
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=self._config_dir,
                                  timeout=300)
        finally:
            self.lock.acquire()
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            return done.stdout
        if answer.get("error"):
            raise GraphQLError(str(answer["error"]))
        return answer.get("output")

    # ---- HTTP helpers --------------------------------------------------------------------

    def authorized(self, headers: Mapping[str, str]) -> bool:
        if secrets.compare_digest(headers.get("ApiKey", ""), self.api_key):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie is just unauthorized
            return False
        morsel = cookie.get(self.session_cookie["Name"])
        return morsel is not None and secrets.compare_digest(morsel.value, self.session_cookie["Value"])

    def media_source(self, kind: str, obj_id: str, what: str) -> tuple[str, bytes | None] | None:
        """(name, None) to serve the file `name`, or (name, bytes) for bytes in memory: a zip
        member, or a scene screenshot made by ffmpeg. None when there is nothing to serve."""
        with self.lock:
            if kind == "gallery":  # its cover: the first image
                gallery = self.galleries.get(int(obj_id))
                members = self._gallery_images(gallery) if gallery else []
                if not members:
                    return None
                kind, obj_id, what = "image", str(members[0]["id"]), "image"
            rec = (self.scenes if kind == "scene" else self.images).get(int(obj_id))
            if rec is None:
                return None
            media, zipped = rec["media"], rec.get("zip")
            duration = rec["file"].get("duration") or 0
        if zipped:
            with zipfile.ZipFile(zipped) as zf:
                return media, zf.read(media)
        if not os.path.isfile(media):
            return None
        if what == "screenshot":
            shot = self._screenshot(media, duration)
            return ("screenshot.jpg", shot) if shot else None
        return media, None

    def _screenshot(self, media: str, duration: float) -> bytes | None:
        """A JPEG frame from 20% in, as Stash's generated screenshot would be."""
        key = (media, duration)
        if key not in self._screenshots:
            cmd = [self.ffmpeg_path or shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-ss",
                   f"{duration * 0.2:.3f}", "-i", media, "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "pipe:1"]
            try:
                self._screenshots[key] = subprocess.run(cmd, capture_output=True, timeout=60).stdout or None
            except (OSError, subprocess.SubprocessError):
                self._screenshots[key] = None
        return self._screenshots[key]


_MEDIA_ROUTE = re.compile(r"^/(scene|image|gallery)/(\d+)/(stream|screenshot|image|thumbnail|cover)$")
_PERFORMER_ROUTE = re.compile(r"^/performer/(\d+)/image$")
SILHOUETTE = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><circle cx="50" cy="35" r="20"/>'
              b'<rect x="20" y="60" width="60" height="40"/></svg>')
"""What Stash serves for a performer without an image (its image_path ends in default=true)."""
_CHUNK = 64 * 1024


def _make_handler(stash: FakeStash) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Routes /graphql and the media URLs; every request must carry the session or ApiKey."""

        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's
        # delayed ACK, ~40 ms a call that Stash's own server does not cost.
        disable_nagle_algorithm = True
        server_version = "FakeStash"
        timeout = 120  # idle keep-alive connections end by themselves

        def setup(self) -> None:
            super().setup()
            with stash.lock:
                stash._connections.add(self.connection)

        def finish(self) -> None:
            with stash.lock:
                stash._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json",
                  headers: Mapping[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _auth(self) -> bool:
            if stash.authorized(self.headers):
                return True
            with stash.lock:
                stash.rejected_requests += 1
            self._send(401, b'{"error":"unauthorized"}')
            return False

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._auth():
                return
            if self.path.split("?")[0] != "/graphql":
                return self._send(404, b"not found", "text/plain")
            try:
                req = json.loads(body or b"{}")
                query = req["query"]
            except (ValueError, KeyError, TypeError):
                return self._send(400, b'{"errors":[{"message":"json body could not be decoded"}]}')
            status, result = stash.execute_request(query, req.get("variables"), req.get("operationName"))
            self._send(status, json.dumps(result).encode())

        def do_GET(self) -> None:  # noqa: N802
            if stash.web is not None and stash.web(self):
                return
            if not self._auth():
                return
            path = self.path.split("?")[0]
            match = _MEDIA_ROUTE.match(path)
            performer = _PERFORMER_ROUTE.match(path)
            if performer:
                with stash.lock:
                    stash.media_requests[path] += 1
                found = stash.performer_image(performer[1])
                if found is None:
                    return self._send(404, b"performer not found", "text/plain")
                name, data = found
                ctype = mimetypes.guess_type(name)[0] or "image/jpeg"
                return self._serve_file(name, ctype) if data is None else self._send(200, data, ctype)
            if not match:
                return self._send(404, b"not found", "text/plain")
            with stash.lock:
                stash.media_requests[path] += 1
            source = stash.media_source(match[1], match[2], match[3])
            if source is None:
                return self._send(404, b"media not found", "text/plain")
            name, data = source
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if data is None:
                return self._serve_file(name, ctype)
            self._send(200, data, ctype)

        do_HEAD = do_GET

        def _serve_file(self, file_path: str, ctype: str) -> None:
            """Whole file, or one byte range (206) as ffmpeg asks for when it seeks over HTTP."""
            size = os.path.getsize(file_path)
            start, end, status = 0, size - 1, 200
            header = self.headers.get("Range", "")
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
            if header and match and (match[1] or match[2]):
                if match[1]:
                    start = int(match[1])
                    end = min(int(match[2]), size - 1) if match[2] else size - 1
                else:
                    start = max(size - int(match[2]), 0)
                if start >= size or start > end:
                    return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                with open(file_path, "rb") as fh:
                    fh.seek(start)
                    remaining = end - start + 1
                    while remaining > 0:
                        chunk = fh.read(min(_CHUNK, remaining))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # ffmpeg drops connections when it seeks

    return Handler
