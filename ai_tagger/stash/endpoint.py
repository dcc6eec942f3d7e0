"""Stash's base URL from ``server_connection``, shared by the task client and the (stdlib-only) hook.

Stash sends ``Scheme``, ``Host`` and ``Port``. ``BasePath`` is the plugin's own addition, set
by the command line for a Stash behind a reverse proxy under a sub-path (``http://host/stash``);
GraphQL then lives at ``<base>/graphql``. Media URLs are used as Stash sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LISTEN_ALL = ("0.0.0.0", "::", "")
_NOT_IN_HOST = frozenset(" /?#@\\\t\r\n\0")


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a host name or address (``a..b``, a 64-character label), or None.

    The same check urllib3 makes when it connects (IDNA label lengths), made up front so the
    error names the field instead of surfacing as a parse error from deep inside the client.
    """
    if host in LISTEN_ALL:
        return None
    if any(c in _NOT_IN_HOST for c in host):
        return "is not a host name or address (it contains a space, '/', '?', '#', '@' or a control character)"
    if ":" in host:
        return None if _is_ipv6(host.strip("[]")) else "is not a valid IPv6 address"
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        return "is not a valid host name: each dot-separated part must have 1 to 63 characters"
    return "is longer than 253 characters" if len(encoded) > 253 else None


_THIS_MACHINE = ("localhost", "127.0.0.1", "::1", *LISTEN_ALL)


def is_stash(url: str, stash_base: str) -> bool:
    """``url`` is served by the Stash at ``stash_base``: same scheme, machine and port, under its path.

    Stash serves its whole origin (UI, GraphQL, media), so an AI gateway URL there is Stash itself."""
    from urllib.parse import urlsplit

    try:
        theirs, ours = urlsplit(url), urlsplit(stash_base)
        ports = (theirs.port or (443 if theirs.scheme == "https" else 80), ours.port)
    except ValueError:
        return False

    def machine(host: str | None) -> str:
        host = (host or "").lower()
        return "localhost" if host in _THIS_MACHINE else host

    return (
        theirs.scheme == ours.scheme
        and machine(theirs.hostname) == machine(ours.hostname)
        and ports[0] == ports[1]
        and theirs.path.rstrip("/").startswith(ours.path.rstrip("/"))
    )


def _is_ipv6(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


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
