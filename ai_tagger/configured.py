"""Whether the plugin is set up enough to run: the one check the hook, the settings and the gateway share.

Standard library only: the ``Scene.Create.Post`` hook decides from Stash's raw settings map,
before anything heavier is imported.
"""

from __future__ import annotations

LOCAL_PROVIDER = "local"
"""The built-in model: it needs no gateway, URL or model."""


def missing_settings(provider: object, gateway_url: object, model: object) -> list[str]:
    """The settings a run needs that are still empty, by their Stash key (none for the local model)."""
    if str(provider or "").strip().lower() == LOCAL_PROVIDER:
        return []
    return [name for name, value in (("gatewayUrl", gateway_url), ("model", model)) if not str(value or "").strip()]
