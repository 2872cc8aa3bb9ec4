"""Which address a request comes from, for per-client limits (login throttle, widget quotas).

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the
connection comes from a configured reverse proxy (``web.trusted_proxies``). Then the list is
read from the right, skipping trusted proxies, and the first other address is the client: a
client can prepend anything it likes, but not change what its proxy appended. With no
trusted proxies (the default) the header is ignored and the TCP peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from chatbot.settings import Network


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(value: str, trusted: Sequence[Network]) -> bool:
    ip = _ip(value)
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or the rightmost untrusted hop a trusted proxy saw."""
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            return hop if _ip(hop) is not None else peer
    return peer


def limit_key(address: str) -> str:
    """What a per-client limit counts by: the IPv4 address, or the IPv6 /64.

    One subscriber usually holds a whole IPv6 /64, so counting single IPv6 addresses would be
    trivial to dodge.
    """
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip) if ip is not None else address
