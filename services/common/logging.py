"""structlog JSON logs with ``service`` and ``correlation_id`` on every line."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from services.common.redaction import redact_secrets

CORRELATION_HEADER = "X-Correlation-ID"


def configure_logging(
    level: str = "INFO", json: bool = True, service: str = "buergerbuero"
) -> None:
    def add_service(
        _: structlog.types.WrappedLogger, __: str, event: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event.setdefault("service", service)
        return event

    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_secrets,  # last: also what an exception's text quotes
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    # Our own lines go straight to stderr (the stdlib logging detour costs a request
    # about as much as its routing); other libraries' lines get the same JSON below.
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _add_logger_name], processor=renderer
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings, which may carry tokens: we log requests ourselves.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every URL the forwarder passes on, as our own request line does already.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").propagate = True


def _add_logger_name(
    logger: structlog.types.WrappedLogger, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """The same key as our own lines carry (``logger_name``)."""
    record = event.get("_record")
    if record is not None:
        event["logger_name"] = record.name
    return event


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def correlation(correlation_id: str | None, **context: str) -> Iterator[str]:
    """Bind the correlation id (and e.g. ``service``) to every log line in this context."""
    cid = correlation_id or new_correlation_id()
    with structlog.contextvars.bound_contextvars(correlation_id=cid, **context):
        yield cid


def current_correlation_id() -> str:
    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return str(value) if value else new_correlation_id()


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    # Lazy: the logger takes its configuration when first used, not when imported.
    return structlog.get_logger(logger_name=name)  # type: ignore[no-any-return]
