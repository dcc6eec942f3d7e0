"""Analyzers: what the models say about an item (tags, a description; performers and speech plug in the same way).

``base`` is the seam (the ``Analyzer`` protocol, the findings, ``register_analyzer``);
``analyzers`` holds one module per analyzer; ``answers`` gets tag answers (cache, else
provider); ``gateway`` holds the provider protocol, its registry and the HTTP and answer
plumbing; ``providers`` the providers registered by name; ``local`` the in-process detector.
"""
