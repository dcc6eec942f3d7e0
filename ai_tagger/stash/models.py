"""Typed views of what Stash sends: the stdin payload and the objects our queries select."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ai_tagger.stash import endpoint


class Kind(str, Enum):
    """The kinds of Stash item the plugin reads and writes (the value is Stash's own word)."""

    SCENE = "scene"
    IMAGE = "image"
    GALLERY = "gallery"

    def __str__(self) -> str:
        return self.value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class SessionCookie(_Model):
    name: str = Field("session", alias="Name")
    value: str = Field("", alias="Value")


class ServerConnection(_Model):
    """``server_connection`` as Stash writes it on stdin (Go field names)."""

    scheme: Literal["http", "https"] = Field("http", alias="Scheme")
    host: str = Field("localhost", alias="Host")
    port: int = Field(9999, ge=1, le=65535, alias="Port")
    base_path: str = Field("", alias="BasePath")
    session_cookie: SessionCookie | None = Field(None, alias="SessionCookie")
    api_key: str | None = Field(None, alias="ApiKey")
    dir: str | None = Field(None, alias="Dir")
    plugin_dir: str | None = Field(None, alias="PluginDir")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        problem = endpoint.host_problem(value)
        if problem:
            raise ValueError(f"{value[:80]!r} {problem}")
        return value

    @property
    def base_url(self) -> str:
        return endpoint.base_url(self.model_dump(by_alias=True))


class PluginInput(_Model):
    """The whole stdin object."""

    server_connection: ServerConnection = Field(default_factory=ServerConnection)
    args: dict[str, Any] = Field(default_factory=dict)


class TagRef(_Model):
    id: str


class Tag(_Model):
    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    scene_count: int = 0
    image_count: int = 0
    parents: list[TagRef] = Field(default_factory=list)


class SceneMarker(_Model):
    """A marker already on a scene (anyone's): its primary tag and its span."""

    id: str
    seconds: float
    end_seconds: float | None = None
    primary_tag: TagRef

    def overlaps(self, tag_id: str, seconds: float, end_seconds: float | None) -> bool:
        """Same primary tag and the spans share a moment (a marker without an end is an instant)."""
        mine_end = self.seconds if self.end_seconds is None else self.end_seconds
        theirs_end = seconds if end_seconds is None else end_seconds
        return self.primary_tag.id == tag_id and self.seconds <= theirs_end + 1e-6 and seconds <= mine_end + 1e-6


class SceneMarks(_Model):
    """What marker writes check first: the scene's tags and its markers."""

    tag_ids: list[str] = Field(default_factory=list)
    markers: list[SceneMarker] = Field(default_factory=list)


class Fingerprint(_Model):
    type: str
    value: str


class ZipRef(_Model):
    path: str


class MediaFile(_Model):
    """A scene's ``VideoFile`` or an image's ``ImageFile``/``VideoFile``."""

    typename: str | None = Field(None, alias="__typename")
    path: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    frame_rate: float | None = None
    zip_file: ZipRef | None = None
    fingerprints: list[Fingerprint] = Field(default_factory=list)

    @property
    def basename(self) -> str:
        """The file name, also for a member of a zip archive (``archive.zip/dir/name.jpg``)."""
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def is_video(self) -> bool:
        return self.typename == "VideoFile" or self.duration is not None

    def fingerprint(self) -> str:
        """The most specific content identity Stash knows for this file."""
        by_type = {f.type: f.value for f in self.fingerprints}
        for kind in ("oshash", "md5", "phash"):
            if by_type.get(kind):
                return f"{kind}:{by_type[kind]}"
        return f"path:{self.path}"


class Item(_Model):
    """A scene, an image or a gallery, reduced to what tagging needs (and what the analyzers may read).

    A gallery has no file of its own: ``path`` is its folder or zip archive, ``image_count`` how
    many images it holds (its media are member images, read as images are)."""

    kind: Kind
    id: str
    title: str | None = None
    tag_ids: list[str] = Field(default_factory=list)
    performer_ids: list[str] = Field(default_factory=list)
    details: str | None = None
    """The item's description in Stash; the plugin writes one only where this is empty."""
    file: MediaFile | None = None
    media_url: str | None = None
    path: str | None = None
    image_count: int | None = None

    @property
    def label(self) -> str:
        name = self.title or (self.file.basename if self.file else "")
        if not name and self.path:
            name = self.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return f"{self.kind} {self.id}" + (f" ({name})" if name else "")

    @classmethod
    def from_scene(cls, raw: dict[str, Any]) -> Item:
        files = raw.get("files") or []
        return cls(
            kind=Kind.SCENE,
            id=raw["id"],
            title=raw.get("title"),
            tag_ids=[t["id"] for t in raw.get("tags") or []],
            performer_ids=[p["id"] for p in raw.get("performers") or []],
            details=raw.get("details"),
            file=MediaFile.model_validate({**files[0], "__typename": "VideoFile"}) if files else None,
            media_url=(raw.get("paths") or {}).get("stream"),
        )

    @classmethod
    def from_image(cls, raw: dict[str, Any]) -> Item:
        files = raw.get("visual_files") or []
        return cls(
            kind=Kind.IMAGE,
            id=raw["id"],
            title=raw.get("title"),
            tag_ids=[t["id"] for t in raw.get("tags") or []],
            performer_ids=[p["id"] for p in raw.get("performers") or []],
            details=raw.get("details"),
            file=MediaFile.model_validate(files[0]) if files else None,
            media_url=(raw.get("paths") or {}).get("image"),
        )

    @classmethod
    def from_gallery(cls, raw: dict[str, Any]) -> Item:
        files = raw.get("files") or []
        folder = raw.get("folder") or {}
        return cls(
            kind=Kind.GALLERY,
            id=raw["id"],
            title=raw.get("title"),
            tag_ids=[t["id"] for t in raw.get("tags") or []],
            performer_ids=[p["id"] for p in raw.get("performers") or []],
            details=raw.get("details"),
            path=(files[0].get("path") if files else None) or folder.get("path"),
            image_count=raw.get("image_count"),
        )


@dataclass(frozen=True)
class ItemState:
    """An item as it is in Stash now: what undo and re-apply compare the journal with."""

    tag_ids: set[str] = field(default_factory=set)
    marker_ids: set[str] = field(default_factory=set)
    performer_ids: set[str] = field(default_factory=set)
    details: str | None = None


@dataclass(frozen=True)
class ItemUpdate:
    """One write to one item: adds, removals and a new description, sent as a single mutation.

    ``details`` None leaves the item's description alone; ``""`` clears it.
    """

    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    add_performers: tuple[str, ...] = ()
    remove_performers: tuple[str, ...] = ()
    details: str | None = None

    def __bool__(self) -> bool:
        return bool(self.add_tags or self.remove_tags or self.add_performers or self.remove_performers) or (
            self.details is not None
        )


class Performer(_Model):
    """A performer and the URL of their image (Stash answers one even without an image: a silhouette)."""

    id: str
    name: str
    image_path: str | None = None

    @property
    def has_image(self) -> bool:
        """False for Stash's silhouette, whose URL ends in ``default=true``."""
        return bool(self.image_path) and "default=true" not in (self.image_path or "")


class PerformerRef(_Model):
    id: str


class CastItem(_Model):
    """A scene or image with its performers and the picture Stash serves for it (screenshot or image)."""

    kind: Literal["scene", "image"]
    id: str
    performers: list[PerformerRef] = Field(default_factory=list)
    picture: str | None = None
