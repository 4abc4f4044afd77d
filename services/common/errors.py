"""Outcomes that are not bugs: a refused request, and an event that comes too early."""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    def __init__(
        self, status_code: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def too_many_requests(detail: str, retry_after: int, reason: str, **extra: Any) -> Refusal:
    """429 with ``Retry-After`` (and the same in the body, with a reason a page can show
    in its own words)."""
    return Refusal(
        429,
        detail,
        headers={"Retry-After": str(retry_after)},
        reason=reason,
        retry_after_seconds=retry_after,
        **extra,
    )


class RetryLater(Exception):
    """An event whose precondition is not met yet, but will be by a later redelivery.

    E.g. a department's opening hours before its registration, which another replica
    sharing the consumer is handling at that moment. A handler raises it (``from`` the
    cause) and commits nothing; the consumer answers with a delayed negative
    acknowledgement and logs ``event_deferred``, not a failure. Deferred too often, it
    is logged as a failure all the same (see ``Bus.defer_limit``).
    """


# Which HTTP status answers a domain exception: one table per service
# (``BaseService.refusals``), installed as exception handlers by ``create_app``. The
# exception's message is the answer's ``detail`` (written for a person); its ``extra``
# attribute, a dict where present, adds fields (e.g. ``opens_at``, ``nearest``).
StatusTable = dict[type[Exception], int]


def refusal_from(error: Exception, status_code: int) -> Refusal:
    extra = getattr(error, "extra", None)
    return Refusal(status_code, str(error), **(extra if isinstance(extra, dict) else {}))
