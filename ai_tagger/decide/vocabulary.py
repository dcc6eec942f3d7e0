"""The user's tags, indexed once per run for O(1) lookup by any spelling of a name or alias."""

from __future__ import annotations

from collections.abc import Iterable

from ai_tagger.decide.normalize import key, singulars
from ai_tagger.stash.models import Tag


class Vocabulary:
    def __init__(self, tags: Iterable[Tag]) -> None:
        self.tags: dict[str, Tag] = {}
        self._by_key: dict[str, Tag] = {}
        self._by_singular: dict[str, Tag] = {}
        aliases: list[tuple[str, Tag]] = []
        for tag in tags:
            self.add(tag, aliases_later=aliases)
        for alias, tag in aliases:
            self._index(alias, tag)

    def _index(self, name: str, tag: Tag) -> None:
        name_key = key(name)
        if name_key:
            self._by_key.setdefault(name_key, tag)
            for singular in singulars(name_key):
                self._by_singular.setdefault(singular, tag)

    def add(self, tag: Tag, *, aliases_later: list[tuple[str, Tag]] | None = None) -> None:
        """Index a tag; names win over aliases, earlier tags over later ones."""
        self.tags[tag.id] = tag
        self._index(tag.name, tag)
        for alias in tag.aliases:
            if aliases_later is None:
                self._index(alias, tag)
            else:
                aliases_later.append((alias, tag))

    def find(self, name: str) -> Tag | None:
        """The existing tag a model's name means, by name or alias, in any case or spacing."""
        name_key = key(name)
        if not name_key:
            return None
        found = self._by_key.get(name_key)
        if found:
            return found
        for singular in singulars(name_key):
            found = self._by_key.get(singular) or self._by_singular.get(singular)
            if found:
                return found
        return self._by_singular.get(name_key)

    def exact(self, name: str) -> Tag | None:
        """Lookup by name or alias only, with no plural folding (for the plugin's own tags)."""
        return self._by_key.get(key(name))

    def most_used(self, limit: int, *, exclude: Iterable[str] = ()) -> list[Tag]:
        skip = set(exclude)
        ranked = sorted(
            (t for t in self.tags.values() if t.id not in skip),
            key=lambda t: (-(t.scene_count + t.image_count), t.name.casefold()),
        )
        return ranked[:limit]

    def __len__(self) -> int:
        return len(self.tags)
