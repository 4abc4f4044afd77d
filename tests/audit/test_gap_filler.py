"""The gap filler appends only what the bus can no longer bring: holes below a position the
log has seen at once, the rest of a publisher's outbox one sweep later — never events that
are merely still on their way (a flood made them look like losses before)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest

from services.audit.completeness import GapFiller
from services.common.natsserver import EmbeddedNats
from services.common.outbox import read_subject
from tests.audit.support import ScratchLog, entries, knocked

pytestmark = pytest.mark.timeout(60)


class NatsOnly:
    """What the filler uses of a Bus: its connection."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc


async def test_holes_are_filled_and_events_on_their_way_are_left_to_the_bus(
    tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    log = ScratchLog(tmp_path)
    outbox = {n: knocked(n) for n in (1, 2, 3, 5, 6, 7)}  # 4 is internal: never published
    nc = await nats.connect(nats_server.url)

    async def answer(msg: Any) -> None:
        after = json.loads(msg.data)["after"]
        events = [json.loads(e.to_wire()) for n, e in sorted(outbox.items()) if n > after]
        await msg.respond(json.dumps({"events": events, "through": 7}).encode())

    await nc.subscribe(read_subject("queue"), cb=answer)
    filler = GapFiller(log.store, NatsOnly(nc), interval=3600)  # type: ignore[arg-type]
    log.store.append(entries([outbox[1], outbox[2], outbox[5]]))  # 3 lost; 6 and 7 on the way

    assert await filler.catch_up("queue", filler._fill_until("queue", sweep=False)) == 1
    assert log.store.watermarks.through["queue"] == 5 and filler.filled == 1

    # A sweep fills nothing it has not seen the outbox hold one sweep before.
    assert await filler.catch_up("queue", filler._fill_until("queue", sweep=True)) == 0
    await filler._note_outbox_end("queue")
    log.store.append(entries([outbox[6]]))  # the bus brought it meanwhile
    assert await filler.catch_up("queue", filler._fill_until("queue", sweep=True)) == 1
    assert log.store.watermarks.through["queue"] == 7 and filler.filled == 2  # only 7 was lost
    in_order_appended = entries([outbox[n] for n in (1, 2, 5, 3, 6, 7)])
    assert [r[1] for r in log.store.records(0, 6)] == [e.data for e in in_order_appended]
    await nc.close()


async def test_a_publisher_that_is_not_running_is_asked_again_later(
    tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    log = ScratchLog(tmp_path)
    nc = await nats.connect(nats_server.url)
    filler = GapFiller(log.store, NatsOnly(nc), interval=3600)  # type: ignore[arg-type]
    log.store.append(entries([knocked(1), knocked(3)]))
    assert await asyncio.wait_for(filler.catch_up("queue", 3), 10) == 0  # no responder
    assert log.store.watermarks.through["queue"] == 1
    await nc.close()
