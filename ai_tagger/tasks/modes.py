"""What each task mode does, as data: the pipeline, the task and the report read this table.

A mode reads items from a source (Stash's untagged items, or the journal of items processed
before), may call the provider, may write to Stash, and says what its report adds. Undo and
report modes read the provenance journal instead of tagging. A new mode
(markers, undo, review) is a new row, not a new branch in the code.

Standard library only: ``entry`` imports this for the command line's ``--mode`` choices, and
a hook run must not pay for more.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Source = Literal["untagged", "journal", "performers", "performerless"]
Task = Literal["tag", "undo", "report", "review", "index", "identify"]


class Mode(NamedTuple):
    name: str
    kinds: tuple[str, ...]
    """Item kinds read, in this order."""
    source: Source
    """``untagged``: items with no tags in Stash; ``journal``: items processed before (needs the cache);
    ``performers``: Stash's performers (the face index); ``performerless``: items with no performers."""
    calls_provider: bool
    writes: bool
    """False for a dry run: decisions are reported, nothing is written to Stash."""
    samples: bool = False
    """Looks at ``previewItems`` items only, unless the task gives a limit."""
    estimates: bool = False
    """The report projects what tagging every untagged item would cost."""
    task: Task = "tag"
    """``tag``: the tagging pipeline; ``undo``: take back what runs added; ``report``: read the journal."""
    journaled: bool = False
    """A tagging run recorded in the provenance journal, so ``undo_last`` can take it back."""
    undo_all: bool = False
    """An undo of every run (``remove_ai``) rather than of the most recent one."""
    locks: bool = True
    """Holds the library's run lock. Review operations do not: the page stays usable during a run,
    and two decisions on one item are kept apart by the journal (compare and swap), not by the lock."""


BOTH = ("scene", "image")
TABLE: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("tag_untagged", BOTH, "untagged", calls_provider=True, writes=True, journaled=True),
        Mode("tag_scenes", ("scene",), "untagged", calls_provider=True, writes=True, journaled=True),
        Mode("tag_images", ("image",), "untagged", calls_provider=True, writes=True, journaled=True),
        Mode("preview", BOTH, "untagged", calls_provider=True, writes=False, samples=True, estimates=True),
        Mode("reapply", BOTH, "journal", calls_provider=False, writes=True, journaled=True),
        Mode("undo_last", BOTH, "journal", calls_provider=False, writes=True, task="undo"),
        Mode("remove_ai", BOTH, "journal", calls_provider=False, writes=True, task="undo", undo_all=True),
        Mode("report", BOTH, "journal", calls_provider=False, writes=False, task="report"),
        Mode("review_list", BOTH, "journal", calls_provider=False, writes=False, task="review", locks=False),
        Mode("review_decide", BOTH, "journal", calls_provider=False, writes=True, task="review", locks=False),
        Mode("index_performers", BOTH, "performers", calls_provider=False, writes=False, task="index"),
        Mode("identify_performers", BOTH, "performerless", calls_provider=False, writes=True, task="identify",
             journaled=True),
    )
}
UNDOABLE = tuple(mode.name for mode in TABLE.values() if mode.journaled)
"""The tagging modes whose runs undo takes back."""
OPERATIONS = tuple(mode.name for mode in TABLE.values() if mode.task == "review")
"""Modes the review page calls through ``runPluginOperation``, never tasks in the manifest."""
SETUP_MODES = ("install_deps",)
"""Modes the entry point handles before any task runs (no Stash items, no settings)."""
MODES = (*TABLE, *SETUP_MODES)
DEFAULT = "tag_untagged"
