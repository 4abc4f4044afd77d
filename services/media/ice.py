"""ICE configuration from settings: the rooms' own, and what browsers are given.

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.common.settings import Settings

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

TURN_SCHEMES = ("turn:", "turns:")


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


def server_configuration(settings: Settings, replica_id: str) -> "RTCConfiguration":
    """The rooms' own configuration, from settings (only where rooms run: aiortc)."""
    from aiortc import RTCIceServer

    from services.media.sfu.ice import rtc_configuration

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
