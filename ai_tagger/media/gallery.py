"""A gallery's media: its sampled member images, each read at most once and shared.

A gallery has no file of its own; what the analyzers see of it are the members the sampling
plan chose (:mod:`ai_tagger.stash.galleries`), read like any image (from the path when this
process can, else through Stash's image URL, which is how a zip-based gallery's images are
read). The tag roll-up reads only the members it must send; another analyzer (faces) reading
``shots()`` gets every readable member, from the same reads.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from ai_tagger.errors import MediaError
from ai_tagger.media.source import Fetch, ItemMedia, MediaOptions, Shots
from ai_tagger.stash.models import Item


class GalleryMedia(ItemMedia):
    """The gallery's sampled members, in the gallery's order; frame N is ``members[N - 1]``."""

    def __init__(
        self,
        item: Item,
        members: list[Item],
        options: MediaOptions,
        fetch: Fetch,
        slots: AbstractContextManager[Any],
    ) -> None:
        super().__init__(item, options, fetch, slots)
        self.members = members
        self._media = {m.id: ItemMedia(m, options, fetch, slots) for m in members}
        self._failed: dict[str, MediaError] = {}

    def of(self, member: Item) -> ItemMedia:
        """The member's own media (what answering it as an image reads)."""
        return self._media[member.id]

    def picture(self, member: Item) -> bytes:
        """The member as the model sees it; raises :class:`MediaError` (once read, the same again)."""
        if member.id in self._failed:
            raise self._failed[member.id]
        try:
            return self._media[member.id].shots().pictures[0]
        except MediaError as exc:
            self._failed[member.id] = exc
            raise

    def shots(self) -> Shots:
        """Every readable member's picture, in order; fails only if none can be read."""
        pictures = []
        for member in self.members:
            try:
                pictures.append(self.picture(member))
            except MediaError:
                continue
        if not pictures:
            raise MediaError(f"none of its {len(self.members)} sampled image(s) could be read")
        return Shots(pictures)
