"""The staff dashboard in Chromium with 2,000 citizens waiting in one line: it renders the
first 50 and counts the rest; a flood from one connection is marked and declined with one
action; and a citizen who comes to the full line is told to come back later.

The system is this module's own (the line limit at 2,000, so the planted line is full);
the tickets are planted over the API from 2,000 addresses, which the server takes from
X-Forwarded-For because the test talks to it over loopback, as `up`'s own forwarder does.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from services.common.natsserver import EmbeddedNats
from tests.conftest import SystemProcess
from tests.helpers import eventually, open_department
from tests.web.conftest import ContextFactory, sign_in, staff_api, watch_errors

pytestmark = pytest.mark.timeout(300)

PLANTED = 2000
SHOWN = 50
FLOOD_ADDRESS = "203.0.113.77"


@pytest.fixture(scope="module")
def web_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    """The pages' fixtures (tests/web/conftest.py) on this module's system."""
    base: Path = tmp_path_factory.mktemp("flood-web")
    nats = EmbeddedNats(base / "nats")
    nats.start()
    processes = os.environ.get("BB_TEST_QUEUE_PROCESSES", "2")
    system = SystemProcess(
        base / "data",
        nats.url,
        env={
            "BB_LINE_LIMIT": str(PLANTED),
            "BB_KNOCKS_PER_CLIENT_PER_MINUTE": "10",
            "BB_WAITING_TICKETS_PER_CLIENT": "3",
        },
        args=["up", "--queue-processes", processes],
    )
    system.start(timeout=60)
    yield system
    system.stop()
    nats.stop()


def _plant(system: SystemProcess, dept: str) -> None:
    """Three tickets from one connection first, then one from each of 1,997 others."""
    addresses = [FLOOD_ADDRESS] * 3 + [f"10.{n // 250}.{n % 250}.1" for n in range(PLANTED - 3)]

    def knock(item: tuple[int, str]) -> int:
        """As the knock page does: a 503 "busy" (two queue processes raced for the same
        waiting numbers; nothing stored) is knocked again with the same knock id."""
        n, address = item
        body = {"language": "de", "display_name": f"Bürger {n}", "knock_id": str(uuid.uuid4())}
        with httpx.Client(base_url=f"{system.base}/api/v1", timeout=30) as client:
            for _ in range(4):
                response = client.post(
                    f"/departments/{dept}/knock", json=body, headers={"X-Forwarded-For": address}
                )
                if response.status_code != 503:
                    break
                assert response.json()["reason"] == "busy", response.text
                time.sleep(int(response.headers["Retry-After"]))
            return response.status_code

    flood = [knock((n, FLOOD_ADDRESS)) for n in range(3)]  # in this order, first in line
    with ThreadPoolExecutor(8) as pool:
        rest = list(pool.map(knock, enumerate(addresses[3:], start=3)))
    assert flood == [201] * 3 and rest.count(201) == PLANTED - 3, {s: rest.count(s) for s in rest}


def test_a_flooded_line_stays_usable(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    with web_system.client() as client:
        dept = open_department(client, "demo")
    _plant(web_system, dept)
    anna = staff_api(web_system)
    eventually(lambda: anna.get(f"/departments/{dept}/queue").json()["total"] == PLANTED)

    staff = new_context().new_page()
    errors = watch_errors(staff)
    sign_in(staff)
    office = staff.locator(".office", has=staff.locator(f"a[href='/staff/office/{dept}']"))
    expect(office.locator("[data-slot=queue-heading]")).to_contain_text(str(PLANTED))
    expect(office.locator("li[data-ticket]")).to_have_count(SHOWN)
    expect(office.locator("[data-slot=more]")).to_contain_text(str(PLANTED - SHOWN))

    # The three from one connection are marked, and declined together.
    marked = office.locator("li[data-ticket]", has=staff.locator("[data-slot=same-client]:visible"))
    expect(marked).to_have_count(3)
    expect(marked.first).to_contain_text("3 Tickets vom selben Anschluss")
    shared = office.locator("[data-slot=shared]")
    expect(shared).to_contain_text("3 Tickets wartend")
    assert FLOOD_ADDRESS not in shared.inner_text()
    shared.get_by_role("button", name="Alle 3 Tickets von Anschluss").click()
    staff.get_by_role("dialog").get_by_role("button", name="Alle ablehnen").click()
    expect(staff.locator("#action-result")).to_contain_text("3 Tickets abgelehnt")
    expect(office.locator("[data-slot=queue-heading]")).to_contain_text(str(PLANTED - 3))
    expect(marked).to_have_count(0)
    expect(office.locator("li[data-ticket]")).to_have_count(SHOWN)  # the next moved up
    expect(shared).to_be_hidden()
    assert not errors, errors

    # The line was full until the flood was declined: now three may knock again, and
    # after them the next is told the line is full.
    for n in range(3):
        with httpx.Client(base_url=f"{web_system.base}/api/v1", timeout=10) as client:
            response = client.post(
                f"/departments/{dept}/knock",
                json={"language": "de", "display_name": f"Später {n}"},
                headers={"X-Forwarded-For": f"172.16.0.{n + 1}"},
            )
            assert response.status_code == 201, response.text

    def line_full() -> bool:
        with web_system.client() as client:
            return bool(client.get(f"/departments/{dept}").json()["line_full"])

    eventually(line_full)
    citizen = new_context().new_page()
    citizen.goto(f"/office/{dept}")
    expect(citizen.locator("#line-full")).to_be_visible()
    expect(citizen.locator("#line-full")).to_contain_text("Bitte kommen Sie später wieder")
    expect(citizen.locator("#knock")).to_be_hidden()
