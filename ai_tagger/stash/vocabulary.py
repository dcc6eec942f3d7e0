"""The user's tags, indexed once per run for O(1) lookup by any spelling of a name or alias.

Stash tags are hierarchical (a tag lists its parents); a child index built alongside lets the
decision add ancestors and the prompt offer one branch of the tree without scanning all tags.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ai_tagger.stash.models import Tag
from ai_tagger.stash.names import key, singulars


class Vocabulary:
    def __init__(self, tags: Iterable[Tag]) -> None:
        self.tags: dict[str, Tag] = {}
        self._by_key: dict[str, Tag] = {}
        self._by_singular: dict[str, Tag] = {}
        self._children: dict[str, list[str]] = {}
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
        previous = self.tags.get(tag.id)
        for parent_id in _parent_ids(previous) if previous else ():
            self._children[parent_id].remove(tag.id)
        self.tags[tag.id] = tag
        for parent_id in _parent_ids(tag):
            self._children.setdefault(parent_id, []).append(tag.id)
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

    def children_of(self, tag_id: str) -> list[Tag]:
        """The tags that list ``tag_id`` as a parent, in the order they were added."""
        return [self.tags[child] for child in self._children.get(tag_id, ())]

    def ancestors(self, tag_id: str) -> list[Tag]:
        """Parents, grandparents, ... nearest first; safe against cycles and unknown ids."""
        return self._walk(tag_id, lambda t: [self.tags[r.id] for r in t.parents if r.id in self.tags])

    def descendants(self, tag_id: str) -> list[Tag]:
        """Children, grandchildren, ... nearest first; safe against cycles."""
        return self._walk(tag_id, lambda t: self.children_of(t.id))

    def _walk(self, tag_id: str, step: Callable[[Tag], list[Tag]]) -> list[Tag]:
        start = self.tags.get(tag_id)
        if start is None:
            return []
        seen = {tag_id}
        found: list[Tag] = []
        queue = deque([start])
        while queue:
            for tag in step(queue.popleft()):
                if tag.id not in seen:
                    seen.add(tag.id)
                    found.append(tag)
                    queue.append(tag)
        return found

    def branch_root(self, parent: str) -> Tag | None:
        """The tag ``vocabularyParent`` names (by name or alias), if it exists."""
        return self.exact(parent) or self.find(parent)

    def prompt_tags(self, budget: int, *, parent: str | None = None, exclude_ids: Iterable[str] = ()) -> list[Tag]:
        """The tags worth naming to the model: one branch (``parent``'s descendants) or all, most used first.

        A ``parent`` that names no tag falls back to all tags, so a typo never empties the prompt.
        """
        if budget <= 0:
            return []
        root = self.branch_root(parent) if parent else None
        pool = self.descendants(root.id) if root else self.tags.values()
        skip = set(exclude_ids)
        ranked = sorted(
            (t for t in pool if t.id not in skip),
            key=lambda t: (-(t.scene_count + t.image_count), t.name.casefold(), t.id),
        )
        return ranked[:budget]

    def __len__(self) -> int:
        return len(self.tags)


def prompt_entry(tag: Tag) -> str:
    """A tag as the prompt names it, ``"Dog (aliases: Doggo, Hound)"``: aliases tell the model what it means."""
    name_key = key(tag.name)
    aliases = [a.strip() for a in tag.aliases if key(a) and key(a) != name_key]
    return f"{tag.name} (aliases: {', '.join(dict.fromkeys(aliases))})" if aliases else tag.name


def _parent_ids(tag: Tag) -> list[str]:
    return list(dict.fromkeys(ref.id for ref in tag.parents))
