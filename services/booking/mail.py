"""Booking mail from a durable outbox: a restart never loses a mail and never sends one twice
(but for the one window below).

Wiring (the booking service, once, in ``on_started``)::

    self.mail = MailOutbox(settings, personal, describe)   # describe(appointment_id,
    self.tasks.start("mail", self.mail.run(self.app))      #   department_id, language)
                                                           #   -> MailContext(name, url)

``run`` repeats, every ``poll_seconds``: ``follow(app)``, ``deliver_due()``,
``personal.erase_due(now)`` and ``sweep_erased()``. Each step may also be called alone.

How: the outbox follows the booking application's notification log from a position it
keeps in its own table. Each Appointment event becomes rows keyed by deterministic ids
(``<appointment>/confirmation/1``, ``<appointment>/reminder/<version>/<minutes>``,
``<appointment>/rescheduled/<version>``, ``<appointment>/cancellation/<version>``),
inserted if absent in the same transaction that moves the position: a crash before it
commits reads the events again, and inserts nothing twice. A move or the end of an
appointment drops its pending reminders; a move also moves its personal data's
retention, a cancellation brings it forward (the cancellation plus the retention).
Reminders come at the lead times of the setting ``booking_mail_reminder_minutes``
(24 h and 1 h before), those still ahead when the appointment is booked or moved. Rows
hold no personal data: the address, name and link are looked up when the mail is sent,
so an appointment whose personal data is erased (or that has no e-mail address) gets no
mail. ``PersonalData.put`` therefore comes before the appointment is saved.

Sending: a row is claimed for ``CLAIM_SECONDS`` (so replicas do not send it together),
handed to the SMTP server (or written as ``<data_dir>/mail/<id>.eml``), and marked sent
only after the server accepted it. A refusing (4xx) or unreachable server: the row waits,
with a backoff from 5 s doubling to 15 min, and is tried again, however long. A 5xx
refusal marks it failed. SMTP gives no exactly-once: a crash after the server accepted a
mail and before the row is marked sent (a few milliseconds) sends it again once the claim
has lapsed. The resend has the same ``Message-ID`` (derived from the outbox id), so a
mail system or the reader can recognise it as the same message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from services.booking.calendar import appointment_ics
from services.booking.domain import Appointment, reminder_times
from services.booking.mail_templates import mail_text
from services.booking.mail_transport import (
    PermanentFailure,
    Transport,
    transport_for,
)
from services.booking.personal import PersonalData
from services.booking.sidestore import SideStore
from services.common.logging import get_logger
from services.common.settings import Settings

log = get_logger(__name__)

# The event classes ``@event`` creates on the aggregates are not known to mypy.
A: Any = Appointment
MESSAGE_ID_NAMESPACE = UUID("e2a7c4f1-8b3d-4c6e-a5f9-1d0b7e3c9a64")
CLAIM_SECONDS = 120.0
BACKOFF_SECONDS = (5.0, 15 * 60.0)
BATCH = 200
FOLLOWED = (A.Booked, A.Rescheduled, A.Cancelled, A.CheckedIn, A.Missed)
COLUMNS = ("id", "appointment_id", "department_id", "kind", "sequence", "start_at", "end_at",
           "timezone", "language", "reason", "created_at")
INSERT_ROW = (
    "INSERT INTO mail_outbox (id, appointment_id, department_id, kind, sequence, start_at,"
    " end_at, timezone, language, reason, created_at, due_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
SELECT_DUE = (
    "SELECT id, appointment_id, department_id, kind, sequence, start_at, end_at, timezone,"
    " language, reason, created_at FROM mail_outbox WHERE status = 'pending'"
    " AND due_at <= ? AND next_attempt_at <= ? AND claimed_until <= ? ORDER BY due_at LIMIT ?"
)


class MailContext(NamedTuple):
    department_name: str
    appointment_url: str


Describe = Callable[[UUID, UUID, str], MailContext]


def message_id(outbox_id: str) -> str:
    return f"<{uuid5(MESSAGE_ID_NAMESPACE, outbox_id)}@buergerbuero>"


class MailOutbox:
    def __init__(
        self,
        settings: Settings,
        personal: PersonalData,
        describe: Describe,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.personal = personal
        self.describe = describe
        self.transport = transport or transport_for(settings)
        self.reminder_minutes = tuple(sorted(set(settings.booking_mail_reminder_minutes)))
        self.store = SideStore(settings, "booking-mail")
        self._topics = [get_topic(cls) for cls in FOLLOWED]
        self.store.create_tables(
            "CREATE TABLE IF NOT EXISTS mail_outbox (id TEXT PRIMARY KEY,"
            " appointment_id TEXT NOT NULL, department_id TEXT NOT NULL,"
            " kind TEXT NOT NULL, sequence INTEGER NOT NULL,"
            " start_at DOUBLE PRECISION NOT NULL, end_at DOUBLE PRECISION NOT NULL,"
            " timezone TEXT NOT NULL,"
            " language TEXT NOT NULL, reason TEXT, created_at DOUBLE PRECISION NOT NULL,"
            " due_at DOUBLE PRECISION NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
            " attempts INTEGER NOT NULL DEFAULT 0,"
            " next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,"
            " claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0,"
            " sent_at DOUBLE PRECISION, error TEXT)",
            "CREATE INDEX IF NOT EXISTS mail_outbox_pending ON mail_outbox (status, due_at)",
            "CREATE TABLE IF NOT EXISTS mail_position (name TEXT PRIMARY KEY,"
            " position BIGINT NOT NULL)",
        )

    # -- rows from the booking application's events -------------------------------------

    def follow(self, app: Application[UUID]) -> int:
        """Turn the Appointment events stored since the last call into outbox rows."""
        added, limit = 0, min(BATCH, app.notification_log.section_size)
        while True:
            with self.store.transaction() as cursor:
                cursor.execute("SELECT position FROM mail_position WHERE name = ?", (app.name,))
                row = cursor.fetchone()
                position = int(row[0]) if row else 0
                notifications = app.notification_log.select(
                    start=position + 1, limit=limit, topics=self._topics
                )
                for notification in notifications:
                    added += self._apply(cursor, app, app.mapper.to_domain_event(notification))
                if notifications:
                    cursor.execute(
                        "INSERT INTO mail_position (name, position) VALUES (?, ?) ON CONFLICT"
                        " (name) DO UPDATE SET position = excluded.position",
                        (app.name, notifications[-1].id),
                    )
            if len(notifications) < limit:
                return added

    def _apply(self, cursor: Any, app: Application[UUID], event: Any) -> int:
        appointment: Appointment = app.repository.get(
            event.originator_id, version=event.originator_version
        )
        version, at = event.originator_version, event.timestamp
        if not isinstance(event, (A.Booked, A.Rescheduled)):
            self._drop_reminders(cursor, appointment.id)
            if isinstance(event, A.Cancelled):
                self.personal.shorten(appointment.id, self.personal.erase_after_for(at))
                reason = appointment.cancel_reason if appointment.cancelled_by == "staff" else None
                return self._add(cursor, appointment, "cancellation", version, at, at, reason)
            return 0
        kind = "confirmation" if isinstance(event, A.Booked) else "rescheduled"
        if kind == "rescheduled":
            self._drop_reminders(cursor, appointment.id)
            self.personal.extend(appointment.id, self.personal.erase_after_for(appointment.end))
        added = self._add(cursor, appointment, kind, version, at, at)
        for due in reminder_times(appointment.start, self.reminder_minutes, at):
            minutes = round((appointment.start - due).total_seconds() / 60)
            added += self._add(cursor, appointment, "reminder", version, at, due,
                               suffix=f"/{minutes}")
        return added

    def _add(self, cursor: Any, appointment: Appointment, kind: str, version: int,
             created: datetime, due: datetime, reason: str | None = None,
             suffix: str = "") -> int:
        values = (f"{appointment.id}/{kind}/{version}{suffix}", str(appointment.id),
                  str(appointment.department_id), kind, version,
                  appointment.start.timestamp(), appointment.end.timestamp(),
                  appointment.timezone, appointment.language, reason, created.timestamp(),
                  due.timestamp())
        cursor.execute(INSERT_ROW, values)
        return max(cursor.rowcount, 0)

    @staticmethod
    def _drop_reminders(cursor: Any, appointment_id: UUID) -> None:
        cursor.execute(
            "UPDATE mail_outbox SET status = 'dropped', error = 'appointment changed'"
            " WHERE appointment_id = ? AND kind = 'reminder' AND status = 'pending'",
            (str(appointment_id),),
        )

    # -- the loop --------------------------------------------------------------------------

    async def run(self, app: Application[UUID], poll_seconds: float = 5.0) -> None:
        """Follow, send, erase personal data whose time has come, forever (a service task)."""
        log.info("booking_mail", transport=str(self.transport))
        while True:
            try:
                await asyncio.to_thread(self.follow, app)
                await self.deliver_due()
                await asyncio.to_thread(self.personal.erase_due, datetime.now(UTC))
                await asyncio.to_thread(self.sweep_erased)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("booking_mail_round_failed")
            await asyncio.sleep(poll_seconds)

    def sweep_erased(self) -> int:
        """Delete the .eml files (embedded default) of appointments whose data is erased."""
        directory = getattr(self.transport, "directory", None)
        if directory is None or not directory.exists():
            return 0
        removed = 0
        for path in directory.glob("*.eml"):
            try:
                appointment_id = UUID(path.name[:36])
            except ValueError:
                continue
            if self.personal.get(appointment_id) is None:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def statuses(self, appointment_id: UUID) -> dict[str, str]:
        """Outbox id -> pending, sent, dropped or failed (for tests and operators)."""
        with self.store.transaction() as cursor:
            cursor.execute("SELECT id, status FROM mail_outbox WHERE appointment_id = ?",
                           (str(appointment_id),))
            return {str(row[0]): str(row[1]) for row in cursor.fetchall()}

    def close(self) -> None:
        self.store.close()

    # -- sending ---------------------------------------------------------------------------

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Send every pending mail due at ``now`` (default: the current time); how many went."""
        now = now or datetime.now(UTC)
        sent = 0
        for row in await asyncio.to_thread(self._claim_due, now):
            sent += await self._deliver(dict(zip(COLUMNS, row, strict=True)), now)
        return sent

    def _claim_due(self, now: datetime) -> list[tuple[Any, ...]]:
        clock = now.timestamp()
        with self.store.transaction() as cursor:
            cursor.execute(SELECT_DUE, (clock, clock, clock, BATCH))
            rows = cursor.fetchall()
            for row in rows:
                cursor.execute("UPDATE mail_outbox SET claimed_until = ? WHERE id = ?",
                               (clock + CLAIM_SECONDS, row[0]))
        return rows

    async def _deliver(self, row: dict[str, Any], now: datetime) -> int:
        appointment_id = UUID(row["appointment_id"])
        data = await asyncio.to_thread(self.personal.get, appointment_id)
        if not data or not data.get("email"):
            self._finish(row["id"], "dropped", "no e-mail address (none given, or erased)")
            return 0
        try:
            message = self._message(row, data)
            await asyncio.to_thread(self.transport.send, message, row["id"])
        except PermanentFailure as error:
            log.warning("booking_mail_failed", outbox_id=row["id"], error=str(error))
            self._finish(row["id"], "failed", str(error))
            return 0
        except Exception as error:  # TemporaryFailure, or describe() could not answer yet
            self._retry_later(row["id"], error, now)
            return 0
        self._finish(row["id"], "sent", None)
        log.info("booking_mail_sent", outbox_id=row["id"], transport=str(self.transport))
        return 1

    def _message(self, row: dict[str, Any], data: dict[str, Any]) -> EmailMessage:
        appointment_id, language = UUID(row["appointment_id"]), row["language"]
        context = self.describe(appointment_id, UUID(row["department_id"]), language)
        start = datetime.fromtimestamp(row["start_at"], UTC)
        created = datetime.fromtimestamp(row["created_at"], UTC)
        text = mail_text(
            row["kind"], language, name=data.get("display_name"),
            department=context.department_name, start=start, timezone=row["timezone"],
            url=context.appointment_url, district=self.settings.district_name,
            staff_reason=row["reason"],
        )
        message = EmailMessage()
        message["From"] = self.settings.booking_mail_from
        message["To"] = formataddr((data.get("display_name") or "", data["email"]))
        message["Subject"] = text.subject
        message["Date"] = format_datetime(created)
        message["Message-ID"] = message_id(row["id"])
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text.body)
        if text.attach_ics:
            ics = appointment_ics(
                appointment_id, start, datetime.fromtimestamp(row["end_at"], UTC),
                context.department_name, context.appointment_url, stamp=created, language=language,
                timezone=row["timezone"], sequence=int(row["sequence"]) - 1,
                cancelled=row["kind"] == "cancellation",
            )
            message.add_attachment(ics, maintype="text", subtype="calendar",
                                   filename="termin.ics" if language == "de" else
                                   "appointment.ics", params={"method": "PUBLISH"})
        # Only now: set_content drops every Content-* header set before it, and the
        # attachment moves them into the text part.
        message["Content-Language"] = language
        return message

    def _finish(self, outbox_id: str, status: str, error: str | None) -> None:
        with self.store.transaction() as cursor:
            cursor.execute(
                "UPDATE mail_outbox SET status = ?, error = ?, sent_at = ?, claimed_until = 0"
                " WHERE id = ?", (status, error, time.time(), outbox_id),
            )

    def _retry_later(self, outbox_id: str, error: Exception, now: datetime) -> None:
        with self.store.transaction() as cursor:
            cursor.execute("SELECT attempts FROM mail_outbox WHERE id = ?", (outbox_id,))
            found = cursor.fetchone()
            attempts = int(found[0]) + 1 if found else 1
            first, longest = BACKOFF_SECONDS
            delay = min(first * 2 ** (attempts - 1), longest)
            cursor.execute(
                "UPDATE mail_outbox SET attempts = ?, next_attempt_at = ?, claimed_until = 0,"
                " error = ? WHERE id = ?",
                (attempts, now.timestamp() + delay, str(error)[:500], outbox_id),
            )
        log.warning("booking_mail_deferred", outbox_id=outbox_id, attempts=attempts,
                    retry_in_seconds=delay, error=str(error))
