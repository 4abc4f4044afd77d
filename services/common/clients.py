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

import hashlib
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
    """Pseudonyms for client addresses: 10 hex digits of a keyed hash (BLAKE2b with a key
    derived from the secret, 40 bits), stable while the key is, so equal addresses show
    equal tags. BLAKE2b rather than HMAC-SHA256: the same keyed hash without OpenSSL, whose
    digests cost a knock up to 0.1 ms under load (a lock shared with the worker threads)."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2b(key, person=b"bb-client-tag").digest()[:32]

    def tag(self, address: str) -> str:
        return hashlib.blake2b(address.encode(), key=self._key, digest_size=5).hexdigest().upper()
