"""A limit on guessing passwords: failed sign-ins counted per account and per client address.

Failures count in a sliding window (``signin_window_seconds``, 15 minutes by default).
After ``signin_account_failures`` (5) for one account, or ``signin_address_failures`` (20)
from one client address, every sign-in for that account or from that address is refused
(429 with ``Retry-After``) until the oldest counted failure has left the window — with
the right password too, or the refusal would tell a guesser when the guess was right.
A success forgets the account's failures, not the address's. An IPv6 address counts by
its /64, which one subscriber usually holds whole.

The client address is ``clients.client_address``: the connection's peer, or what a
trusted proxy (``BB_TRUSTED_PROXIES``: the queue processes' forwarder on loopback, the
Ingress in Kubernetes) says in ``X-Forwarded-For``.

The counts live in the NATS KV bucket ``bb_signin`` (entries lapse with the window),
changed by compare-and-set, so every process that serves sign-in (every rooms replica)
shares them. Each process also counts in memory: while NATS cannot be asked, its own
count decides, so a guesser gets at most the limit per process even then.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from dataclasses import dataclass

import nats.errors
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common import metrics
from services.common.bus import Bus
from services.common.logging import get_logger
from services.common.settings import Settings

log = get_logger(__name__)

SIGNIN_BUCKET = "bb_signin"
NATS_WAIT = 1.0  # seconds a sign-in waits for the shared count before its own decides
CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class Throttled:
    """Refused for now: which limit, and how many seconds until the next attempt counts."""

    limit: str
    retry_after: int


def _key(kind: str, value: str) -> str:
    return f"{kind}." + base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def wait_seconds(failures: list[float], limit: int, window: float, now: float) -> float:
    """How long until fewer than ``limit`` of ``failures`` lie within the window (0: now)."""
    recent = sorted(t for t in failures if t > now - window)
    if len(recent) < limit:
        return 0.0
    return recent[-limit] + window - now


class SignInThrottle:
    def __init__(self, settings: Settings) -> None:
        self.window = float(settings.signin_window_seconds)
        self.limits = {
            "account": settings.signin_account_failures,
            "address": settings.signin_address_failures,
        }
        self._bucket: KeyValue | None = None
        self._local: dict[str, list[float]] = {}

    async def start(self, bus: Bus) -> None:
        self._bucket = await bus.key_value(SIGNIN_BUCKET, ttl_seconds=self.window)

    async def refusal(self, username: str, address: str) -> Throttled | None:
        """Throttled when either the account or the address has too many recent failures."""
        now = time.time()
        worst: Throttled | None = None
        for kind, key in self._keys(username, address):
            wait = wait_seconds(await self._failures(key), self.limits[kind], self.window, now)
            if wait > 0 and (worst is None or wait > worst.retry_after):
                worst = Throttled(kind, max(1, math.ceil(wait)))
        if worst is not None:
            metrics.SIGNIN_THROTTLED.labels(worst.limit).inc()
            log.warning(
                "signin_throttled",
                limit=worst.limit,
                account=username[:64],
                client=address,
                retry_after_seconds=worst.retry_after,
            )
        return worst

    async def failed(self, username: str, address: str) -> None:
        metrics.SIGNIN_FAILURES.labels("wrong_credentials").inc()
        now = time.time()
        for kind, key in self._keys(username, address):
            await self._record(key, now, self.limits[kind])

    async def address_refusal(self, address: str) -> Throttled | None:
        """Throttled by the address alone (a sign-in at the identity provider, whose
        account is not known before its answer is checked)."""
        wait = wait_seconds(await self._failures(_key("address", address)),
                            self.limits["address"], self.window, time.time())
        if wait <= 0:
            return None
        metrics.SIGNIN_THROTTLED.labels("address").inc()
        log.warning("signin_throttled", limit="address", client=address,
                    retry_after_seconds=math.ceil(wait))
        return Throttled("address", max(1, math.ceil(wait)))

    async def address_failed(self, address: str) -> None:
        """A failed sign-in that names no account (a forged or replayed provider answer)."""
        metrics.SIGNIN_FAILURES.labels("wrong_credentials").inc()
        await self._record(_key("address", address), time.time(), self.limits["address"])

    async def succeeded(self, username: str) -> None:
        key = _key("account", _account(username))
        self._local.pop(key, None)
        if self._bucket is not None:
            try:
                await asyncio.wait_for(self._bucket.purge(key), NATS_WAIT)
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("signin_count_not_shared", error=type(error).__name__)

    def _keys(self, username: str, address: str) -> list[tuple[str, str]]:
        return [
            ("account", _key("account", _account(username))),
            ("address", _key("address", address)),
        ]

    async def _failures(self, key: str) -> list[float]:
        local = self._local.get(key, [])
        if self._bucket is None:
            return local
        try:
            entry = await asyncio.wait_for(self._bucket.get(key), NATS_WAIT)
        except KeyNotFoundError:
            return []
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("signin_count_unreachable", error=type(error).__name__)
            return local
        shared: list[float] = json.loads(entry.value) if entry.value else []
        return shared

    async def _record(self, key: str, now: float, limit: int) -> None:
        self._local[key] = _kept([*self._local.get(key, []), now], limit, self.window, now)
        self._forget_lapsed(now)
        if self._bucket is None:
            return
        try:
            await asyncio.wait_for(self._record_shared(self._bucket, key, now, limit), NATS_WAIT)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("signin_count_not_shared", error=type(error).__name__)

    async def _record_shared(self, bucket: KeyValue, key: str, now: float, limit: int) -> None:
        for _ in range(CAS_ATTEMPTS):
            try:
                entry = await bucket.get(key)
            except KeyNotFoundError:
                entry = None
            previous: list[float] = json.loads(entry.value) if entry and entry.value else []
            value = json.dumps(_kept([*previous, now], limit, self.window, now)).encode()
            try:
                if entry is None:
                    await bucket.create(key, value)
                else:
                    await bucket.update(key, value, last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue  # another sign-in counted meanwhile: count on top of it
        log.warning("signin_count_contended", key=key)

    def _forget_lapsed(self, now: float) -> None:
        if len(self._local) > 10_000:
            self._local = {
                key: times for key, times in self._local.items() if times[-1] > now - self.window
            }


def _account(username: str) -> str:
    return username.strip().lower()[:64]


def _kept(failures: list[float], limit: int, window: float, now: float) -> list[float]:
    """The failures that still count (at most ``limit``: more never lengthen a wait)."""
    return sorted(t for t in failures if t > now - window)[-limit:]
