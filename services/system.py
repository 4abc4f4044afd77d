"""The composition root: which services exist, and how they run together or alone."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.common.natsserver import EmbeddedNats
    from services.common.service import BaseService
    from services.common.settings import Settings

# In this order the routes are matched: the citizens' busiest path (queue) first.
# Named, not imported: a process imports only the services it runs (a queue process
# has no use for aiortc), and `up`'s parent none of them.
SERVICES: dict[str, str] = {
    "queue": "services.queue.service:QueueService",
    "rooms": "services.rooms.service:RoomsService",
    "audit": "services.audit.service:AuditService",
    "media": "services.media.service:MediaService",
    "booking": "services.booking.service:BookingService",
}
# The pages (services/web) have no store and no bus: a router, not a BaseService.
PAGES = "web"


def service_class(name: str) -> type[BaseService]:
    module, _, attribute = SERVICES[name].partition(":")
    cls: type[BaseService] = getattr(import_module(module), attribute)
    return cls


def build_app(
    settings: Settings,
    names: Sequence[str] | None = None,
    nats: EmbeddedNats | None = None,
    forward_to: str | None = None,
) -> FastAPI:
    """One ASGI app serving the named services (all by default) under one origin;
    with ``forward_to``, every route it does not serve is passed on to that address."""
    from services.common.forward import Forwarder
    from services.common.web import create_app

    wanted = list(names or [*SERVICES, PAGES])
    services = [service_class(name)(settings) for name in wanted if name in SERVICES]

    def nats_url() -> str:
        if settings.nats_url:
            return settings.nats_url
        if nats is None:
            raise RuntimeError("BB_NATS_URL is not set and no embedded NATS server runs")
        return nats.url

    app = create_app(settings, services, nats_url)
    if PAGES in wanted:
        from services.web.api import router as web_router

        app.include_router(web_router)
    if settings.staff_hosts:  # staff routes only on the staff host names
        from services.common.entry import StaffEntry, staff_hosts

        app.add_middleware(StaffEntry, hosts=staff_hosts(settings.staff_hosts))
    if forward_to:
        forwarder = Forwarder(forward_to, upstream_keep_alive=settings.http_keep_alive_seconds)
        app.mount("/", forwarder)  # after every route: only what nothing here matched
        app.state.on_stop.append(forwarder.aclose)
    return app
