"""The staff's own entry: staff, DPO and operator routes only on the staff host names.

With ``BB_STAFF_HOSTS`` set, a request for a staff-only route (``STAFF_ONLY``) whose
``Host`` is not one of those names answers 404, as if the route did not exist: the
citizens' host can be published to the internet and the staff host kept on the intranet
or the VPN. Routes that citizens and staff share (joining and leaving a consultation, the
media signalling, the pages' assets) are served on both.

The ``Host`` header is what the client sent, so the separation holds where the network
decides which host a client can reach: in Kubernetes the staff Ingress belongs to an
ingress class whose controller is reachable only from the intranet (deploy/k8s/overlays/
staff-entry), and the public controller has no rule for the staff host. The same
patterns are that overlay's public Ingress paths (tests/deploy check they agree).
Under ``buergerbuero up`` each process that takes a connection checks it (the forwarder
keeps ``Host``), before any route or forwarding.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Staff, DPO and operator routes: pages and API (regular expressions on the path).
STAFF_ONLY = (
    r"/staff(/.*)?",
    r"/dpo(/.*)?",
    r"/api/v1/auth(/.*)?",
    r"/api/v1/audit(/.*)?",
    r"/api/v1/offices(/.*)?",
    r"/api/v1/departments/queues/stream",
    r"/api/v1/departments/[^/]+/queue(/.*)?",
    r"/api/v1/tickets/[^/]+/(admit|decline|transfer|message)",
    r"/api/v1/consultations/[^/]+",
    r"/api/v1/consultations/[^/]+/(invitations(/.*)?|end)",
)
_STAFF_ONLY = re.compile("|".join(f"(?:{pattern})" for pattern in STAFF_ONLY))


def staff_hosts(setting: str) -> frozenset[str]:
    return frozenset(name.strip().lower() for name in setting.split(",") if name.strip())


def is_staff_only(path: str) -> bool:
    return _STAFF_ONLY.fullmatch(path) is not None


def host_name(scope: Scope) -> str:
    """The request's host name, without port (``[::1]:8000`` -> ``[::1]``)."""
    host = Headers(scope=scope).get("host", "").strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class StaffEntry:
    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and self.hosts
            and is_staff_only(scope["path"])
            and host_name(scope) not in self.hosts
        ):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = JSONResponse({"detail": "Not Found"}, status_code=404,
                                    headers={"Cache-Control": "no-store"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
