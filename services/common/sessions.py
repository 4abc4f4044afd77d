"""Staff sessions that end when they should: at sign-out, when the account changes, when idle.

A session is a signed token (scope ``session``) in the ``bb_session`` cookie. Every
process that serves a staff route (each queue process and the core process under
``buergerbuero up``, every replica in Kubernetes) checks it itself, without a call:

* ``sid``, the session's id, stays the same for its whole life; ``auth_time`` is when its
  owner signed in.
* It expires ``session_idle_minutes`` after it was issued, and never later than
  ``auth_time + session_hours``. A request that comes after half of that time gets a
  fresh token in a new cookie (same ``sid``, ``auth_time`` and CSRF token; see
  ``auth.py``): a session in use lives up to ``session_hours``, one left alone ends
  after the idle time.
* Before its time a session ends through the NATS KV bucket ``bb_sessions``, whose entries
  outlive any session (the bucket's age limit is at least ``session_hours``):
  ``ended.<sid>`` when its owner signs out, and ``void.<account>`` = T when an account's
  password or roles change or it is disabled: every session of the account signed in
  before T is void (written by the rooms service, which follows the accounts' store).
  A session signed in at the identity provider also carries the provider's ``psub`` (its
  user) and ``psid`` (its session, where the provider names one); the provider's
  back-channel logout writes ``pended.<psid>`` (that session ends) or ``pvoid.<psub>`` = T
  (every session of that user signed in before T is void).

Every process watches the bucket into memory (``SessionRegistry``): a check asks nothing
over the network, and an ending reaches every process within milliseconds. While NATS is
away, what was watched applies: the process where someone signs out knows it at once,
the others when NATS is back (until then such a session still ends when idle). A process
that has not read the bucket once cannot tell and refuses every session (503); it reads
it before it starts serving. A process without a bus (the pages alone, ``serve web`` in
Kubernetes) checks signature and expiry only: its pages hold no data; the services that
hand out the data check everything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import nats.errors
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.kvwatch import follow_bucket
from services.common.logging import get_logger
from services.common.settings import Settings
from services.common.tokens import Claims

log = get_logger(__name__)

SESSIONS_BUCKET = "bb_sessions"
ENDED = "ended."
VOID = "void."
PROVIDER_ENDED = "pended."
PROVIDER_VOID = "pvoid."
LOAD_WAIT = 15.0  # seconds a starting process may take to read the bucket once
WRITE_WAIT = 2.0  # seconds a request waits for NATS before the write is retried behind it
RETRY_SECONDS = 1.0


class SessionEnding(asyncio.Event):
    """Set when one session ends before its time (what a long response of it waits on)."""

    def __init__(self, claims: Claims) -> None:
        super().__init__()
        self.subject = claims.subject
        self.auth_time = float(claims["auth_time"])
        self.provider_user = claims.extra.get("psub")
        self.provider_session = claims.extra.get("psid")


class SessionEnded(Exception):
    """Signed out, or void since its account changed."""


class SessionsUnknown(Exception):
    """This process has not read the shared state of sessions yet: it cannot tell."""


def key_part(name: str) -> str:
    """A KV key part for any id (an OIDC subject or session may hold any character)."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _from_key_part(part: str) -> str:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def lifetime_seconds(settings: Settings) -> float:
    """How long a session can live at most, and so how long its ending must be kept."""
    return settings.session_hours * 3600.0


async def sessions_bucket(bus: Bus, settings: Settings) -> KeyValue:
    """The bucket, its age limit raised to a session's lifetime if it was made shorter
    (with a shorter ``session_hours`` once): an ending must not lapse before its session."""
    lifetime = lifetime_seconds(settings) + 60
    bucket = await bus.key_value(SESSIONS_BUCKET, ttl_seconds=lifetime)
    info = await bus.js.stream_info(f"KV_{SESSIONS_BUCKET}")
    if info.config.max_age and info.config.max_age < lifetime:
        try:
            await bus.js.update_stream(dataclasses.replace(info.config, max_age=lifetime))
            log.info("sessions_bucket_age_raised", seconds=lifetime)
        except nats.errors.Error as error:  # not this service's to change: the writer will
            log.warning("sessions_bucket_age_short", seconds=info.config.max_age,
                        needed=lifetime, error=repr(error))
    return bucket


async def raise_void_marker(bucket: KeyValue, staff_id: str, at: float,
                            prefix: str = VOID) -> None:
    """``void.<account>`` (or ``pvoid.<provider user>``) = ``at``, unless it holds a later
    time already (compare-and-set: two writers never lower it, so every process ends up
    with the latest)."""
    key = prefix + key_part(staff_id)
    for _ in range(10):
        try:
            entry = await bucket.get(key)
        except KeyNotFoundError:
            entry = None
        try:
            if entry is None or not entry.value:
                await bucket.create(key, repr(at).encode())
            elif float(entry.value) >= at:
                return
            else:
                await bucket.update(key, repr(at).encode(), last=entry.revision)
            return
        except KeyWrongLastSequenceError:
            continue  # another writer came first: look again
    raise RuntimeError(f"could not raise {key}")


class SessionRegistry:
    """This process's view of ``bb_sessions``: which sessions ended before their time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lifetime = lifetime_seconds(settings)
        self.enforced = False
        self._bucket: KeyValue | None = None
        self._ended: dict[str, float] = {}  # sid -> when the session would end anyway
        self._void_before: dict[str, float] = {}  # staff id -> sessions before this are void
        self._provider_ended: dict[str, float] = {}  # psid -> when its sessions end anyway
        self._provider_void_before: dict[str, float] = {}  # psub -> as _void_before
        self._loaded = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # The sessions of responses still running (streams): sid -> its ending.
        self._endings: weakref.WeakValueDictionary[str, SessionEnding] = (
            weakref.WeakValueDictionary()
        )

    async def start(self, buses: Mapping[str, Bus]) -> None:
        """Follow the bucket through one of this process's NATS connections (the rooms
        service's if it runs here: it writes the endings); no bus, no shared state."""
        bus = buses.get("rooms") or next(iter(buses.values()), None)
        if bus is None:
            return
        self.enforced = True
        async with asyncio.timeout(LOAD_WAIT):
            self._bucket = await self._open(bus)
            self._spawn(self._follow(self._bucket, bus))
            await self._loaded.wait()

    async def _open(self, bus: Bus) -> KeyValue:
        """The bucket; a service that may only read it waits until the rooms service made it."""
        while True:
            try:
                return await sessions_bucket(bus, self.settings)
            except nats.errors.Error as error:
                log.info("sessions_bucket_not_yet", error=repr(error))
                await asyncio.sleep(RETRY_SECONDS)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def check(self, claims: Claims) -> None:
        """Raise unless the session (already verified: signature, expiry) is still on."""
        if not self.enforced:
            return
        if not self._loaded.is_set():
            raise SessionsUnknown("sessions not read yet")
        if claims["sid"] in self._ended:
            raise SessionEnded("signed out")
        void_before = self._void_before.get(claims.subject)
        if void_before is not None and float(claims["auth_time"]) < void_before:
            raise SessionEnded("account changed")
        if claims.extra.get("psid") in self._provider_ended:
            raise SessionEnded("signed out at the identity provider")
        void_before = self._provider_void_before.get(claims.extra.get("psub", ""))
        if void_before is not None and float(claims["auth_time"]) < void_before:
            raise SessionEnded("signed out at the identity provider")

    def ending(self, claims: Claims) -> SessionEnding:
        """What a response of this session may wait on: set when the session ends (keep
        it while waiting; it is forgotten when nothing holds it)."""
        sid = str(claims["sid"])
        ending = self._endings.get(sid)
        if ending is None:
            ending = SessionEnding(claims)
            self._endings[sid] = ending
            try:
                self.check(claims)
            except (SessionEnded, SessionsUnknown):
                ending.set()
        return ending

    async def end(self, claims: Claims) -> None:
        """Sign-out: at once here, in every other process as soon as NATS has it."""
        sid = str(claims["sid"])
        lapses = float(claims["auth_time"]) + self.lifetime
        self._ended_seen(sid, lapses)
        if self._bucket is not None:
            await self._write(self._bucket, ENDED + sid, repr(lapses).encode())

    async def void_sessions_before(self, staff_id: str, at: float) -> None:
        """Every session of ``staff_id`` signed in before ``at`` is void."""
        self._void_seen(staff_id, at)
        if self._bucket is not None:
            bucket = self._bucket
            await self._retrying(lambda: raise_void_marker(bucket, staff_id, at), staff_id)

    async def end_at_provider(self, provider_user: str | None, provider_session: str | None,
                              at: float) -> None:
        """The identity provider signed its user out (back-channel logout): its session
        ``provider_session`` ends here; without one, every session of ``provider_user``
        signed in before ``at``."""
        if provider_session is not None:
            lapses = at + self.lifetime
            self._provider_ended_seen(provider_session, lapses)
            if self._bucket is not None:
                key = PROVIDER_ENDED + key_part(provider_session)
                await self._write(self._bucket, key, repr(lapses).encode())
        elif provider_user is not None:
            self._provider_void_seen(provider_user, at)
            if self._bucket is not None:
                bucket = self._bucket
                await self._retrying(lambda: raise_void_marker(
                    bucket, provider_user, at, PROVIDER_VOID), provider_user)

    async def _write(self, bucket: KeyValue, key: str, value: bytes) -> None:
        async def put() -> None:
            await bucket.put(key, value)

        await self._retrying(put, key)

    async def _retrying(self, write: Callable[[], Awaitable[None]], what: str) -> None:
        """Try now (a request waits at most WRITE_WAIT); if NATS does not take it, keep
        trying in the background until it does."""
        try:
            await asyncio.wait_for(write(), WRITE_WAIT)
            return
        except (nats.errors.Error, TimeoutError, RuntimeError) as error:
            log.warning("session_end_deferred", key=what, error=type(error).__name__)

        async def keep_trying() -> None:
            while True:
                await asyncio.sleep(RETRY_SECONDS)
                with contextlib.suppress(nats.errors.Error, TimeoutError, RuntimeError):
                    await asyncio.wait_for(write(), WRITE_WAIT)
                    log.info("session_end_shared", key=what)
                    return

        self._spawn(keep_trying())

    async def _follow(self, bucket: KeyValue, bus: Bus) -> None:
        """Watch the bucket, anew after every reconnection to NATS (kvwatch.py)."""

        async def opened() -> KeyValue:
            return bucket

        def entry_seen(entry: KeyValue.Entry) -> None:
            if entry.operation is None and entry.value:
                self._seen(entry.key, entry.value)

        await follow_bucket(SESSIONS_BUCKET, lambda: bus.nc, opened, entry_seen,
                            self._loaded.set)

    def _seen(self, key: str, value: bytes) -> None:
        try:
            if key.startswith(ENDED):
                self._ended_seen(key[len(ENDED):], float(value))
            elif key.startswith(VOID):
                self._void_seen(_from_key_part(key[len(VOID):]), float(value))
            elif key.startswith(PROVIDER_ENDED):
                self._provider_ended_seen(_from_key_part(key[len(PROVIDER_ENDED):]), float(value))
            elif key.startswith(PROVIDER_VOID):
                self._provider_void_seen(_from_key_part(key[len(PROVIDER_VOID):]), float(value))
        except ValueError:
            log.warning("session_entry_unreadable", key=key)
        self._forget_lapsed()

    def _ended_seen(self, sid: str, lapses: float) -> None:
        self._ended[sid] = lapses
        if (ending := self._endings.get(sid)) is not None:
            ending.set()

    def _void_seen(self, staff_id: str, at: float) -> None:
        self._void_before[staff_id] = max(at, self._void_before.get(staff_id, at))
        for ending in list(self._endings.values()):
            if ending.subject == staff_id and ending.auth_time < at:
                ending.set()

    def _provider_ended_seen(self, provider_session: str, lapses: float) -> None:
        self._provider_ended[provider_session] = lapses
        for ending in list(self._endings.values()):
            if ending.provider_session == provider_session:
                ending.set()

    def _provider_void_seen(self, provider_user: str, at: float) -> None:
        before = self._provider_void_before
        before[provider_user] = max(at, before.get(provider_user, at))
        for ending in list(self._endings.values()):
            if ending.provider_user == provider_user and ending.auth_time < at:
                ending.set()

    def _forget_lapsed(self) -> None:
        """Endings of sessions that would have expired anyway are no longer needed."""
        now = time.time()
        if len(self._ended) > 1000:
            self._ended = {sid: lapses for sid, lapses in self._ended.items() if lapses > now}
        if len(self._provider_ended) > 1000:
            self._provider_ended = {
                sid: lapses for sid, lapses in self._provider_ended.items() if lapses > now
            }
        if len(self._provider_void_before) > 1000:
            self._provider_void_before = {
                user: at for user, at in self._provider_void_before.items()
                if at + self.lifetime > now
            }
        if len(self._void_before) > 1000:
            self._void_before = {
                staff: at for staff, at in self._void_before.items() if at + self.lifetime > now
            }

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
