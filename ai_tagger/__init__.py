"""AI Tagger: tags Stash scenes and images through an AI gateway.

The package is laid out as the pipeline it runs:
``stash`` (GraphQL I/O) -> ``media`` (frames, images) -> ``gateway`` (providers)
-> ``decide`` (vocabulary, rules, thresholds) -> ``pipeline`` (wiring), with
``entry`` as the process entry point Stash starts.
"""

__version__ = "0.1.0"
PLUGIN_ID = "ai_tagger"
MODES = ("tag_untagged", "tag_scenes", "tag_images", "preview", "reapply", "install_deps")
