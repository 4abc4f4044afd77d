"""Booking mail through its durable outbox: a real SMTP server on loopback (aiosmtpd)
receives each mail exactly once, across restarts and a refusing or absent server; the
embedded default writes .eml files; erased personal data takes its mail files along.

The events come from a SQLite eventsourcing application holding the booking domain's
aggregates, as the booking service stores them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from eventsourcing.application import Application
from icalendar import Calendar

from services.booking.domain import Appointment, Schedule, Slot
from services.booking.mail import MailContext, MailOutbox
from services.booking.personal import PersonalData
from services.booking.slots import BookingHours
from services.booking.terms import ScheduleTerms
from services.common.natsserver import EmbeddedNats
from services.common.settings import Settings
from tests.conftest import SystemProcess
from tests.helpers import eventually, open_department

NAME = "Wendelgard Pfeffersack"
EMAIL = "wendelgard.pfeffersack@example.org"
DEPARTMENT = "Kataster- und Vermessungsamt"


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and can refuse with 451 first."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refusals = 0
        self.tried = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tried += 1
        if self.refusals:
            self.refusals -= 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def subjects(self) -> list[str]:
        """Unfolded as a mail program shows them. A subject of 79 characters or so is
        folded by Python's email package right after "Subject:" (legal folding), and its
        own parser then keeps the folding space in front (CI, 7 December at 00:30)."""
        return [str(m["Subject"]).strip() for m in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


class Booking:
    """The booking service's store, and booking, moving and cancelling in it."""

    def __init__(self, data_dir: Path) -> None:
        self.app: Application[UUID] = Application(env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(data_dir / "booking.sqlite"),
        })
        terms = ScheduleTerms(
            hours=tuple(BookingHours(day, "00:00", "24:00") for day in range(7)),
            notice_minutes=0, days_ahead=30,
        )
        self.schedule = Schedule.set_up(uuid4(), terms, "setup")
        self.app.save(self.schedule)

    def book(self, start: datetime, language: str = "de") -> Appointment:
        now = datetime.now(UTC)
        appointment = Appointment.book(self.schedule, uuid4(), start, now, language,
                                       anonymous=False, visitor_ref="v1", correlation_id="c")
        slot = Slot(self.schedule.department_id, start, 1, "c")
        slot.take(appointment.id, "c")
        self.app.save(slot, appointment)
        return appointment


def settings_for(data_dir: Path, port: int | None) -> Settings:
    return Settings(data_dir=data_dir, database_url=None,
                    booking_smtp_host="127.0.0.1" if port else None,
                    booking_smtp_port=port, booking_smtp_security="none",
                    district_name="Kreis Musterstadt")


def describe(appointment_id: UUID, department_id: UUID, language: str) -> MailContext:
    return MailContext(DEPARTMENT, f"http://127.0.0.1:8000/{language}/appointments/{appointment_id}")


def next_start(days: int = 2) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(days=days, minutes=15 - now.minute % 15)


def files_containing(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_each_mail_reaches_the_server_once_across_restarts(
    tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    server, port = inbox
    settings = settings_for(tmp_path, port)
    booking, personal = Booking(tmp_path), PersonalData(settings)
    start = next_start()
    appointment = booking.book(start)
    personal.put(appointment.id, {"display_name": NAME, "email": EMAIL, "language": "de"},
                 personal.erase_after_for(appointment.end))

    # Enqueued, then the process dies before sending: a new outbox over the same files.
    first = MailOutbox(settings, personal, describe)
    assert first.follow(booking.app) == 3  # confirmation, reminders 24 h and 1 h before
    first.close()
    outbox = MailOutbox(settings, personal, describe)
    assert outbox.follow(booking.app) == 0
    assert await outbox.deliver_due() == 1
    assert await outbox.deliver_due() == 0

    assert await outbox.deliver_due(start - timedelta(hours=23)) == 1
    assert await outbox.deliver_due(start - timedelta(minutes=30)) == 1
    appointment.cancel("staff", "c", reason="office_closed", staff_id="staff-1")
    booking.app.save(appointment)
    assert outbox.follow(booking.app) == 1
    assert await outbox.deliver_due(start - timedelta(minutes=20)) == 1

    again = MailOutbox(settings, personal, describe)
    assert again.follow(booking.app) == 0
    assert await again.deliver_due(start + timedelta(days=1)) == 0

    subjects = server.subjects()
    assert len(subjects) == 4, subjects
    assert subjects[0].startswith("Ihr Termin: ")
    assert subjects[1].startswith("Erinnerung") and subjects[2].startswith("Erinnerung")
    assert subjects[3].startswith("Ihr Termin ist abgesagt")
    assert len({m["Message-ID"] for m in server.messages}) == 4
    local = start.astimezone(ZoneInfo("Europe/Berlin"))
    confirmation, cancellation = server.messages[0], server.messages[3]
    body = confirmation.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"{local:%H:%M} Uhr" in text and DEPARTMENT in text and NAME in text
    assert f"/de/appointments/{appointment.id}" in text
    assert str(confirmation["To"]).endswith(f"<{EMAIL}>")
    assert [part.get_content_type() for part in confirmation.iter_attachments()] == [
        "text/calendar"
    ]
    cancelled_text = cancellation.get_body(("plain",))
    assert cancelled_text is not None
    assert "Das Amt ist an diesem Tag geschlossen." in cancelled_text.get_content()


async def test_a_refusing_or_absent_server_delays_mail_without_losing_it(
    tmp_path: Path,
) -> None:
    absent_port = free_port()  # nothing listens here yet
    settings = settings_for(tmp_path, absent_port)
    booking, personal = Booking(tmp_path), PersonalData(settings)
    appointment = booking.book(next_start(), language="en")
    personal.put(appointment.id, {"email": EMAIL, "language": "en"},
                 personal.erase_after_for(appointment.end))
    outbox = MailOutbox(settings, personal, describe)
    outbox.follow(booking.app)
    now = datetime.now(UTC)

    assert await outbox.deliver_due(now) == 0
    assert await outbox.deliver_due(now + timedelta(seconds=1)) == 0  # still backing off
    absent = Inbox()
    absent.refusals = 1
    controller = Controller(absent, hostname="127.0.0.1", port=absent_port)
    controller.start()
    try:
        assert await outbox.deliver_due(now + timedelta(seconds=6)) == 0  # 451
        assert await outbox.deliver_due(now + timedelta(seconds=20)) == 1
        assert await outbox.deliver_due(now + timedelta(minutes=20)) == 0
    finally:
        controller.stop()
    assert absent.subjects() == [absent.subjects()[0]]
    assert absent.subjects()[0].startswith("Your appointment: ")
    statuses = outbox.statuses(appointment.id)
    assert statuses[f"{appointment.id}/confirmation/1"] == "sent"


async def test_embedded_default_writes_eml_files_that_go_with_the_personal_data(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, None)
    booking, personal = Booking(tmp_path), PersonalData(settings)
    start = next_start()
    with_mail = booking.book(start, language="en")
    personal.put(with_mail.id, {"display_name": NAME, "email": EMAIL, "language": "en"},
                 personal.erase_after_for(with_mail.end))
    without_mail = booking.book(start + timedelta(minutes=15))
    personal.put(without_mail.id, {"display_name": "Anon", "language": "de"},
                 personal.erase_after_for(without_mail.end))
    outbox = MailOutbox(settings, personal, describe)
    outbox.follow(booking.app)
    assert await outbox.deliver_due() == 1

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert [f.name for f in files] == [f"{with_mail.id}.confirmation.1.eml"]
    assert files[0].stat().st_mode & 0o077 == 0
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert str(message["Subject"]).startswith("Your appointment: ")
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "appointment.ics"
    event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert str(event["UID"]) == f"{with_mail.id}@buergerbuero"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTSTART") == start
    assert outbox.statuses(without_mail.id)[f"{without_mail.id}/confirmation/1"] == "dropped"

    assert personal.erase_due(without_mail.end + timedelta(days=3)) == 2
    assert outbox.sweep_erased() == 1
    assert await outbox.deliver_due(start - timedelta(minutes=30)) == 0  # reminders: no data
    for needle in (NAME.encode(), EMAIL.encode()):
        assert files_containing(tmp_path, needle) == []


async def test_outbox_and_personal_data_in_postgresql(tmp_path: Path, postgres_url: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    booking, personal = Booking(tmp_path), PersonalData(settings)
    appointment = booking.book(next_start())
    personal.put(appointment.id, {"display_name": NAME, "email": EMAIL},
                 personal.erase_after_for(appointment.end))
    outbox = MailOutbox(settings, personal, describe)
    assert outbox.follow(booking.app) == 3
    assert MailOutbox(settings, personal, describe).follow(booking.app) == 0
    assert await outbox.deliver_due() == 1
    assert [p.name for p in (tmp_path / "mail").glob("*.eml")] == [
        f"{appointment.id}.confirmation.1.eml"
    ]
    assert personal.erase_due(appointment.end + timedelta(days=3)) == 1
    assert personal.get(appointment.id) is None
    assert outbox.sweep_erased() == 1
    outbox.close()
    personal.close()


async def test_a_moved_appointment_is_confirmed_and_reminded_at_its_new_time(
    tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    server, port = inbox
    settings = settings_for(tmp_path, port)
    booking, personal = Booking(tmp_path), PersonalData(settings)
    start = next_start()
    appointment = booking.book(start, language="en")
    personal.put(appointment.id, {"email": EMAIL}, personal.erase_after_for(appointment.end))
    outbox = MailOutbox(settings, personal, describe)
    outbox.follow(booking.app)
    assert await outbox.deliver_due() == 1

    moved_to = start + timedelta(days=2)
    appointment.reschedule(booking.schedule, moved_to, datetime.now(UTC), "c")
    booking.app.save(appointment)
    assert outbox.follow(booking.app) == 3  # the confirmation of the move, two reminders
    assert await outbox.deliver_due() == 1
    assert await outbox.deliver_due(start - timedelta(minutes=30)) == 0  # old ones dropped
    assert await outbox.deliver_due(moved_to - timedelta(minutes=30)) == 2

    assert [s.split(":")[0] for s in server.subjects()] == [
        "Your appointment", "Your appointment has been moved",
        "Reminder of your appointment", "Reminder of your appointment",
    ]
    (ics,) = list(server.messages[1].iter_attachments())
    event = Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == moved_to and event.decoded("SEQUENCE") == 1
    assert personal.erase_due(appointment.end - timedelta(days=2) + timedelta(days=3)) == 0
    assert personal.erase_due(appointment.end + timedelta(days=3)) == 1


async def test_reminders_come_at_the_lead_times_of_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None,
                        booking_mail_reminder_minutes=[30, 180])
    booking, personal = Booking(tmp_path), PersonalData(settings)
    start = next_start()
    appointment = booking.book(start, language="en")
    personal.put(appointment.id, {"email": EMAIL}, personal.erase_after_for(appointment.end))
    outbox = MailOutbox(settings, personal, describe)
    assert outbox.follow(booking.app) == 3  # the confirmation, 3 h and 30 min before
    assert sorted(outbox.statuses(appointment.id)) == [
        f"{appointment.id}/confirmation/1", f"{appointment.id}/reminder/1/180",
        f"{appointment.id}/reminder/1/30",
    ]
    assert await outbox.deliver_due() == 1
    assert await outbox.deliver_due(start - timedelta(hours=4)) == 0
    assert await outbox.deliver_due(start - timedelta(hours=2)) == 1
    assert await outbox.deliver_due(start - timedelta(minutes=20)) == 1


@pytest.fixture
def systems(tmp_path: Path, nats_server: EmbeddedNats) -> Iterator[Callable[..., SystemProcess]]:
    """Systems on one data directory, one after another (with time to start on a busy
    machine); each stopped at the end."""
    started: list[SystemProcess] = []

    def start(env: dict[str, str]) -> SystemProcess:
        system = SystemProcess(tmp_path / "data", nats_server.url, env)
        started.append(system)
        system.start(timeout=90)
        return system

    yield start
    for system in started:
        system.stop()


def test_a_real_system_killed_before_its_mail_went_sends_each_mail_once(
    systems: Callable[..., SystemProcess], inbox: tuple[Inbox, int]
) -> None:
    """``buergerbuero up`` with a real SMTP server: the confirmation is refused (451) and
    the system is killed (SIGKILL) before it is sent; started again, it sends it once, and
    the cancellation after it once."""
    server, port = inbox
    server.refusals = 10**6
    env = {"BB_BOOKING_SMTP_HOST": "127.0.0.1", "BB_BOOKING_SMTP_PORT": str(port),
           "BB_BOOKING_SMTP_SECURITY": "none"}
    first = systems(env)
    with first.client() as citizen:
        demo = open_department(citizen, "demo")
        begin = datetime.now(UTC) + timedelta(days=1)
        params = {"from": begin.isoformat(), "to": (begin + timedelta(hours=1)).isoformat()}
        slots = eventually(lambda: citizen.get(f"/departments/{demo}/slots", params=params)
                           .json()["slots"], timeout=30)
        made = citizen.post(f"/departments/{demo}/appointments", json={
            "start": slots[0]["start"], "email": EMAIL, "language": "en"})
        assert made.status_code == 201, made.text
    eventually(lambda: server.tried >= 1, timeout=30)  # offered, refused: not sent yet
    first.kill()
    server.refusals = 0

    second = systems(env)
    eventually(lambda: len(server.messages) >= 1, timeout=60, interval=0.5)
    with second.client() as citizen:
        cancelled = citizen.post(f"/appointments/{made.json()['appointment_id']}/cancel",
                                 headers={"Authorization": f"Bearer {made.json()['token']}"})
        assert cancelled.status_code == 200, cancelled.text
    # Mails go out in the order they are due: any second confirmation would come first.
    eventually(lambda: len(server.messages) >= 2, timeout=60, interval=0.5)
    subjects = [s.split(":")[0] for s in server.subjects()]
    assert subjects == ["Your appointment", "Your appointment is cancelled"], subjects
    assert len({m["Message-ID"] for m in server.messages}) == 2
