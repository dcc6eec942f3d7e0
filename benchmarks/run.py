"""``python3 -m benchmarks.run``: the old name of ``python3 -m benchmarks``, kept for scripts and docs.

The shared pieces (``Context``, ``Result``, ``servers``, ``run_plugin``...) live in
:mod:`benchmarks.harness`; each benchmark is its own module with ``run(ctx) -> Result``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.__main__ import main  # noqa: E402
from benchmarks.harness import Context, Result  # noqa: E402

__all__ = ["Context", "Result", "main"]

if __name__ == "__main__":
    sys.exit(main())
