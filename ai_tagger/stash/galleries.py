"""Which member images stand for a gallery: first, last and evenly between, in the gallery's order.

A gallery is to its images what a scene is to its frames, so it is sampled the same way: a few
members spread over the whole set show what it is, whatever its size. Only the sampled members
are read from Stash (a page of one image per position), never the whole gallery.
"""

from __future__ import annotations

from ai_tagger.stash.client import StashClient
from ai_tagger.stash.models import Item


def sample_positions(count: int, wanted: int) -> list[int]:
    """``wanted`` distinct 0-based positions of ``count`` members: first, last, evenly between.

    Every member when the gallery has no more than ``wanted``; none for an empty gallery.
    """
    if count <= 0 or wanted <= 0:
        return []
    if count <= wanted:
        return list(range(count))
    if wanted == 1:
        return [0]
    step = (count - 1) / (wanted - 1)
    return sorted({round(i * step) for i in range(wanted)})


def sampled_members(client: StashClient, gallery: Item, wanted: int) -> list[Item]:
    """The gallery's sampled member images, in the gallery's order (fewer if images left it since)."""
    count = gallery.image_count or 0
    return client.gallery_members(gallery.id, sample_positions(count, wanted))
