"""The bundled Stash server with Stash's real web UI in front of it, for the browser tests.

:class:`StashWithUI` is :class:`FakeStash` executing Stash's *real* schema (``../shared/stash-schema``)
instead of the hand-written subset: every document the real UI sends is validated as Stash would,
fields the fake holds data for come from the same resolvers as in every other test, and any other
field gets a typed default (``""``, ``0``, ``false``, ``[]``, an empty object, the enum's first
value; ``null`` where the type allows it). It also answers what the UI asks at start the way
Stash's server does: ``systemStatus`` OK, ``configuration`` with a kept ``ui`` map, ``plugins`` and
``pluginTasks`` from ``ai_tagger.yml``, ``configurePlugin``, ``configureUI``, and ``runPluginTask``
with the task's ``defaultArgs``. The subset server stays what every other test and the demo use
(they must run without ``../shared``).

Its web side routes like Stash (``internal/api/server.go``): the built UI from a folder (``X`` from
``X.gz`` with ``Content-Encoding: gzip`` when only that exists), ``index.html`` for every other
path, ``/plugin/<id>/javascript`` and ``/css`` from the manifest's ``ui`` section, **404 for
anything else under /plugin/**, ``/css``, ``/javascript`` and ``/customlocales`` for the user's
customisations, and a graphql-ws websocket on ``/graphql`` that acknowledges and stays quiet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
import struct
import tarfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from graphql import (
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    build_schema,
    is_abstract_type,
    is_enum_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)

from tests.servers.stash_server import REPO_ROOT, FakeStash, Record

SHARED_NAME = "shared"
UI_BUILD = ("stash-ui", "stash-ui-build.tgz")
SCHEMA_DIR = "stash-schema"
MANIFEST = REPO_ROOT / "ai_tagger.yml"
PLUGIN_ID = "ai_tagger"
_MISSING = object()
_THUMBS_VTT = re.compile(r"^/scene/\d+_thumbs\.vtt$")
_PERFORMER_IMAGE = re.compile(r"^/performer/(\d+)/image$")
_SCALAR_DEFAULTS: dict[str, Any] = {
    "String": "", "ID": "0", "Int": 0, "Int64": 0, "Float": 0.0, "Boolean": False, "Map": {}, "BoolMap": {},
    "PluginConfigMap": {}, "Time": "1970-01-01T00:00:00Z", "Timestamp": "1970-01-01T00:00:00Z",
}
DEFAULT_UI: dict[str, Any] = {"frontPageContent": [], "lastNoteSeen": 99999999}
"""What a user who has seen the release notes and kept an empty front page has stored."""
DEFAULT_MENU = ["scenes", "images", "groups", "markers", "galleries", "performers", "studios", "tags"]


def shared_dir() -> Path | None:
    """``../shared`` beside the clone (CI), else ``/work/shared`` (a worktree nested deeper)."""
    for candidate in (REPO_ROOT.parent / SHARED_NAME, Path("/work") / SHARED_NAME):
        if (candidate / SCHEMA_DIR / "schema.graphql").is_file():
            return candidate
    return None


def ui_build() -> Path | None:
    shared = shared_dir()
    build = shared.joinpath(*UI_BUILD) if shared else None
    return build if build and build.is_file() else None


def unpack_ui(target: Path) -> Path:
    """Unpack Stash's built UI into ``target`` (a temporary folder: never into the repository)."""
    build = ui_build()
    if build is None:
        raise FileNotFoundError("Stash's UI build (../shared/stash-ui/stash-ui-build.tgz) is not available")
    with tarfile.open(build) as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: refuse paths leaving target
            archive.extractall(target, filter="data")
        else:  # pragma: no cover - older Pythons; the archive is our own shared fixture
            archive.extractall(target)  # noqa: S202
    return target


@lru_cache(maxsize=1)
def real_schema_sdl() -> str:
    shared = shared_dir()
    if shared is None:
        raise FileNotFoundError("Stash's schema (../shared/stash-schema) is not available")
    folder = shared / SCHEMA_DIR
    parts = [folder / "schema.graphql", *sorted((folder / "types").glob("*.graphql"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in parts)


def _typed_default(schema: GraphQLSchema, gql_type: Any) -> Any:
    """What a field the fake holds no data for answers: null if allowed, else its type's zero."""
    if not is_non_null_type(gql_type):
        return None
    inner = gql_type.of_type
    if is_list_type(inner):
        return []
    if is_enum_type(inner):
        return next(iter(inner.values))
    if is_object_type(inner):
        return {}
    if is_abstract_type(inner):
        return {"__typename": schema.get_possible_types(inner)[0].name}
    return _SCALAR_DEFAULTS.get(inner.name, "")


def load_manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


class StashWithUI(FakeStash):
    """FakeStash on the real schema, plus Stash's web routes for its real UI in ``ui_dir``."""

    def __init__(self, ui_dir: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.field_resolver = self._resolve_field
        self.ui_dir = ui_dir
        self.web = self._serve_web
        self.manifest = load_manifest()
        self.ui_config: dict[str, Any] = dict(DEFAULT_UI)
        self.plugin_enabled = True
        self.web_requests: list[tuple[str, int]] = []

    def __enter__(self) -> StashWithUI:
        self.start()
        return self

    def _build_schema(self) -> GraphQLSchema:
        return build_schema(real_schema_sdl())

    def _resolve_field(self, source: Any, info: Any, **args: Any) -> Any:
        if source is not None:
            if isinstance(source, Mapping):
                value = source.get(info.field_name, _MISSING)
            else:
                value = getattr(source, info.field_name, _MISSING)
            if value is not _MISSING:
                return value(info, **args) if callable(value) else value
        return _typed_default(self.schema, info.return_type)

    # ---- what the UI asks ------------------------------------------------------------------

    def _attach_resolvers(self) -> None:
        super()._attach_resolvers()
        resolvers = {
            "Query": {
                "systemStatus": lambda _, info: {"status": "OK", "appSchema": 75, "databaseSchema": 75,
                                                 "os": "linux", "configPath": self._config_dir},
                "plugins": lambda _, info: [self._plugin_view()],
                "pluginTasks": lambda _, info: self._plugin_view()["tasks"],
            },
            "Mutation": {
                "configurePlugin": self._configure_plugin,
                "configureUI": self._configure_ui,
                "configureUISetting": self._configure_ui_setting,
                "setPluginsEnabled": self._set_plugins_enabled,
            },
        }
        for type_name, fields in resolvers.items():
            gql_type = self.schema.get_type(type_name)
            assert isinstance(gql_type, GraphQLNamedType)
            for field_name, fn in fields.items():
                gql_type.fields[field_name].resolve = fn  # type: ignore[attr-defined]

    def _configuration(self) -> Record:
        config = super()._configuration()
        config["general"] = {**config["general"], "databasePath": "stash-go.sqlite", "parallelTasks": 1}
        config["interface"] = {"menuItems": list(DEFAULT_MENU), "language": "en-GB", "noBrowser": True}
        config["ui"] = dict(self.ui_config)
        return config

    def _plugin_view(self) -> Record:
        """``Plugin`` as Stash's server builds it from the manifest (``pkg/plugin/config.go``)."""
        m = self.manifest
        plugin: Record = {}
        ui = m.get("ui") or {}
        base = f"{self.url}/plugin/{PLUGIN_ID}"
        plugin.update({
            "id": PLUGIN_ID, "name": m["name"], "description": m.get("description"), "url": m.get("url"),
            "version": m.get("version"), "enabled": self.plugin_enabled, "requires": ui.get("requires") or [],
            "tasks": [{"name": t["name"], "description": t.get("description"), "plugin": plugin}
                      for t in m.get("tasks") or []],
            "hooks": [{"name": h["name"], "description": h.get("description"), "hooks": h.get("triggeredBy"),
                       "plugin": plugin} for h in m.get("hooks") or []],
            "settings": [{"name": key, "display_name": s.get("displayName"), "description": s.get("description"),
                          "type": s.get("type", "STRING")} for key, s in (m.get("settings") or {}).items()],
            "paths": {"javascript": [f"{base}/javascript"] if ui.get("javascript") else None,
                      "css": [f"{base}/css"] if ui.get("css") else None},
        })
        return plugin

    def _configure_plugin(self, _: Any, info: Any, plugin_id: str, input: Mapping[str, Any]) -> dict[str, Any]:  # noqa: A002
        if plugin_id != PLUGIN_ID:
            raise GraphQLError(f"plugin {plugin_id} not found")
        self.plugin_settings[plugin_id] = dict(input)
        return dict(input)

    def _configure_ui(self, _: Any, info: Any, input: Mapping[str, Any] | None = None,  # noqa: A002
                      partial: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if input is not None:
            self.ui_config = dict(input)
        if partial:
            self.ui_config.update(partial)
        return dict(self.ui_config)

    def _configure_ui_setting(self, _: Any, info: Any, key: str, value: Any = None) -> dict[str, Any]:
        self.ui_config[key] = value
        return dict(self.ui_config)

    def _set_plugins_enabled(self, _: Any, info: Any, enabledMap: Mapping[str, bool]) -> bool:  # noqa: N803
        if PLUGIN_ID in enabledMap:
            self.plugin_enabled = bool(enabledMap[PLUGIN_ID])
        return True

    def _run_plugin_task(self, _: Any, info: Any, plugin_id: str, task_name: str | None = None,
                         description: str | None = None, args_map: Mapping[str, Any] | None = None) -> str:
        """Like Stash: the named task's ``defaultArgs`` under the arguments sent (the UI sends none)."""
        task = next((t for t in self.manifest.get("tasks") or [] if t["name"] == task_name), None)
        if task_name is not None and task is None:
            raise GraphQLError(f"task {task_name} not found for plugin {plugin_id}")
        args = {**((task or {}).get("defaultArgs") or {}), **dict(args_map or {})}
        return super()._run_plugin_task(_, info, plugin_id, task_name, description, args)

    # ---- the web side ------------------------------------------------------------------------

    def _serve_web(self, handler: Any) -> bool:
        path = handler.path.split("?")[0]
        if path == "/graphql":
            if handler.headers.get("Upgrade", "").lower() == "websocket":
                _websocket(handler)
                return True
            return False
        if _THUMBS_VTT.match(path):  # the scrubber's sprite index: Stash generates it; none here yet
            handler._send(200, b"WEBVTT\n\n", "text/vtt")
            return True
        performer = _PERFORMER_IMAGE.match(path)
        if performer:
            handler._send(*self._performer_image(performer[1]))
            return True
        if self.ui_dir is None or path.startswith(("/scene/", "/image/")):
            return False
        status, body, ctype, headers = self._web_response(path)
        with self.lock:
            self.web_requests.append((path, status))
        handler._send(status, body, ctype, headers)
        return True

    def _performer_image(self, performer_id: str) -> tuple[int, bytes, str]:
        """Stash's placeholder portrait for a performer without a picture (all of ours): a silhouette."""
        with self.lock:
            known = int(performer_id) in self.performers
        if not known:
            return 404, b"performer not found", "text/plain"
        svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40"><rect width="40" height="40" '
               'fill="#5c7080"/><circle cx="20" cy="15" r="8" fill="#e1e8ed"/><ellipse cx="20" cy="36" rx="14" '
               'ry="10" fill="#e1e8ed"/></svg>')
        return 200, svg.encode(), "image/svg+xml"

    def _web_response(self, path: str) -> tuple[int, bytes, str, dict[str, str]]:
        assert self.ui_dir is not None
        if path.startswith("/plugin/"):
            return self._plugin_asset(path)
        custom = {"/css": (b"", "text/css"), "/javascript": (b"", "text/javascript"),
                  "/customlocales": (b"{}", "application/json")}
        if path in custom:
            return 200, *custom[path], {}
        relative = path.lstrip("/")
        file = (self.ui_dir / relative).resolve()
        inside = file.is_relative_to(self.ui_dir.resolve()) and relative
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if inside and file.is_file():
            return 200, file.read_bytes(), ctype, {}
        zipped = file.with_name(file.name + ".gz")
        if inside and zipped.is_file():
            return 200, zipped.read_bytes(), ctype, {"Content-Encoding": "gzip"}
        return 200, (self.ui_dir / "index.html").read_bytes(), "text/html; charset=utf-8", {}

    def _plugin_asset(self, path: str) -> tuple[int, bytes, str, dict[str, str]]:
        """``/plugin/<id>/javascript`` and ``/css``: the manifest's ``ui`` files, concatenated in order."""
        parts = path.split("/")
        ui = self.manifest.get("ui") or {}
        kinds = {"javascript": "text/javascript", "css": "text/css"}
        if len(parts) == 4 and parts[2] == PLUGIN_ID and parts[3] in kinds and ui.get(parts[3]):
            body = b"\n".join((REPO_ROOT / name).read_bytes() for name in ui[parts[3]])
            return 200, body, kinds[parts[3]], {}
        if len(parts) > 4 and parts[2] == PLUGIN_ID and parts[3] == "assets":
            asset = self._plugin_asset_file("/".join(parts[4:]), ui.get("assets") or {})
            if asset is not None:
                return 200, asset.read_bytes(), mimetypes.guess_type(asset.name)[0] or "application/octet-stream", {}
        return 404, b"404 page not found\n", "text/plain; charset=utf-8", {}

    @staticmethod
    def _plugin_asset_file(relative: str, assets: Mapping[str, str]) -> Path | None:
        """``ui.assets`` maps URL prefixes to folders in the plugin; nothing outside them is served."""
        for prefix, folder in assets.items():
            prefix = prefix.strip("/")
            if prefix and relative != prefix and not relative.startswith(prefix + "/"):
                continue
            root = (REPO_ROOT / folder).resolve()
            file = (root / relative[len(prefix):].lstrip("/")).resolve()
            if file.is_relative_to(root) and file.is_file():
                return file
        return None


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _websocket(handler: Any) -> None:
    """graphql-ws (``graphql-transport-ws``): acknowledge, answer pings, never publish an event.
    Stash's UI subscribes to job and log updates; quiet is what an idle Stash sends."""
    key = handler.headers.get("Sec-WebSocket-Key", "")
    accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
    handler.send_response(101)
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept)
    handler.send_header("Sec-WebSocket-Protocol", "graphql-transport-ws")
    handler.end_headers()
    handler.close_connection = True
    reader, writer = handler.rfile, handler.wfile
    try:
        while True:
            head = reader.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", reader.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", reader.read(8))[0]
            mask = reader.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(reader.read(length)))
            if opcode == 8:
                return
            if opcode != 1:
                continue
            kind = json.loads(payload).get("type")
            reply = {"connection_init": "connection_ack", "ping": "pong"}.get(kind)
            if reply:
                data = json.dumps({"type": reply}).encode()
                writer.write(bytes([0x81, len(data)]) + data)
                writer.flush()
    except (OSError, ValueError):
        return
