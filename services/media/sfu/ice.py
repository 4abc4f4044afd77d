"""ICE configuration of the room's peer connections.

aiortc's default configuration contacts Google's public STUN server; rooms use
only the ICE servers they are given (none by default: host candidates only).
aioice never offers 127.0.0.1, so loopback-only use (tests, a laptop without a
network) needs ``loopback_host_candidates()`` (loopback only) or
``add_loopback_host_candidate()`` (loopback besides the real addresses).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

LOOPBACK_IPV4 = "127.0.0.1"


def rtc_configuration(
    ice_servers: Sequence[RTCIceServer] = (), relay_only: bool = False
) -> RTCConfiguration:
    """A configuration that contacts exactly ``ice_servers`` (and no public STUN)."""
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=list(ice_servers), iceTransportPolicy=policy)


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


_real_host_addresses = aioice.ice.get_host_addresses


def _with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = _real_host_addresses(use_ipv4, use_ipv6)
    return [*addresses, LOOPBACK_IPV4] if use_ipv4 else addresses


def add_loopback_host_candidate() -> None:
    """Process-wide: gather a 127.0.0.1 host candidate besides the real ones."""
    aioice.ice.get_host_addresses = _with_loopback
