"""Where a workspace may send its provider requests: public hosts, or hosts the operator allowed.

A workspace-chosen base_url is a server-side request forgery risk (cloud metadata at 169.254.169.254,
the database on 10.x, the app itself on 127.0.0.1). The runs issue calls `check_base_url` again right
before each request, so a DNS answer that changes after the PUT is caught too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

from backend.core.errors import Invalid

LOC = ["body", "base_url"]


def allowed_hosts(setting: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in setting.split(",") if h.strip())


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_base_url(url: str, allowed: frozenset[str]) -> str:
    """The normalised URL, or a 422 naming base_url and saying why it is refused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Invalid(LOC, "base_url is not a valid URL") from exc
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise Invalid(LOC, "base_url must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise Invalid(LOC, "base_url must not carry credentials; send the key as api_key")
    if host in allowed:
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), parts.query, ""))
    if parts.scheme != "https":
        raise Invalid(LOC, "base_url must use https (plain http only for hosts the operator allows)")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Invalid(LOC, f"base_url host {host} does not resolve") from exc
    addresses = {info[4][0] for info in infos}
    private = sorted(a for a in addresses if not _is_public(a))
    if private:
        raise Invalid(
            LOC,
            f"base_url host {host} resolves to a non-public address ({private[0]}); an operator can allow it "
            "with PLAYGROUND_PROVIDER_HOSTS",
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), parts.query, ""))
