"""The composition root: which services exist, and how they run together or alone."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from services.audit.service import AuditService
from services.common.forward import Forwarder
from services.common.natsserver import EmbeddedNats
from services.common.service import BaseService
from services.common.settings import Settings
from services.common.web import create_app
from services.media.service import MediaService
from services.queue.service import QueueService
from services.rooms.service import RoomsService
from services.web.api import router as web_router

# In this order the routes are matched: the citizens' busiest path (queue) first.
SERVICES: dict[str, type[BaseService]] = {
    "queue": QueueService,
    "rooms": RoomsService,
    "audit": AuditService,
    "media": MediaService,
}
# The pages (services/web) have no store and no bus: a router, not a BaseService.
PAGES = "web"


def build_app(
    settings: Settings,
    names: Sequence[str] | None = None,
    nats: EmbeddedNats | None = None,
    forward_to: str | None = None,
) -> FastAPI:
    """One ASGI app serving the named services (all by default) under one origin;
    with ``forward_to``, every route it does not serve is passed on to that address."""
    wanted = list(names or [*SERVICES, PAGES])
    services = [SERVICES[name](settings) for name in wanted if name in SERVICES]

    def nats_url() -> str:
        if settings.nats_url:
            return settings.nats_url
        if nats is None:
            raise RuntimeError("BB_NATS_URL is not set and no embedded NATS server runs")
        return nats.url

    app = create_app(settings, services, nats_url)
    if PAGES in wanted:
        app.include_router(web_router)
    if forward_to:
        forwarder = Forwarder(forward_to)
        app.mount("/", forwarder)  # after every route: only what nothing here matched
        app.state.on_stop.append(forwarder.aclose)
    return app
