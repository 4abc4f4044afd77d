"""ICE configuration of the room's peer connections.

aiortc's default configuration contacts Google's public STUN server; rooms use
only the ICE servers they are given (none by default: host candidates only).
aioice never offers 127.0.0.1, so loopback-only use (tests, a laptop without a
network) needs ``loopback_host_candidates()``.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

LOOPBACK_IPV4 = "127.0.0.1"


def rtc_configuration(ice_servers: Sequence[RTCIceServer] = ()) -> RTCConfiguration:
    """A configuration that contacts exactly ``ice_servers`` (and no public STUN)."""
    return RTCConfiguration(iceServers=list(ice_servers))


@contextmanager
def loopback_host_candidates() -> Iterator[None]:
    """Within this block every peer connection of the process gathers a single
    host candidate on 127.0.0.1 (process-wide: for tests and local use only)."""
    original = aioice.ice.get_host_addresses

    def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [LOOPBACK_IPV4] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_only
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
