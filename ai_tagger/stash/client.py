"""A small GraphQL client for Stash: one HTTP session, explicit documents, paged reads.

Authenticates with the session cookie Stash hands the plugin, or an ``ApiKey`` header when run
from the command line. Reads are paged by id (keyset), so items that get tagged during a run
never shift the pages and a 100,000-scene library streams in constant memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from ai_tagger import PLUGIN_ID
from ai_tagger.errors import StashError
from ai_tagger.retry import PooledSessions, RetryPolicy
from ai_tagger.stash import queries
from ai_tagger.stash.models import (
    CastItem,
    Item,
    ItemState,
    ItemUpdate,
    Performer,
    SceneMarker,
    SceneMarks,
    ServerConnection,
    Tag,
)

PAGE_SIZE = 100
TAG_PAGE_SIZE = 1000
TIMEOUT = (5, 60)
RETRY_STATUSES = (502, 503, 504)


class StashClient:
    def __init__(self, connection: ServerConnection, *, api_key: str | None = None) -> None:
        self.base_url = connection.base_url
        self.url = f"{self.base_url}/graphql"
        self._plain: dict[str, int] = {}
        self._headers = {"Accept": "application/json"}
        self._cookies: dict[str, str] = {}
        key = api_key or connection.api_key
        if key:
            self._headers["ApiKey"] = key
        if connection.session_cookie and connection.session_cookie.value:
            self._cookies[connection.session_cookie.name] = connection.session_cookie.value
        self._sessions = PooledSessions(
            lambda: RetryPolicy.create(retries=3, statuses=RETRY_STATUSES, backoff=0.3),
            headers=self._headers,
            cookies=self._cookies,
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a plain HTTP GET (stream and image URLs) as this client."""
        headers = {k: v for k, v in self._headers.items() if k == "ApiKey"}
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        return headers

    def session(self) -> requests.Session:
        """This thread's pooled session (requests.Session is not thread-safe), with the shared retry policy."""
        return self._sessions.get()

    def execute(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.session().post(
                self.url, json={"query": document, "variables": variables or {}}, timeout=TIMEOUT
            )
        except (requests.RequestException, ValueError) as exc:  # urllib3's LocationParseError is a ValueError
            raise StashError(f"cannot reach Stash at {self.url}: {_why(exc)}") from None
        if response.status_code in (401, 403):
            raise StashError(f"Stash refused the plugin's credentials (HTTP {response.status_code})")
        try:
            body = response.json()
        except ValueError:
            raise StashError(f"Stash answered HTTP {response.status_code} without JSON") from None
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in body["errors"])
            raise StashError(f"Stash rejected the request: {messages}")
        if not response.ok:
            raise StashError(f"Stash answered HTTP {response.status_code}")
        return body.get("data") or {}

    def download(self, url: str) -> bytes:
        """A file Stash serves (image, stream), with this client's credentials."""
        try:
            response = self.session().get(url, headers=self.auth_headers, timeout=(5, 120))
        except (requests.RequestException, ValueError) as exc:
            raise StashError(f"cannot download from Stash: {_why(exc)}") from None
        if not response.ok:
            raise StashError(f"Stash answered HTTP {response.status_code} for {url.split('?')[0]}")
        return response.content

    def version(self) -> str:
        """Stash's version for the log, or "unknown": a run never depends on it."""
        try:
            return str(self.execute(queries.VERSION)["version"]["version"])
        except (StashError, KeyError, TypeError):
            return "unknown"

    def plugin_settings(self) -> tuple[dict[str, Any], str | None]:
        """This plugin's settings map and Stash's configured ffmpeg path."""
        data = self.execute(queries.CONFIGURATION, {"include": [PLUGIN_ID]})["configuration"]
        plugins = data.get("plugins") or {}
        return plugins.get(PLUGIN_ID) or {}, (data.get("general") or {}).get("ffmpegPath") or None

    def all_tags(self) -> list[Tag]:
        """The whole tag vocabulary, a page at a time, with usage counts where Stash gives them."""
        try:
            return self._tag_pages(queries.FIND_TAGS_WITH_USE)
        except StashError:
            return self._tag_pages(queries.FIND_TAGS)

    def _tag_pages(self, document: str) -> list[Tag]:
        tags: list[Tag] = []
        page = 1
        while True:
            data = self.execute(
                document, {"filter": {"page": page, "per_page": TAG_PAGE_SIZE, "sort": "id", "direction": "ASC"}}
            )["findTags"]
            tags.extend(Tag.model_validate(t) for t in data["tags"])
            if len(data["tags"]) < TAG_PAGE_SIZE or len(tags) >= data["count"]:
                return tags
            page += 1

    def tag_named(self, name: str) -> Tag | None:
        """The tag whose name or alias is ``name`` (Stash compares case-insensitively)."""
        criterion = {"value": name, "modifier": "EQUALS"}
        data = self.execute(
            queries.FIND_TAGS,
            {"filter": {"per_page": 1}, "tag_filter": {"name": criterion, "OR": {"aliases": criterion}}},
        )["findTags"]
        return Tag.model_validate(data["tags"][0]) if data["tags"] else None

    def create_tag(self, name: str, *, parent_ids: list[str] | None = None, ignore_auto_tag: bool = True) -> Tag:
        payload: dict[str, Any] = {"name": name, "ignore_auto_tag": ignore_auto_tag}
        if parent_ids:
            payload["parent_ids"] = parent_ids
        return Tag.model_validate(self.execute(queries.TAG_CREATE, {"input": payload})["tagCreate"])

    def _find(self, kind: str, variables: dict[str, Any]) -> dict[str, Any]:
        """``findScenes``/``findImages``; without content fingerprints if the server fails on them."""
        kind_queries = _KINDS[kind]
        while True:
            document = kind_queries.documents[self._plain.get(kind, 0)]
            try:
                return self.execute(document, variables)[kind_queries.field]
            except StashError:
                if document is kind_queries.documents[-1]:
                    raise
                self._plain[kind] = self._plain.get(kind, 0) + 1

    def count_untagged(self, kind: str) -> int:
        return int(self._find(kind, {"filter": {"per_page": 1}, _KINDS[kind].filter_key: _untagged()})["count"])

    def untagged(self, kind: str, *, page_size: int = PAGE_SIZE) -> Iterator[Item]:
        """Items with no tags at all, in id order, one page in memory at a time."""
        return self._items(kind, _untagged(), page_size)

    def without_performers(self, kind: str, *, page_size: int = PAGE_SIZE) -> Iterator[Item]:
        """Items with no performers, in id order (``identify_performers``)."""
        return self._items(kind, {"performer_count": {"value": 0, "modifier": "EQUALS"}}, page_size)

    def _items(self, kind: str, base_filter: dict[str, Any], page_size: int) -> Iterator[Item]:
        """Items matching ``base_filter``, in id order, one page in memory at a time.

        Pages are cut by id (``id > last seen``) rather than by page number, because items
        tagged during the run leave the "untagged" set and would shift numbered pages. A server
        that ignores the id criterion is detected (no new ids) and paged by number instead.
        """
        kind_queries = _KINDS[kind]
        after, page, by_number = 0, 1, False
        while True:
            item_filter = dict(base_filter)
            if after and not by_number:
                item_filter = {**item_filter, "id": {"value": after, "modifier": "GREATER_THAN"}}
            data = self._find(
                kind,
                {
                    "filter": {"page": page, "per_page": page_size, "sort": "id", "direction": "ASC"},
                    kind_queries.filter_key: item_filter,
                },
            )
            rows = data[kind_queries.rows]
            fresh = [row for row in rows if int(row["id"]) > after]
            for row in fresh:
                yield kind_queries.build(row)
            if len(rows) < page_size:
                return
            if by_number:
                page += 1
            elif not fresh:
                by_number, page = True, 2
            after = max([after, *(int(row["id"]) for row in fresh)])

    def performers(self, *, page_size: int = TAG_PAGE_SIZE) -> Iterator[Performer]:
        """Every performer with their image URL, in id order, a page at a time."""
        page = 1
        while True:
            data = self.execute(
                queries.FIND_PERFORMERS,
                {"filter": {"page": page, "per_page": page_size, "sort": "id", "direction": "ASC"}},
            )["findPerformers"]
            rows = data["performers"]
            yield from (Performer.model_validate(row) for row in rows)
            if len(rows) < page_size:
                return
            page += 1

    def cast(self, kind: str, performer_count: int, *, page_size: int = PAGE_SIZE) -> Iterator[CastItem]:
        """Scenes or images with exactly ``performer_count`` performers, with the picture Stash serves
        for each (a scene's screenshot, an image's file), in id order."""
        document, field, rows_key, filter_key, picture = (
            (queries.SCENE_CAST, "findScenes", "scenes", "scene_filter", "screenshot")
            if kind == "scene"
            else (queries.IMAGE_CAST, "findImages", "images", "image_filter", "image")
        )
        page = 1
        while True:
            data = self.execute(
                document,
                {
                    "filter": {"page": page, "per_page": page_size, "sort": "id", "direction": "ASC"},
                    filter_key: {"performer_count": {"value": performer_count, "modifier": "EQUALS"}},
                },
            )[field]
            rows = data[rows_key]
            for row in rows:
                yield CastItem(
                    kind=kind,
                    id=str(row["id"]),
                    performers=row.get("performers") or [],
                    picture=(row.get("paths") or {}).get(picture),
                )
            if len(rows) < page_size:
                return
            page += 1

    def update_item(self, kind: str, item_id: str, update: ItemUpdate) -> None:
        """One mutation for the whole update: the item is written whole or not at all.

        Adds and ``details`` go in one ``bulk<Kind>Update`` input; when there are removals too, a
        second aliased field of the same mutation takes them, so it is still one request.
        Removals only ever name what this plugin added itself.
        """
        if not update:
            return
        add: dict[str, Any] = {"ids": [item_id]}
        remove: dict[str, Any] = {"ids": [item_id]}
        for name, (added, removed) in (
            ("tag_ids", (update.add_tags, update.remove_tags)),
            ("performer_ids", (update.add_performers, update.remove_performers)),
        ):
            if added:
                add[name] = {"ids": list(added), "mode": "ADD"}
            if removed:
                remove[name] = {"ids": list(removed), "mode": "REMOVE"}
        if update.details is not None:  # with the adds, or alone with the removals (undo clearing it)
            (add if len(add) > 1 or len(remove) == 1 else remove)["details"] = update.details
        kind_queries = _KINDS[kind]
        if len(add) > 1 and len(remove) > 1:
            self.execute(kind_queries.review_update, {"add": add, "remove": remove})
        else:
            self.execute(kind_queries.update, {"input": add if len(add) > 1 else remove})

    def scene_marks(self, scene_id: str, *, with_end: bool = True) -> SceneMarks | None:
        """The scene's tags and markers (end times only where Stash has them); None if the scene is gone."""
        document = queries.SCENE_MARKERS if with_end else queries.SCENE_MARKERS_PLAIN
        scene = self.execute(document, {"id": scene_id}).get("findScene")
        if not scene:
            return None
        return SceneMarks(
            tag_ids=[t["id"] for t in scene.get("tags") or []],
            markers=[SceneMarker.model_validate(m) for m in scene.get("scene_markers") or []],
        )

    def create_marker(self, scene_id: str, tag_id: str, title: str, seconds: float, end_seconds: float | None) -> str:
        """One scene marker; ``end_seconds`` is left out when None (a Stash before 0.28 has no such field)."""
        payload: dict[str, Any] = {"scene_id": scene_id, "primary_tag_id": tag_id, "title": title, "seconds": seconds}
        if end_seconds is not None:
            payload["end_seconds"] = end_seconds
        return str(self.execute(queries.SCENE_MARKER_CREATE, {"input": payload})["sceneMarkerCreate"]["id"])

    def current(self, kind: str, ids: list[str]) -> dict[str, ItemState]:
        """What the items that still exist hold now (a deleted one is absent)."""
        if not ids:
            return {}
        kind_queries = _KINDS[kind]
        data = self.execute(kind_queries.tags, {"ids": ids, "filter": {"per_page": -1}})[kind_queries.field]
        return {
            str(row["id"]): ItemState(
                tag_ids={str(t["id"]) for t in row.get("tags") or []},
                marker_ids={str(m["id"]) for m in row.get("scene_markers") or []},
                performer_ids={str(p["id"]) for p in row.get("performers") or []},
                details=row.get("details"),
            )
            for row in data[kind_queries.rows]
        }

    def tag_usage(self, tag_ids: list[str]) -> dict[str, int]:
        """How many objects use each tag (scenes, images, markers, galleries, ... and child tags).

        A tag that no longer exists (deleted or merged by the user) is absent.
        """
        if not tag_ids:
            return {}
        data = self.execute(queries.TAG_USAGE, {"ids": tag_ids, "filter": {"per_page": -1}})["findTags"]
        return {str(t["id"]): sum(int(v) for k, v in t.items() if k != "id") for t in data["tags"]}

    def destroy_tag(self, tag_id: str) -> None:
        self.execute(queries.TAG_DESTROY, {"input": {"id": tag_id}})

    def destroy_markers(self, marker_ids: list[str]) -> None:
        """Delete exactly these markers (only ever ones this plugin created)."""
        if marker_ids:
            self.execute(queries.SCENE_MARKERS_DESTROY, {"ids": marker_ids})

    def review_items(self, kind: str, ids: list[str]) -> dict[str, ReviewItem]:
        """Title, picture URL and tags (id -> name) of the items that still exist."""
        if not ids:
            return {}
        kind_queries = _KINDS[kind]
        data = self.execute(kind_queries.review, {"ids": ids, "filter": {"per_page": -1}})[kind_queries.field]
        found = {}
        for row in data[kind_queries.rows]:
            files = row.get("files") or row.get("visual_files") or [row.get("folder") or {}]
            path = str((files[0] or {}).get("path") or "")
            paths = row.get("paths") or {}
            found[str(row["id"])] = ReviewItem(
                title=row.get("title") or path.replace("\\", "/").rsplit("/", 1)[-1] or f"{kind} {row['id']}",
                picture=paths.get("screenshot") or paths.get("thumbnail") or paths.get("cover"),
                tags={str(t["id"]): str(t["name"]) for t in row.get("tags") or []},
                performers={str(t["id"]): str(t["name"]) for t in row.get("performers") or []},
                image_count=row.get("image_count"),
            )
        return found

    def gallery_members(self, gallery_id: str, positions: Sequence[int]) -> list[Item]:
        """The gallery's images at these positions (0-based, in the gallery's order), in that order.

        Each position is a page of one image, so a sample costs ``len(positions)`` small reads
        whatever the gallery's size; consecutive positions from the start are one read. A position
        past the end (images removed since the count) is simply absent.
        """
        wanted = sorted(set(positions))
        if not wanted:
            return []
        by_gallery = {"galleries": {"value": [gallery_id], "modifier": "INCLUDES"}}
        order = {"sort": "path", "direction": "ASC"}
        if wanted == list(range(len(wanted))):
            data = self._find(
                "image", {"filter": {"page": 1, "per_page": len(wanted), **order}, "image_filter": by_gallery}
            )
            return [Item.from_image(row) for row in data["images"]]
        members: list[Item] = []
        for position in wanted:
            data = self._find(
                "image", {"filter": {"page": position + 1, "per_page": 1, **order}, "image_filter": by_gallery}
            )
            members.extend(Item.from_image(row) for row in data["images"][:1])
        return members


@dataclass(frozen=True)
class ReviewItem:
    title: str
    picture: str | None
    tags: dict[str, str]
    performers: dict[str, str] = field(default_factory=dict)
    image_count: int | None = None
    """A gallery's number of images (None for scenes and images)."""


def _why(exc: Exception) -> str:
    """A transport failure in words (the exception's own text may carry the URL and its query)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS/SSL error (check http vs https and the certificate)"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {TIMEOUT[0]}-{TIMEOUT[1]} s"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host unreachable (check the address and that Stash is running)"
    return "the request could not be sent (check the address)"


def _untagged() -> dict[str, Any]:
    return {"tags": {"value": [], "modifier": "IS_NULL"}}


@dataclass(frozen=True)
class _KindQueries:
    """Every document one item kind needs, so a kind is a row here rather than a branch per method."""

    documents: tuple[str, ...]
    field: str
    rows: str
    filter_key: str
    build: Callable[[dict[str, Any]], Item]
    tags: str
    update: str
    review: str
    review_update: str


_KINDS = {
    "scene": _KindQueries(
        (queries.FIND_SCENES, queries.FIND_SCENES_PLAIN),
        "findScenes",
        "scenes",
        "scene_filter",
        Item.from_scene,
        queries.SCENE_TAGS,
        queries.BULK_SCENE_UPDATE,
        queries.REVIEW_SCENES,
        queries.REVIEW_SCENE_UPDATE,
    ),
    "image": _KindQueries(
        (queries.FIND_IMAGES, queries.FIND_IMAGES_PLAIN),
        "findImages",
        "images",
        "image_filter",
        Item.from_image,
        queries.IMAGE_TAGS,
        queries.BULK_IMAGE_UPDATE,
        queries.REVIEW_IMAGES,
        queries.REVIEW_IMAGE_UPDATE,
    ),
    "gallery": _KindQueries(
        (queries.FIND_GALLERIES,),
        "findGalleries",
        "galleries",
        "gallery_filter",
        Item.from_gallery,
        queries.GALLERY_TAGS,
        queries.BULK_GALLERY_UPDATE,
        queries.REVIEW_GALLERIES,
        queries.REVIEW_GALLERY_UPDATE,
    ),
}
