"""ICE configuration of the room's peer connections and of the browsers.

aiortc's default configuration contacts Google's public STUN server; rooms use
only the ICE servers they are given (none by default: host candidates only).
aioice never offers 127.0.0.1, so loopback-only use (tests, a laptop without a
network) needs ``loopback_host_candidates()`` (loopback only) or
``add_loopback_host_candidate()`` (loopback besides the real addresses).

TURN credentials are either a fixed pair or, with coturn's ``use-auth-secret``,
time-limited ones derived from the shared secret (the "TURN REST API"):
username ``<expiry unix time>:<name>``, password
``base64(HMAC-SHA1(secret, username))``. aiortc uses only the first STUN and
the first TURN URL of its configuration.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from services.common.settings import Settings

LOOPBACK_IPV4 = "127.0.0.1"
TURN_SCHEMES = ("turn:", "turns:")


def rtc_configuration(
    ice_servers: Sequence[RTCIceServer] = (), relay_only: bool = False
) -> RTCConfiguration:
    """A configuration that contacts exactly ``ice_servers`` (and no public STUN)."""
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=list(ice_servers), iceTransportPolicy=policy)


def turn_credentials(settings: Settings, name: str, lifetime_seconds: float) -> tuple[str, str]:
    """(username, credential) for a TURN server, or ("", "") if none are configured."""
    if settings.media_turn_secret:
        username = f"{int(time.time() + lifetime_seconds)}:{name}"
        digest = hmac.new(
            settings.media_turn_secret.encode(), username.encode(), hashlib.sha1
        ).digest()
        return username, base64.b64encode(digest).decode()
    return settings.media_turn_username or "", settings.media_turn_credential or ""


def _split(urls: Sequence[str]) -> tuple[list[str], list[str]]:
    turn = [url for url in urls if url.startswith(TURN_SCHEMES)]
    stun = [url for url in urls if not url.startswith(TURN_SCHEMES)]
    return stun, turn


def server_configuration(settings: Settings, replica_id: str) -> RTCConfiguration:
    """The rooms' own configuration, from settings."""
    stun, turn = _split(settings.media_ice_servers)
    servers = [RTCIceServer(urls=stun)] if stun else []
    if turn:
        lifetime = settings.participant_token_hours * 3600 * 2
        username, credential = turn_credentials(settings, f"media-{replica_id}", lifetime)
        servers.append(RTCIceServer(urls=turn, username=username, credential=credential))
    return rtc_configuration(servers, settings.media_relay_only)


def browser_ice_configuration(settings: Settings, participant_id: str) -> dict[str, Any]:
    """What a browser passes to ``new RTCPeerConnection(...)``."""
    stun, turn = _split(settings.media_ice_servers)
    servers: list[dict[str, Any]] = [{"urls": stun}] if stun else []
    if turn:
        lifetime = settings.participant_token_hours * 3600
        username, credential = turn_credentials(settings, participant_id, lifetime)
        servers.append({"urls": turn, "username": username, "credential": credential})
    return {
        "iceServers": servers,
        "iceTransportPolicy": "relay" if settings.media_relay_only else "all",
    }


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
