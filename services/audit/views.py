"""The DPO's view of the log: consultations, their timelines, queue statistics, search.

A timeline holds every recorded event that names the consultation (rooms: joins, leaves,
invitations, end; media: peers, tracks including screen shares), those of its ticket
(queue: knock, admission and by whom) and, when the ticket knocked with an appointment
(its Knocked names it), those of the appointment (booking: booked for when, moved,
checked in when).

Everything here is read from the log's records (the canonical events), so what a DPO sees
is exactly what the log proves. Citizens appear by pseudonymous ids (ticket, participant),
staff by account, interpreters by invitation; there is nothing else in the record to show.
"""

from __future__ import annotations

import json
import statistics
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from services.audit.canonical import utc_text
from services.audit.store import LogStore

CONSULTATION_EVENTS = ("ConsultationOpened", "ParticipantJoined", "InterpreterInvited",
                       "InvitationRevoked", "InterpreterJoined", "ParticipantLeft",
                       "ConsultationEnded")
QUEUE_EVENTS = ("Knocked", "Admitted", "Declined", "Withdrawn", "Transferred", "Expired")
# Reads: a DPO's of the log, a staff member's of a consultation. Not steps of a timeline.
READ_EVENTS = ("AuditViewed", "ConsultationViewed")
# The parts of an AuditViewed target that name what was read (not "of_consultation", the
# filter of the "who looked" list itself).
_READ_TARGETS = ("consultation", "id")


def day_range(day: date, tz: str) -> tuple[str, str]:
    """The UTC bounds of one local calendar day, as the log's fixed-width time strings."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time.min, zone)
    end = datetime.combine(day + timedelta(days=1), time.min, zone)
    return utc_text(start), utc_text(end)


def _events(rows: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(row) for row in rows]


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def consultations(store: LogStore, department_id: UUID, day: date, tz: str) -> list[dict[str, Any]]:
    low, high = day_range(day, tz)
    opened = _events(store.query(
        "type = 'ConsultationOpened' AND department_id = ? AND occurred_at >= ?"
        " AND occurred_at < ?", (str(department_id), low, high)))
    return [summary(timeline(store, UUID(e["consultation_id"]))) for e in opened]


def timeline(store: LogStore, consultation_id: UUID) -> dict[str, Any]:
    """Every recorded step of one consultation and of the ticket that led to it."""
    events = _events(store.query("consultation_id = ? AND type <> 'ConsultationViewed'",
                                 (str(consultation_id),)))
    opened = next((e for e in events if e["type"] == "ConsultationOpened"), None)
    if opened is not None:
        events += _events(store.query("ticket_id = ? AND consultation_id IS NULL",
                                      (opened["ticket_id"],)))
    events += _appointment_events(store, events)
    events.sort(key=lambda e: (e["occurred_at"], e["position"]))
    return {
        "consultation_id": str(consultation_id),
        "ticket_id": opened["ticket_id"] if opened else None,
        "department_id": opened["department_id"] if opened else None,
        "steps": [_step(e) for e in events],
        "durations": _durations(events),
    }


def ticket_timeline(store: LogStore, ticket_id: UUID) -> dict[str, Any]:
    events = _events(store.query("ticket_id = ?", (str(ticket_id),)))
    consultation = next((e["consultation_id"] for e in events
                         if e["type"] == "ConsultationOpened"), None)
    if consultation is not None:
        return timeline(store, UUID(consultation))
    events += _appointment_events(store, events)
    events.sort(key=lambda e: (e["occurred_at"], e["position"]))
    return {"consultation_id": None, "ticket_id": str(ticket_id),
            "department_id": events[0].get("department_id") if events else None,
            "steps": [_step(e) for e in events], "durations": _durations(events)}


def _appointment_events(store: LogStore, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The booking's events of the appointment a ticket among ``events`` knocked with."""
    found = []
    for appointment_id in {e["appointment_id"] for e in events
                           if e["type"] == "Knocked" and e.get("appointment_id")}:
        found += _events(store.query("appointment_id = ? AND service = 'booking'",
                                     (appointment_id,)))
    return found


def who_looked(store: LogStore, consultation_id: UUID | None, limit: int) -> list[dict[str, Any]]:
    """Recorded reads, the newest first: a DPO's of the log (``AuditViewed``) and staff
    members' of consultations (``ConsultationViewed``); for one consultation, those of it."""
    if consultation_id is None:
        found = _events(store.query("type IN ('AuditViewed', 'ConsultationViewed')", (),
                                    limit, newest_first=True))
    else:
        wanted = str(consultation_id)
        found = _events(store.query("consultation_id = ? AND type = 'ConsultationViewed'",
                                    (wanted,), limit, newest_first=True))
        found += [e for e in _events(store.query("type = 'AuditViewed'", (), 1_000_000,
                                                 newest_first=True))
                  if _reads(e.get("target", ""), wanted)]
    found.sort(key=lambda e: _parse(e["occurred_at"]), reverse=True)  # stable: log order
    return found[:limit]


def _reads(target: str, wanted: str) -> bool:
    for part in target.split(";"):
        key, _, value = part.partition("=")
        if key in _READ_TARGETS and value == wanted:
            return True
    return False


def summary(view: dict[str, Any]) -> dict[str, Any]:
    steps = view["steps"]
    return {
        "consultation_id": view["consultation_id"], "ticket_id": view["ticket_id"],
        "department_id": view["department_id"],
        "opened_at": next((s["at"] for s in steps if s["event"] == "ConsultationOpened"), None),
        "ended_at": next((s["at"] for s in steps if s["event"] == "ConsultationEnded"), None),
        "staff": sorted({s["staff_id"] for s in steps if s.get("staff_id")}),
        "participants": sum(1 for s in steps if s["event"] in ("ParticipantJoined",
                                                               "InterpreterJoined")),
        "screen_shares": sum(1 for s in steps
                             if s["event"] == "TrackPublished" and s.get("source") == "screen"),
        **view["durations"],
    }


_STEP_FIELDS = ("ticket_id", "department_id", "staff_id", "participant_id", "role",
                "invitation_id", "invited_by", "revoked_by", "ended_by", "reason",
                "from_department_id", "to_department_id", "priority", "number", "source",
                "appointment_id", "slot_start", "from_start", "booked_by", "cancelled_by",
                "checked_in_at")


def _step(event: dict[str, Any]) -> dict[str, Any]:
    step = {"at": event["occurred_at"], "event": event["type"], "service": event["service"],
            "position": event["position"], "event_id": event["event_id"]}
    step.update({k: event[k] for k in _STEP_FIELDS if event.get(k) is not None})
    if event["type"] == "Admitted":
        step["admitted_by"] = event["staff_id"]
    return step


def _durations(events: list[dict[str, Any]]) -> dict[str, Any]:
    waited = next((e["waited_seconds"] for e in events if e["type"] == "Admitted"), None)
    ended = next((e for e in events if e["type"] == "ConsultationEnded"), None)
    end_at = _parse(ended["occurred_at"]) if ended else None
    joined: dict[str, datetime] = {}
    presence: dict[str, float] = {}
    for event in events:
        who = event.get("participant_id")
        if event["type"] in ("ParticipantJoined", "InterpreterJoined") and who:
            joined[who] = _parse(event["occurred_at"])
        elif event["type"] == "ParticipantLeft" and who in joined:
            since = joined.pop(who)
            presence[who] = presence.get(who, 0.0) + (_parse(event["occurred_at"]) - since
                                                      ).total_seconds()
    for who, since in joined.items():
        if end_at is not None:
            presence[who] = presence.get(who, 0.0) + (end_at - since).total_seconds()
    return {
        "waited_seconds": waited,
        "consultation_seconds": ended["duration_seconds"] if ended else None,
        "presence_seconds": {who: round(seconds, 3) for who, seconds in presence.items()},
    }


def queue_statistics(store: LogStore, department_id: UUID, first: date, last: date,
                     tz: str) -> dict[str, Any]:
    low, _ = day_range(first, tz)
    _, high = day_range(last, tz)
    args = (str(department_id), low, high)
    window = "department_id = ? AND occurred_at >= ? AND occurred_at < ?"
    events = _events(store.query(window, args, limit=1_000_000))
    counts = {name: 0 for name in (*QUEUE_EVENTS, "ConsultationOpened", "ConsultationEnded")}
    declined: dict[str, int] = {}
    waits, durations = [], []
    for event in events:
        kind = event["type"]
        if kind in counts:
            counts[kind] += 1
        if kind == "Admitted":
            waits.append(float(event["waited_seconds"]))
        elif kind == "Declined":
            declined[event["reason"]] = declined.get(event["reason"], 0) + 1
        elif kind == "ConsultationEnded":
            durations.append(float(event["duration_seconds"]))
    return {"department_id": str(department_id), "from": first.isoformat(),
            "to": last.isoformat(), "timezone": tz, "counts": counts,
            "declined_by_reason": declined, "wait_seconds": _distribution(waits),
            "consultation_seconds": _distribution(durations)}


def _distribution(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {"count": len(values), "mean": round(statistics.fmean(values), 3),
            "median": round(statistics.median(values), 3), "p90": round(p90, 3),
            "max": round(ordered[-1], 3)}
