"""Tag-name normalisation: small pure functions, so every spelling maps to one key.

``"  Outdoors "``, ``"outdoors"``, ``"OUT-DOORS"`` and ``"out_doors"`` share a key; plural
forms get singular variants so that "Dogs" finds an existing "Dog".
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s_\-‐-―]+")


def key(name: str) -> str:
    """The comparison key of a tag name: NFKC, case-folded, separators folded to one space."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SEPARATORS.sub(" ", folded).strip()


def singulars(name_key: str) -> list[str]:
    """Singular guesses for the last word of a key, most likely first (English only)."""
    head, _, last = name_key.rpartition(" ")
    prefix = f"{head} " if head else ""
    guesses: list[str] = []
    if len(last) > 3 and last.endswith("ies"):
        guesses.append(last[:-3] + "y")
    if len(last) > 3 and last.endswith(("ses", "xes", "zes", "ches", "shes")):
        guesses.append(last[:-2])
    if len(last) > 2 and last.endswith("s") and not last.endswith("ss"):
        guesses.append(last[:-1])
    return [prefix + guess for guess in guesses]
