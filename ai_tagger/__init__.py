"""AI Tagger: tags Stash scenes and images through an AI gateway.

The folders are the flow one item takes:
``stash`` (GraphQL I/O: the source of items) -> ``media`` (frames, images) -> ``analyze``
(analyzers; the gateway and its providers) -> ``decide`` (vocabulary, rules, thresholds: one pure
decision) -> ``write`` (one mutation per item) -> ``store`` (cache, journal). ``tasks`` holds the
modes that drive it (tag, undo, report, review, install) and ``ui`` the review page; ``entry`` is
the process entry point Stash starts, ``serve`` the local model's sidecar server.
"""

from ai_tagger.tasks.modes import MODES

__version__ = "0.1.0"
PLUGIN_ID = "ai_tagger"

__all__ = ["MODES", "PLUGIN_ID", "__version__"]
