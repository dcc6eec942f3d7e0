"""Stash's base URL from ``server_connection``, shared by the task client and the (stdlib-only) hook.

Stash sends ``Scheme``, ``Host`` and ``Port``. ``BasePath`` is the plugin's own addition, set
by the command line for a Stash behind a reverse proxy under a sub-path (``http://host/stash``);
GraphQL then lives at ``<base>/graphql``. Media URLs are used as Stash sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LISTEN_ALL = ("0.0.0.0", "::", "")


def base_url(connection: Mapping[str, Any]) -> str:
    """``scheme://host:port[/sub/path]`` without a trailing slash; a listen-all host means this machine."""
    host = str(connection.get("Host") or "localhost")
    if host in LISTEN_ALL:
        host = "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    path = str(connection.get("BasePath") or "").strip("/")
    return f"{connection.get('Scheme') or 'http'}://{host}:{connection.get('Port') or 9999}" + (
        f"/{path}" if path else ""
    )
