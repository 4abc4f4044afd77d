"""Who is calling, as far as limits care: a client address, and a pseudonym for it.

The address is the connection's peer; behind a proxy the server believes only what a
trusted proxy says in ``X-Forwarded-For`` (uvicorn's proxy headers with
``BB_TRUSTED_PROXIES``: `up`'s own loopback forwarder, the Ingress in Kubernetes), so a
client cannot choose its own. An IPv6 client counts by its /64, which one subscriber
usually holds whole.

Staff never see the address: a line shows a short pseudonymous tag (a keyed hash of
the address), equal for equal addresses and useless for finding the address again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

from starlette.types import Scope

UNKNOWN = "unknown"


def client_address(scope: Scope) -> str:
    """The client's address as limits count it: IPv4 as is, IPv6 by its /64."""
    client = scope.get("client")
    host = client[0] if client else UNKNOWN
    if ":" not in host:  # IPv4 (or a name): as it is; parsing costs a knock microseconds
        return str(host)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class ClientTags:
    """Pseudonyms for client addresses: 8 characters of a keyed hash (40 bits), stable
    while the key is, so equal addresses show equal tags."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"bb-client-tag\x00" + key).digest()

    def tag(self, address: str) -> str:
        digest = hmac.digest(self._key, address.encode(), "sha256")
        return base64.b32encode(digest[:5]).decode()
