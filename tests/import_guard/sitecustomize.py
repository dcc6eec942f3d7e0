"""Loaded by Python at start-up when this folder is on ``PYTHONPATH`` (tests only, see tests/imports.py).

``AI_TAGGER_BLOCK_IMPORTS=nudenet,onnxruntime``: importing those top-level packages fails as it
does in a Python that lacks them. ``AI_TAGGER_IMPORTS_OUT=<file>``: at exit, the names of every
module the process imported are written there, one a line.
"""

import atexit
import os
import sys

_blocked = {name for name in os.environ.get("AI_TAGGER_BLOCK_IMPORTS", "").split(",") if name}
_out = os.environ.get("AI_TAGGER_IMPORTS_OUT")


class _Missing:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname.partition(".")[0] in _blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if _blocked:
    sys.meta_path.insert(0, _Missing())


def _write_modules():
    with open(_out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(sorted(sys.modules)))


if _out:
    atexit.register(_write_modules)
