"""AI Tagger: tags Stash scenes and images through an AI gateway.

The package is laid out as the pipeline it runs:
``stash`` (GraphQL I/O) -> ``media`` (frames, images) -> ``gateway`` (providers)
-> ``decide`` (vocabulary, rules, thresholds) -> ``pipeline`` (wiring), with
``entry`` as the process entry point Stash starts.
"""

from ai_tagger.modes import MODES

__version__ = "0.1.0"
PLUGIN_ID = "ai_tagger"

__all__ = ["MODES", "PLUGIN_ID", "__version__"]
