"""Anonymity is a property of where the citizen is now: a named walk-in transferred into an
anonymous counselling department is a pseudonym there, in every view its staff have, and
the name is gone from the visit data as well."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, StreamReader, department_id, knock, open_department

NAME = "Erika Mustermann"


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(tmp_path_factory.mktemp("anonymity-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, nats_url: str) -> Iterator[SystemProcess]:
    system = SystemProcess(Path(tmp_path_factory.mktemp("anonymity-data")), nats_url)
    try:
        system.start()
        yield system
    finally:
        system.stop()


def stored_visit(nats_url: str, ticket_id: str) -> bytes | None:
    async def read() -> bytes | None:
        connection = await nats.connect(nats_url)
        try:
            bucket = await connection.jetstream().key_value("bb_visits")
            try:
                return (await bucket.get(ticket_id)).value
            except KeyNotFoundError:
                return None
        finally:
            await connection.close()

    return asyncio.run(read())


def open_anonymous_counselling(system: SystemProcess, carla: StaffClient) -> str:
    citizen = system.client()
    hiv = department_id(citizen, "hiv-beratung")
    details = citizen.get(f"/departments/{hiv}").json()
    assert details["anonymous"] is True
    if not details["open"]:
        assert carla.post(f"/offices/{hiv}/open").status_code == 200
    return open_department(citizen, "hiv-beratung")


def test_a_named_ticket_transferred_into_anonymous_counselling_loses_its_name(
    system: SystemProcess, nats_url: str
) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    carla = StaffClient(f"{system.base}/api/v1", "carla")
    hiv = open_anonymous_counselling(system, carla)
    line = StreamReader(
        f"{system.base}/api/v1/departments/{hiv}/queue/stream", cookies=carla.http.cookies
    )
    try:
        line.wait_for(lambda name, _: name == "snapshot")
        ticket = knock(citizen, demo, display_name=NAME, topic="antrag")
        stored = stored_visit(nats_url, ticket["ticket_id"])
        assert stored is not None and NAME.encode() in stored  # named where it knocked

        anna = StaffClient(f"{system.base}/api/v1", "anna")
        moved = anna.post(f"/tickets/{ticket['ticket_id']}/transfer", {"department_id": hiv})
        assert moved.status_code == 200, moved.text

        arrived = line.wait_for(
            lambda name, data: name == "knocked" and data["ticket_id"] == ticket["ticket_id"]
        )
        pseudonym = (None, True, ticket["number"])  # no name: the page shows "Gast 17"
        assert (arrived["display_name"], arrived["anonymous"], arrived["number"]) == pseudonym
        queue = carla.get(f"/departments/{hiv}/queue")
        assert queue.status_code == 200
        (entry,) = [w for w in queue.json()["waiting"] if w["ticket_id"] == ticket["ticket_id"]]
        assert (entry["display_name"], entry["anonymous"], entry["number"]) == pseudonym
        assert_nameless(queue.json())
        assert_nameless([data for _, data in line.events])

        stored = stored_visit(nats_url, ticket["ticket_id"])
        assert stored is None or NAME.split()[0].encode() not in stored
        if stored is not None:
            assert json.loads(stored)["display_name"] is None
    finally:
        line.close()


def assert_nameless(view: Any) -> None:
    text = json.dumps(view, ensure_ascii=False)
    for part in NAME.split():
        assert part not in text
