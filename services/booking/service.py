"""The booking service at run time: its store, what it reacts to, its clock and its seed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from fastapi import APIRouter, Request

from services.booking import seed
from services.booking.application import (
    Booking,
    NoAppointmentsHere,
    NoPlaceLeft,
    TooBusy,
    UnknownAppointment,
    UnknownDepartment,
)
from services.booking.domain import Appointment
from services.booking.errors import (
    AppointmentNotBooked,
    DomainError,
    InvalidSchedule,
    NotBookable,
    OutsideCheckInWindow,
)
from services.booking.live import AppointmentFeed
from services.booking.mail import MailContext, MailOutbox
from services.booking.mapping import to_contract
from services.booking.personal import PersonalData
from services.common.bus import Bus
from services.common.clients import ClientTags
from services.common.contracts import IntegrationEvent
from services.common.contracts import rooms as rooms_events
from services.common.errors import StatusTable
from services.common.eventstore import ServiceApplication
from services.common.logging import get_logger, new_correlation_id
from services.common.ratelimit import SharedRateLimit, SharedSlots
from services.common.reactions import IntoApplication, Reaction
from services.common.service import BaseService
from services.common.settings import Settings

log = get_logger(__name__)

MISSED_CLOCK_SECONDS = 60.0
SEED_POLL_SECONDS = 1.0
APPOINTMENT_LINK_DAYS = 7  # the personal link works until this long after the appointment
KNOCK_TOKEN_MINUTES = 10  # the right to knock with priority, from the check-in
BOOKING_RATE_BUCKET = "bb_booking_rate"
STAFF_STREAM_SLOTS_BUCKET = "bb_booking_streams"


class BookingService(BaseService):
    name = "booking"
    refusals: ClassVar[StatusTable] = {
        UnknownDepartment: 404,
        UnknownAppointment: 404,
        NoAppointmentsHere: 409,
        NoPlaceLeft: 409,
        NotBookable: 422,
        InvalidSchedule: 422,
        OutsideCheckInWindow: 409,
        AppointmentNotBooked: 409,
        TooBusy: 503,
        DomainError: 409,
    }

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.personal = PersonalData(settings)
        self.mail: MailOutbox | None = None
        # Bookings per client address (a keyed pseudonym of it), counted across replicas.
        self.client_tags = ClientTags(settings.signing_key)
        self.booking_rate = SharedRateLimit(
            BOOKING_RATE_BUCKET, settings.bookings_per_client_per_hour, 3600.0
        )
        # Staff's live view of a department's appointments (live.py).
        self.feed = AppointmentFeed()
        self.staff_streams = SharedSlots(STAFF_STREAM_SLOTS_BUCKET, settings.streams_per_staff)

    @property
    def booking(self) -> Booking:
        assert isinstance(self.app, Booking)
        return self.app

    def create_application(self, env: dict[str, str]) -> ServiceApplication:
        return Booking(env={**env, "AGGREGATE_CACHE_MAXSIZE": "10000"})

    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        return to_contract(domain_event, position)

    def routers(self) -> list[APIRouter]:
        from services.booking import api, staff_api

        return [api.router, staff_api.router]

    def reactions(self) -> list[Reaction]:
        return [
            IntoApplication(
                "booking",
                [
                    rooms_events.DepartmentRegistered.subject_for(),
                    rooms_events.DepartmentUpdated.subject_for(),
                    rooms_events.StaffAssigned.subject_for(),
                    rooms_events.StaffUnassigned.subject_for(),
                ],
            )
        ]

    async def prepare(self, bus: Bus) -> None:
        await self.booking_rate.start(bus)
        await self.staff_streams.start(bus)

    async def on_started(self) -> None:
        self.feed.bind(asyncio.get_running_loop())
        self.booking.views.on_appointment_change(self.feed.changed)
        self.tasks.start("booking-feed", self.feed.follow_other_replicas(self.booking.catch_up))
        self.tasks.start("booking-missed-clock", self._run_missed_clock())
        self.mail = MailOutbox(self.settings, self.personal, self.describe)
        self.tasks.start("booking-mail", self.mail.run(self.booking))
        if self.settings.seed_demo:
            self.tasks.start("booking-seed", self._seed_when_departments_known())

    async def stop(self) -> None:
        await self.staff_streams.stop()
        await super().stop()
        if self.mail is not None:
            await asyncio.to_thread(self.mail.close)
        await asyncio.to_thread(self.personal.close)

    def describe(self, appointment_id: UUID, department_id: UUID, language: str) -> MailContext:
        """What a mail about an appointment names: its department, and the personal link."""
        office = self.booking.office(department_id)
        appointment = self.booking.appointment(appointment_id)
        return MailContext(
            office.name(language),
            self.personal_link(appointment_id, self.appointment_token(appointment)),
        )

    async def _run_missed_clock(self) -> None:
        """Every minute: appointments past their check-in window, not checked in, are missed."""
        while True:
            try:
                await asyncio.to_thread(
                    self.booking.mark_missed, datetime.now(UTC), new_correlation_id()
                )
            except Exception:
                log.exception("missed_clock_failed")
            await asyncio.sleep(MISSED_CLOCK_SECONDS)

    async def _seed_when_departments_known(self) -> None:
        """The demo schedules, once rooms' registrations of their departments have arrived."""
        seeded = False
        while not seeded:
            seeded = await asyncio.to_thread(seed.seed_schedules, self.booking)
            if not seeded:
                await asyncio.sleep(SEED_POLL_SECONDS)

    # -- what a citizen typed: kept apart, under the appointment's id, until it is erased --------

    async def keep_personal(
        self, department_id: UUID, request_id: UUID, data: dict[str, str], end: datetime
    ) -> str | None:
        """Stored before the booking is saved; the appointment's pseudonymous reference to it
        (None when nothing personal was given)."""
        if not data:
            return None
        appointment_id = Appointment.create_id(department_id, request_id)
        if await asyncio.to_thread(self.personal.get, appointment_id) is None:
            erase_after = self.personal.erase_after_for(end)
            await asyncio.to_thread(self.personal.put, appointment_id, data, erase_after)
        return str(appointment_id)

    async def forget_personal(self, department_id: UUID, request_id: UUID) -> None:
        """A booking refused: what was typed for it is erased at once."""
        appointment_id = Appointment.create_id(department_id, request_id)
        await asyncio.to_thread(self.personal.erase, appointment_id)

    # -- capabilities -----------------------------------------------------------------------

    def appointment_token(self, appointment: Appointment) -> str:
        """The citizen's key to the appointment: valid until a while after it."""
        until = appointment.end + timedelta(days=APPOINTMENT_LINK_DAYS)
        ttl = max(3600.0, (until - datetime.now(UTC)).total_seconds())
        return self.signer.issue(
            "appointment", str(appointment.id), ttl, department=str(appointment.department_id)
        )

    def personal_link(self, appointment_id: UUID, token: str) -> str:
        # In the fragment: browsers never send it to a server or into a log.
        return f"{self.settings.public_url.rstrip('/')}/appointments/{appointment_id}#token={token}"

    def knock_token(self, appointment: Appointment) -> tuple[str, int]:
        """What the queue takes as the right to knock with priority ``appointment``: signed,
        short-lived, verified there without a call to booking."""
        token = self.signer.issue(
            "appointment_knock",
            str(appointment.id),
            KNOCK_TOKEN_MINUTES * 60,
            department=str(appointment.department_id),
            slot_start=appointment.start.isoformat(),
        )
        return token, self.signer.verify(token, "appointment_knock").expires_at


async def booking_service(request: Request) -> BookingService:
    return request.app.state.services["booking"]  # type: ignore[no-any-return]
