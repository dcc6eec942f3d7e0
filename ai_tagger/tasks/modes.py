"""What each task mode does, as data: the pipeline, the task and the report read this table.

A mode reads items from a source (Stash's untagged items, or the journal of items processed
before), may call the provider, may write to Stash, and says what its report adds. Undo and
report modes read the provenance journal instead of tagging. A new mode
(markers, undo, review) is a new row, not a new branch in the code.

Standard library only: ``entry`` imports this for the command line's ``--mode`` choices, and
a hook run must not pay for more.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class Source(str, Enum):
    UNTAGGED = "untagged"
    """Stash's items without any tag."""
    JOURNAL = "journal"
    """Items processed before (needs the cache)."""
    PERFORMERS = "performers"
    """Stash's performers and their images (the face index)."""
    PERFORMERLESS = "performerless"
    """Stash's items without any performer."""


class Task(str, Enum):
    """What a mode runs: ``tasks.run`` dispatches on this column of the mode's row."""

    TAG = "tag"
    UNDO = "undo"
    REPORT = "report"
    REVIEW = "review"
    INDEX = "index"
    """``index_performers``: the face index from the performers' images."""
    IDENTIFY = "identify"
    """``identify_performers``: recognition alone, no gateway, no tags."""


class Mode(NamedTuple):
    name: str
    kinds: tuple[str, ...]
    """Item kinds read, in this order (Stash's words: ``scene``, ``image``)."""
    source: Source
    calls_provider: bool
    writes: bool
    """False for a dry run: decisions are reported, nothing is written to Stash."""
    samples: bool = False
    """Looks at ``previewItems`` items only, unless the task gives a limit."""
    estimates: bool = False
    """The report projects what tagging every untagged item would cost."""
    task: Task = Task.TAG
    journaled: bool = False
    """A tagging run recorded in the provenance journal, so ``undo_last`` can take it back."""
    undo_all: bool = False
    """An undo of every run (``remove_ai``) rather than of the most recent one."""
    locks: bool = True
    """Holds the library's run lock. Review operations do not: the page stays usable during a run,
    and two decisions on one item are kept apart by the journal (compare and swap), not by the lock."""


ALL_KINDS = ("scene", "image", "gallery")
"""Every item kind; galleries are read from Stash only with ``tagGalleries`` on (or by ``tag_galleries``)."""
GALLERY_MODES = ("tag_galleries",)
"""Modes that tag galleries whatever ``tagGalleries`` says (the user asked for exactly that)."""
UNTAGGED, JOURNAL = Source.UNTAGGED, Source.JOURNAL
TABLE: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("tag_untagged", ALL_KINDS, UNTAGGED, calls_provider=True, writes=True, journaled=True),
        Mode("tag_scenes", ("scene",), UNTAGGED, calls_provider=True, writes=True, journaled=True),
        Mode("tag_images", ("image",), UNTAGGED, calls_provider=True, writes=True, journaled=True),
        Mode("tag_galleries", ("gallery",), UNTAGGED, calls_provider=True, writes=True, journaled=True),
        Mode("preview", ALL_KINDS, UNTAGGED, calls_provider=True, writes=False, samples=True, estimates=True),
        Mode("reapply", ALL_KINDS, JOURNAL, calls_provider=False, writes=True, journaled=True),
        Mode("undo_last", ALL_KINDS, JOURNAL, calls_provider=False, writes=True, task=Task.UNDO),
        Mode("remove_ai", ALL_KINDS, JOURNAL, calls_provider=False, writes=True, task=Task.UNDO,
             undo_all=True),  # fmt: skip
        Mode("report", ALL_KINDS, JOURNAL, calls_provider=False, writes=False, task=Task.REPORT),
        Mode("review_list", ALL_KINDS, JOURNAL, calls_provider=False, writes=False, task=Task.REVIEW,
             locks=False),  # fmt: skip
        Mode("review_decide", ALL_KINDS, JOURNAL, calls_provider=False, writes=True, task=Task.REVIEW,
             locks=False),  # fmt: skip
        Mode("index_performers", ("scene", "image"), Source.PERFORMERS, calls_provider=False, writes=False,
             task=Task.INDEX),  # fmt: skip
        Mode("identify_performers", ("scene", "image"), Source.PERFORMERLESS, calls_provider=False, writes=True,
             task=Task.IDENTIFY, journaled=True),  # fmt: skip
    )
}
UNDOABLE = tuple(mode.name for mode in TABLE.values() if mode.journaled)
"""The tagging modes whose runs undo takes back."""
REVIEW_DECISION = next(mode.name for mode in TABLE.values() if mode.task == Task.REVIEW and mode.writes)
"""The mode whose runs are the user's own decisions on the review page."""
OPERATIONS = tuple(mode.name for mode in TABLE.values() if mode.task == Task.REVIEW)
"""Modes the review page calls through ``runPluginOperation``, never tasks in the manifest."""
SETUP_MODES = ("install_deps",)
"""Modes the entry point handles before any task runs (no Stash items, no settings)."""
MODES = (*TABLE, *SETUP_MODES)
DEFAULT = "tag_untagged"
