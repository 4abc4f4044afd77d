"""The texts of booking mail, in German and English: plain text, local time, the link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WEEKDAYS = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}

STAFF_REASONS = {
    "de": {
        "office_closed": "Das Amt ist an diesem Tag geschlossen.",
        "staff_unavailable": "Zu dieser Zeit ist niemand für Ihren Termin da.",
        "not_responsible": "Für Ihr Anliegen ist eine andere Stelle zuständig.",
        "duplicate": "Sie hatten diesen Termin doppelt gebucht.",
        "other": "Bei Fragen wenden Sie sich bitte an das Amt.",
    },
    "en": {
        "office_closed": "The office is closed that day.",
        "staff_unavailable": "Nobody is available for your appointment at that time.",
        "not_responsible": "Another office is responsible for your matter.",
        "duplicate": "You had booked this appointment twice.",
        "other": "If you have questions, please contact the office.",
    },
}

SUBJECTS = {
    "de": {
        "confirmation": "Ihr Termin: {when}, {department}",
        "reminder": "Erinnerung an Ihren Termin: {when}, {department}",
        "rescheduled": "Ihr Termin ist verschoben: {when}, {department}",
        "cancellation": "Ihr Termin ist abgesagt: {when}, {department}",
    },
    "en": {
        "confirmation": "Your appointment: {when}, {department}",
        "reminder": "Reminder of your appointment: {when}, {department}",
        "rescheduled": "Your appointment has been moved: {when}, {department}",
        "cancellation": "Your appointment is cancelled: {when}, {department}",
    },
}

OPENINGS = {
    "de": {
        "confirmation": "Ihr Termin bei {department} ist gebucht:",
        "reminder": "wir erinnern Sie an Ihren Termin bei {department}:",
        "rescheduled": "Ihr Termin bei {department} ist verschoben auf:",
        "cancellation": "Sie haben Ihren Termin bei {department} abgesagt:",
        "cancellation_staff": "{department} hat Ihren Termin leider abgesagt:",
    },
    "en": {
        "confirmation": "Your appointment with {department} is booked:",
        "reminder": "this is a reminder of your appointment with {department}:",
        "rescheduled": "Your appointment with {department} has been moved to:",
        "cancellation": "You have cancelled your appointment with {department}:",
        "cancellation_staff": "We are sorry: {department} has cancelled your appointment:",
    },
}

CLOSINGS = {
    "de": {
        "active": "Kurz vor dem Termin öffnen Sie diese Seite und klopfen an; Sie kommen dann "
                  "als Nächstes an die Reihe. Dort können Sie den Termin auch verschieben "
                  "oder absagen:\n{url}",
        "cancelled": "Einen neuen Termin können Sie jederzeit buchen.",
        "attachment": "Im Anhang finden Sie den Termin für Ihren Kalender.",
        "greeting": "Guten Tag {name},",
        "greeting_anonymous": "Guten Tag,",
        "reason": "Grund: {reason}",
        "signature": "Ihr Bürgerbüro – {district}",
        "automatic": "Diese Nachricht wurde automatisch versandt; bitte antworten Sie nicht.",
    },
    "en": {
        "active": "Shortly before the appointment, open this page and knock; you will be "
                  "next in line. There you can also move or cancel the appointment:\n{url}",
        "cancelled": "You can book a new appointment at any time.",
        "attachment": "The appointment for your calendar is attached.",
        "greeting": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "reason": "Reason: {reason}",
        "signature": "Your citizens' office – {district}",
        "automatic": "This message was sent automatically; please do not reply.",
    },
}


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str
    attach_ics: bool


def local_time(at: datetime, timezone: str, language: str) -> str:
    """E.g. "Donnerstag, 10. Dezember 2026, 10:15 Uhr" / "Thursday, 10 December 2026, 10:15"."""
    local = at.astimezone(ZoneInfo(timezone))
    weekday, month = WEEKDAYS[language][local.weekday()], MONTHS[language][local.month - 1]
    if language == "de":
        return f"{weekday}, {local.day}. {month} {local.year}, {local:%H:%M} Uhr"
    return f"{weekday}, {local.day} {month} {local.year}, {local:%H:%M}"


def mail_text(
    kind: str,
    language: str,
    *,
    name: str | None,
    department: str,
    start: datetime,
    timezone: str,
    url: str,
    district: str,
    staff_reason: str | None = None,
) -> MailText:
    """One mail of ``kind`` (confirmation, reminder, rescheduled, cancellation)."""
    language = language if language in SUBJECTS else "de"
    closing = CLOSINGS[language]
    when = local_time(start, timezone, language)
    subject = SUBJECTS[language][kind].format(when=when, department=department)
    opening_key = "cancellation_staff" if kind == "cancellation" and staff_reason else kind
    greeting = (closing["greeting"].format(name=name) if name
                else closing["greeting_anonymous"])
    paragraphs = [greeting, f"{OPENINGS[language][opening_key].format(department=department)}"
                            f"\n{when}"]
    if staff_reason:
        reason = STAFF_REASONS[language].get(staff_reason, STAFF_REASONS[language]["other"])
        paragraphs.append(closing["reason"].format(reason=reason))
    cancelled = kind == "cancellation"
    paragraphs.append(closing["cancelled"] if cancelled else closing["active"].format(url=url))
    attach_ics = kind in ("confirmation", "rescheduled", "cancellation")
    if attach_ics:
        paragraphs.append(closing["attachment"])
    paragraphs.append(f"{closing['signature'].format(district=district)}\n"
                      f"{closing['automatic']}")
    return MailText(subject=subject, body="\n\n".join(paragraphs) + "\n", attach_ics=attach_ics)
