"""Tag ids for decisions: existing tags looked up, missing ones created once per run.

Creation is serialised by a lock, so forty items that all want "Sunset" create it once. A tag
created between our load and our create (another run, the user) is found again, not duplicated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ai_tagger.decide.decision import Verdict
from ai_tagger.stash.client import StashClient, StashError
from ai_tagger.stash.models import Tag
from ai_tagger.stash.vocabulary import Vocabulary


class TagBook:
    def __init__(
        self,
        client: StashClient,
        vocabulary: Vocabulary,
        *,
        parent_name: str,
        on_create: Callable[[Tag], None] | None = None,
    ) -> None:
        """``on_create`` hears of each tag as soon as it exists (the journal, so undo can delete it)."""
        self._client = client
        self._on_create = on_create
        self.vocabulary = vocabulary
        self._parent_name = parent_name
        self._lock = threading.Lock()
        self.created: list[str] = []

    def _ensure(self, name: str, *, parent_ids: list[str] | None) -> Tag:
        """Caller holds the lock."""
        existing = self.vocabulary.exact(name)
        if existing:
            return existing
        try:
            tag = self._client.create_tag(name, parent_ids=parent_ids)
        except StashError:
            found = self._client.tag_named(name)
            if found is None:
                raise
            tag = found
        else:
            self.created.append(tag.name)
            if self._on_create is not None:
                self._on_create(tag)
        self.vocabulary.add(tag)
        return tag

    def status_tag(self, name: str) -> Tag:
        with self._lock:
            return self._ensure(name, parent_ids=None)

    def ids_for(self, verdicts: list[Verdict]) -> list[str]:
        """Ids of the applied verdicts' tags, creating new ones under the parent tag."""
        ids: list[str] = []
        for verdict in verdicts:
            if verdict.tag is not None:
                ids.append(verdict.tag.id)
                continue
            with self._lock:
                found = self.vocabulary.find(verdict.name)
                if found is None:
                    parent = self._ensure(self._parent_name, parent_ids=None)
                    found = self._ensure(verdict.name.strip(), parent_ids=[parent.id])
            ids.append(found.id)
        return list(dict.fromkeys(ids))
