"""The HTTP side every service shares: app factory, health, metrics, errors, headers."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import metrics
from services.common.auth import SessionResponses
from services.common.errors import Refusal, StatusTable, refusal_from
from services.common.limits import BodySizeLimit
from services.common.logging import CORRELATION_HEADER, correlation, get_logger
from services.common.openapi import describe_refusals
from services.common.operator_access import OperatorAccess
from services.common.service import BaseService
from services.common.sessions import SessionRegistry
from services.common.settings import Settings
from services.common.tokens import TokenSigner

log = get_logger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(
    settings: Settings,
    services: Sequence[BaseService],
    nats_url: Callable[[], str],
    title: str = "Bürgerbüro",
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = nats_url()
        for service in services:
            await service.start(url)
        # Staff sessions ended elsewhere, followed before the first request is served.
        await app.state.sessions.start({s.name: s.bus for s in services if s.bus})
        # Everything built at start-up lives as long as the process: keep the garbage
        # collector from walking it again and again (pauses of 60-130 ms were measured).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)  # a request allocates thousands of objects
        app.state.started = True
        yield
        app.state.started = False
        await app.state.sessions.stop()
        for service in reversed(services):
            await service.stop()
        for close in app.state.on_stop:
            await close()

    app = FastAPI(
        title=title,
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.signer = TokenSigner(settings.signing_key)
    app.state.sessions = SessionRegistry(settings)
    app.state.services = {service.name: service for service in services}
    app.state.started = False
    app.state.on_stop = []
    for service in services:
        for router in service.routers():
            app.include_router(router)
    _add_operations(app, services)
    _add_error_handlers(app)
    describe_refusals(app)
    for service in services:
        _add_refusals(app, service.refusals)
    app.add_middleware(SessionResponses, registry=app.state.sessions)
    app.add_middleware(BodySizeLimit, default_limit=settings.max_body_bytes)
    app.add_middleware(OperatorAccess, port=settings.metrics_port, token=settings.metrics_token)
    app.add_middleware(RequestContext)  # outermost: a refused body is logged and counted too
    return app


def _add_operations(app: FastAPI, services: Sequence[BaseService]) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """503 until this process's views have caught up with the stream, and while NATS or
        a store cannot be reached (services/common/readiness.py)."""
        checks: dict[str, bool] = {"started": bool(app.state.started)}
        if app.state.started:
            # Consumers are asked only once every relay here has published what its store
            # held: in one process, the queue's view of rooms' offices needs rooms' seed.
            # Each probe waits at most PROBE_TIMEOUT; asked one after the other, five
            # services' probes of an unreachable database added up beyond the caller's
            # patience and /readyz timed out instead of answering 503 (CI, 2026-12-05).
            caught_up = await asyncio.gather(*(s.relay_caught_up() for s in services))
            relays = {s.name: done for s, done in zip(services, caught_up, strict=True)}
            consumers = await asyncio.gather(*(s.consumers_caught_up() for s in services)) \
                if all(relays.values()) else [False] * len(services)
            stores = await asyncio.gather(*(s.store_reachable() for s in services))
            for service, consumed, store in zip(services, consumers, stores, strict=True):
                checks[f"{service.name}.relay_caught_up"] = relays[service.name]
                checks[f"{service.name}.consumers_caught_up"] = consumed
                checks[f"{service.name}.store"] = store
        for service in services:
            checks.update(service.readiness())
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """This process's metrics; under ``buergerbuero up`` with several processes, the sum
    of all of them (prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def refused(_: Request, refusal: Refusal) -> JSONResponse:
        body = jsonable_encoder({"detail": refusal.detail, **refusal.extra})
        return JSONResponse(body, status_code=refusal.status_code, headers=refusal.headers)

    @app.exception_handler(RequestValidationError)
    async def readable_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_describe(e) for e in error.errors()]
        return JSONResponse(
            {"detail": " ".join(problems), "errors": problems},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )


def _add_refusals(app: FastAPI, table: StatusTable) -> None:
    """One handler per domain exception a service names (Starlette picks by the MRO)."""
    for exception_class, status_code in table.items():

        async def refused(
            _: Request, error: Exception, status_code: int = status_code
        ) -> JSONResponse:
            refusal = refusal_from(error, status_code)
            body = jsonable_encoder({"detail": refusal.detail, **refusal.extra})
            return JSONResponse(body, status_code=status_code)

        app.add_exception_handler(exception_class, refused)


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    if error.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(location) or "request"
    message = str(error.get("msg", "is not valid"))
    ctx = error.get("ctx") or {}
    if error.get("type") == "string_too_long":
        message = f"is too long (at most {ctx.get('max_length')} characters)"
    elif error.get("type") == "missing":
        message = "is required"
    return f"The field '{field}' {message[0].lower() + message[1:]}."


class RequestContext:
    """Correlation id, security headers, metrics and one log line for every HTTP request.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which costs a task
    and a memory stream per request and sits in the path of every streamed byte.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        service = _service_of(scope["path"])
        incoming = Headers(scope=scope).get(CORRELATION_HEADER)
        with correlation(incoming, service=service) as cid:

            async def send_with_context(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableHeaders(scope=message)
                    headers[CORRELATION_HEADER] = cid
                    headers.update(SECURITY_HEADERS)
                    headers.setdefault("Cache-Control", "no-store")
                    _observe(scope, service, message["status"], time.perf_counter() - started)
                await send(message)

            await self.app(scope, receive, send_with_context)


SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _observe(scope: Scope, service: str, status_code: int, elapsed: float) -> None:
    """Metrics and the log line, at the response's start (a stream may last for hours)."""
    route = getattr(scope.get("route"), "path", None)
    route = route or ("forwarded" if scope.get("forwarded") else "unmatched")
    method = scope["method"]
    metrics.HTTP_REQUESTS.labels(service, method, route, status_code).inc()
    metrics.HTTP_LATENCY.labels(service, route).observe(elapsed)
    if route not in ("/metrics", "/healthz", "/readyz"):
        # The path template, never the real path or query: they may carry tokens.
        log.info(
            "http_request",
            method=method,
            route=route,
            status=status_code,
            ms=round(elapsed * 1000, 1),
        )


# Which service answers a URL prefix; the same table the Ingress uses.
ROUTES = {
    "departments": "queue",
    "tickets": "queue",
    "offices": "rooms",
    "consultations": "rooms",
    "auth": "rooms",
    "appointments": "booking",
}


# Booking's routes under the queue's and rooms' prefixes: the regular expressions of the
# Ingress "booking-routes" (deploy/k8s/base/ingress.yaml), which win over ROUTES.
NESTED_ROUTES = {
    "/api/v1/departments/[^/]+/(slots|appointments)$": "booking",
    "/api/v1/offices/[^/]+/(appointments|schedule)(/.*)?$": "booking",
}
_NESTED = [(re.compile(pattern), service) for pattern, service in NESTED_ROUTES.items()]


def _service_of(path: str) -> str:
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "api":
        if len(parts) > 5:
            for pattern, service in _NESTED:
                if pattern.match(path):
                    return service
        return ROUTES.get(parts[3], parts[3])
    return "web"
