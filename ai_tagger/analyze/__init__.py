"""Analyzers: what the models say about an item (tags, and later performers, a description, speech).

``gateway`` holds the provider protocol, its registry and the HTTP and answer plumbing;
``providers`` the providers registered by name; ``local`` the in-process detector.
"""
