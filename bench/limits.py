"""The benchmark's citizens as the server sees them behind a proxy, and the flood limits
it runs with (services/common/limits.py, services/queue/floods.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

Headers = Callable[[], dict[str, str]]


def citizen_headers() -> Headers:
    """Each call: the headers of a citizen not seen before (10.0.0.1, 10.0.0.2, …), as
    the Ingress would name them in X-Forwarded-For."""
    counter = itertools.count(1)

    def next_citizen() -> dict[str, str]:
        n = next(counter)
        return {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}

    return next_citizen


# The server's flood limits: the product's defaults per client and per ticket; the line
# limit raised above the benchmark's line (tens of thousands in one department), so it is
# checked on every knock without refusing any; or every limit off.
LIMITS = {
    "on": {
        "BB_KNOCKS_PER_CLIENT_PER_MINUTE": "10",
        "BB_WAITING_TICKETS_PER_CLIENT": "3",
        "BB_STREAMS_PER_TICKET": "5",
        "BB_LINE_LIMIT": "1000000",
    },
    "off": {
        "BB_KNOCKS_PER_CLIENT_PER_MINUTE": "0",
        "BB_WAITING_TICKETS_PER_CLIENT": "0",
        "BB_STREAMS_PER_TICKET": "0",
        "BB_LINE_LIMIT": "0",
    },
}
