"""Follow a NATS KV bucket for as long as the process lives, NATS restarts included.

A KV watch does not survive a restart of the NATS server: nats-py's watcher then waits
for good, and every entry written afterwards is missed (seen with the staff sessions,
the citizens' visit data and the media room assignments). ``follow_bucket`` watches
anew after every reconnection — opening the bucket again first, since a bucket kept in
memory is gone with the server that held it — and starts from what the bucket holds,
so nothing written meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from services.common.logging import get_logger

log = get_logger(__name__)

RETRY_SECONDS = 1.0  # also how often a quiet watch looks whether NATS reconnected

OpenBucket = Callable[[], Awaitable[KeyValue]]
OnEntry = Callable[[KeyValue.Entry], Awaitable[None] | None]


def reconnections(nc: NATS | None) -> int:
    return int(nc.stats["reconnects"]) if nc is not None else 0


async def follow_bucket(
    name: str,
    connection: Callable[[], NATS | None],
    open_bucket: OpenBucket,
    on_entry: OnEntry,
    on_loaded: Callable[[], None] | None = None,
) -> None:
    """Call (or await) ``on_entry`` for every entry of the bucket (puts, deletes and purges alike,
    the stored ones first, then each change), and ``on_loaded`` once the stored ones
    have been seen, after every (re)start of the watch. Runs until cancelled."""
    while True:
        try:
            seen_reconnections = reconnections(connection())
            bucket = await open_bucket()
            watcher = await bucket.watchall()
            try:
                while reconnections(connection()) == seen_reconnections:
                    try:
                        entry = await watcher.updates(timeout=RETRY_SECONDS)
                    except nats.errors.TimeoutError:
                        continue
                    if entry is None:  # everything stored so far has been seen
                        if on_loaded is not None:
                            on_loaded()
                    else:
                        handled = on_entry(entry)
                        if handled is not None:
                            await handled
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()
            log.info("kv_watch_renewed", bucket=name)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # NATS away: what was seen applies; watch again
            log.warning("kv_watch_interrupted", bucket=name, error=repr(error))
            await asyncio.sleep(RETRY_SECONDS)
