"""What each task mode does, as data: the pipeline, the task and the report read this table.

A mode reads items from a source (Stash's untagged items, or the journal of items processed
before), may call the provider, may write to Stash, and says what its report adds. A new mode
(markers, undo, review) is a new row, not a new branch in the code.

Standard library only: ``entry`` imports this for the command line's ``--mode`` choices, and
a hook run must not pay for more.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Source = Literal["untagged", "journal"]


class Mode(NamedTuple):
    name: str
    kinds: tuple[str, ...]
    """Item kinds read, in this order."""
    source: Source
    """``untagged``: items with no tags in Stash; ``journal``: items processed before (needs the cache)."""
    calls_provider: bool
    writes: bool
    """False for a dry run: decisions are reported, nothing is written to Stash."""
    samples: bool = False
    """Looks at ``previewItems`` items only, unless the task gives a limit."""
    estimates: bool = False
    """The report projects what tagging every untagged item would cost."""


BOTH = ("scene", "image")
TABLE: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("tag_untagged", BOTH, "untagged", calls_provider=True, writes=True),
        Mode("tag_scenes", ("scene",), "untagged", calls_provider=True, writes=True),
        Mode("tag_images", ("image",), "untagged", calls_provider=True, writes=True),
        Mode("preview", BOTH, "untagged", calls_provider=True, writes=False, samples=True, estimates=True),
        Mode("reapply", BOTH, "journal", calls_provider=False, writes=True),
    )
}
SETUP_MODES = ("install_deps",)
"""Modes the entry point handles before any task runs (no Stash items, no settings)."""
MODES = (*TABLE, *SETUP_MODES)
DEFAULT = "tag_untagged"
