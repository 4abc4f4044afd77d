"""Retention over the whole data directory of a real ``buergerbuero up``: after the
retention, a planted name and e-mail address are in no file of it — the SQLite stores
(their journals and WAL files included), the embedded NATS server's JetStream store
(the stream and the KV buckets kept on disk; the others are in memory only), the mail
outbox and the ``.eml`` files.

The system runs on its own embedded NATS (``data_dir/nats``), with a retention of 0 days:
a cancelled appointment is over, so its data goes once its cancellation mail is out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import SystemProcess
from tests.helpers import eventually, open_department

pytestmark = pytest.mark.timeout(180)

PLANTED_NAME = "Hildegunde Quastenflosser"
PLANTED_EMAIL = "hildegunde.quastenflosser@example.org"
NEEDLES = (PLANTED_NAME.encode(), PLANTED_EMAIL.encode(), b"Quastenflosser",
           b"quastenflosser")


def files_containing(directory: Path, needles: tuple[bytes, ...]) -> list[Path]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(needle in content for needle in needles):
                found.append(path)
    return found


@pytest.fixture
def own_system(tmp_path: Path) -> Iterator[SystemProcess]:
    """``up`` with its embedded NATS under the data directory, mail as .eml files."""
    system = SystemProcess(tmp_path / "data", "", env={
        "BB_BOOKING_PERSONAL_RETENTION_DAYS": "0",
        "BB_BOOKINGS_PER_CLIENT_PER_HOUR": "10",  # counted per client pseudonym
    })
    del system.env["BB_NATS_URL"]
    system.log_path = tmp_path / "system.log"  # the test's, beside the data directory
    system.start(timeout=90)
    yield system
    system.stop()


def test_after_the_retention_no_file_of_the_data_directory_holds_the_name_or_address(
    own_system: SystemProcess,
) -> None:
    data = own_system.data_dir
    banner = own_system.log_path.read_text()
    assert f"Booking mail:           {(data / 'mail').resolve()} (one .eml file per mail)" \
        in banner
    citizen = own_system.client()
    demo = open_department(citizen, "demo")
    now = datetime.now(UTC) + timedelta(days=1)
    params = {"from": now.isoformat(), "to": (now + timedelta(hours=2)).isoformat()}
    slots = eventually(lambda: citizen.get(f"/departments/{demo}/slots", params=params)
                       .json()["slots"], timeout=30)
    made = citizen.post(f"/departments/{demo}/appointments", json={
        "start": slots[0]["start"], "display_name": PLANTED_NAME, "email": PLANTED_EMAIL,
        "language": "de"})
    assert made.status_code == 201, made.text
    appointment_id = made.json()["appointment_id"]

    # The confirmation is written: the search below does find the planted data.
    confirmation = eventually(lambda: next(iter((data / "mail").glob(
        f"{appointment_id}.confirmation.*.eml")), None), timeout=30)
    mail = message_from_bytes(confirmation.read_bytes(), policy=policy.default)
    assert PLANTED_EMAIL in str(mail["To"]) and PLANTED_NAME in str(mail["To"])
    assert confirmation in files_containing(data, NEEDLES)
    # Nothing but the mail holds it in readable form: the bus, the event stores and the
    # outbox carry the appointment's id only, and the personal data is encrypted.
    assert files_containing(data, NEEDLES) == [confirmation]

    cancelled = citizen.post(f"/appointments/{appointment_id}/cancel",
                             headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert cancelled.status_code == 200, cancelled.text

    # Over, and the retention of 0 days past: the cancellation goes out, then all is erased.
    eventually(lambda: not files_containing(data, NEEDLES), timeout=60, interval=0.5)
    assert not list((data / "mail").glob(f"{appointment_id}.*"))
    own_system.stop()  # every store flushed and closed: the files as they stay on disk

    # The stream and the file-stored buckets were searched (the booking rate's bucket of
    # client pseudonyms is kept in memory, never on disk).
    streams = {p.name for p in (data / "nats").rglob("streams/*") if p.is_dir()}
    assert {"BB", "KV_bb_sessions"} <= streams, streams
    assert {"booking.sqlite", "booking-personal.sqlite", "booking-mail.sqlite"} <= {
        p.name for p in data.iterdir()}
    assert files_containing(data, NEEDLES) == []
