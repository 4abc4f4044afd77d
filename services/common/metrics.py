"""Platform metrics (Prometheus). Services add their own next to their code."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RELAY_PUBLISHED = Counter(
    "bb_relay_published_events_total", "Events published from the outbox", ["service"]
)
RELAY_DUPLICATES = Counter(
    "bb_relay_duplicate_events_total",
    "Re-sent events the stream dropped as duplicates",
    ["service"],
)
RELAY_LAG = Gauge(
    "bb_relay_lag_events",
    "Stored events not yet confirmed published",
    ["service"],
    multiprocess_mode="livemax",
)
RELAY_FAILURES = Counter("bb_relay_failures_total", "Failed publish attempts", ["service"])
RELAY_LEADER = Gauge(
    "bb_relay_leader",
    "1 while this process holds the lease to relay the service's outbox",
    ["service"],
    multiprocess_mode="livemax",
)
CONSUMED = Counter("bb_consumer_events_total", "Events processed by a consumer", ["consumer"])
CONSUMER_FAILURES = Counter(
    "bb_consumer_failures_total", "Events whose handling failed (retried)", ["consumer"]
)
CONSUMER_DEFERRALS = Counter(
    "bb_consumer_deferrals_total", "Events that came too early (redelivered later)", ["consumer"]
)
CONSUMER_LAG = Gauge(
    "bb_consumer_lag_events",
    "Events waiting for a consumer",
    ["consumer"],
    multiprocess_mode="livemax",
)
HTTP_REQUESTS = Counter(
    "bb_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bb_http_request_duration_seconds",
    "HTTP request duration",
    ["service", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
SIGNIN_FAILURES = Counter(
    "bb_signin_failures_total", "Sign-ins refused for a wrong user name or password", ["reason"]
)
SIGNIN_THROTTLED = Counter(
    "bb_signin_throttled_total",
    "Sign-ins refused (429) after too many failures, by the limit reached",
    ["limit"],
)
