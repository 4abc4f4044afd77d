"""Who may read ``/metrics``: operators, not whoever reaches the public port.

The metrics name departments, routes, queue lengths and error rates; a citizen has no use
for them and an attacker a lot. Two settings, usable together:

* ``BB_METRICS_PORT``: a listener of its own for operators (Prometheus scrapes it; in
  Kubernetes only Prometheus may reach it). It serves ``/metrics``, ``/healthz`` and
  ``/readyz`` and nothing else; ``/metrics`` on the public port answers 404.
* ``BB_METRICS_TOKEN``: ``/metrics`` answers only to ``Authorization: Bearer <token>``.

One ASGI layer decides by the local port a connection came in on (``scope["server"]``),
so one uvicorn server serves both listeners and one app holds the figures.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

METRICS_PATH = "/metrics"
OPERATOR_PATHS = frozenset({METRICS_PATH, "/healthz", "/readyz"})


class OperatorAccess:
    def __init__(self, app: ASGIApp, port: int | None = None, token: str | None = None) -> None:
        self.app = app
        self.port = port
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or (self.port is None and not self.token):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        on_operator_port = self.port is not None and _local_port(scope) == self.port
        refusal = None
        if on_operator_port and path not in OPERATOR_PATHS:
            refusal = _not_found()
        elif path == METRICS_PATH:
            if self.port is not None and not on_operator_port:
                refusal = _not_found()
            elif self.token is not None and not self._authorized(scope):
                refusal = JSONResponse(
                    {"detail": "The metrics need the operators' token (Authorization: Bearer)."},
                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await refusal(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        assert self.token is not None
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  self.token)


def _local_port(scope: Scope) -> int | None:
    server = scope.get("server")
    return int(server[1]) if server and len(server) > 1 and server[1] is not None else None


def _not_found() -> JSONResponse:
    return JSONResponse({"detail": "Not Found"}, status_code=404)
