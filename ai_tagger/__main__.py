"""Entry point: ``python {pluginDir}/ai_tagger`` (as Stash runs it) or ``python -m ai_tagger``.

Stash runs the plugin with its own working directory and puts only the *parent* of the
plugin folder on ``PYTHONPATH``, so when this file runs as a script the plugin folder
itself is put on ``sys.path`` to make ``import ai_tagger`` work from anywhere.
"""

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ai_tagger.entry import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.stdin, sys.stdout, sys.stderr, sys.argv[1:]))
