"""The built-in local model (``provider: local``): a detector that runs in this process on CPU.

Kept apart from the gateway package so that a sidecar server can serve the same detector over
the ``labels`` contract without importing the plugin's HTTP code.
"""
