"""The demo district: the departments of the reference district and demo staff."""

from __future__ import annotations

from typing import Any

DEMO_PASSWORD = "buergerbuero"  # noqa: S105 - the demo district only, printed by `up`

# (weekday list, opens, closes)
Hours = list[tuple[list[int], str, str]]

MON_THU = [0, 1, 2, 3]
MON_FRI = [0, 1, 2, 3, 4]


def _topics(*items: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"id": i, "de": de, "en": en} for i, de, en in items]


def _weekly(hours: Hours) -> list[dict[str, Any]]:
    return [
        {"weekday": day, "opens": opens, "closes": closes}
        for days, opens, closes in hours
        for day in days
    ]


def _department(
    slug: str,
    name_de: str,
    name_en: str,
    description_de: str,
    description_en: str,
    hours: Hours,
    topics: list[dict[str, str]],
    languages: tuple[str, ...] = ("de", "en"),
    anonymous: bool = False,
    appointments: bool = True,
) -> dict[str, Any]:
    return {
        "slug": slug,
        "profile": {
            "slug": slug,
            "name_de": name_de,
            "name_en": name_en,
            "description_de": description_de,
            "description_en": description_en,
            "timezone": "Europe/Berlin",
            "anonymous": anonymous,
            "languages": list(languages),
            "topics": topics,
            "accepts_appointments": appointments,
        },
        "weekly": _weekly(hours),
    }


DEPARTMENTS: list[dict[str, Any]] = [
    _department(
        "demo",
        "Demo-Sprechstunde (rund um die Uhr)",
        "Demo office (around the clock)",
        "Probieren Sie den ganzen Besuch aus – zu jeder Uhrzeit.",
        "Try the whole visit – at any hour.",
        [([0, 1, 2, 3, 4, 5, 6], "00:00", "24:00")],
        _topics(
            ("allgemein", "Allgemeine Frage", "General question"),
            ("antrag", "Hilfe bei einem Antrag", "Help with an application"),
        ),
        languages=("de", "en", "tr", "ar", "uk"),
        appointments=True,  # slots every 15 minutes around the clock (services/booking/seed.py)
    ),
    _department(
        "kataster",
        "Kataster- und Vermessungsamt",
        "Land registry and surveying office",
        "Auszüge aus dem Liegenschaftskataster, Vermessungen, Grenzfragen.",
        "Extracts from the land register, surveys, boundary questions.",
        [(MON_THU, "08:30", "12:00"), ([3], "14:00", "17:30")],
        _topics(
            ("auszug", "Auszug aus der Liegenschaftskarte", "Extract from the cadastral map"),
            ("vermessung", "Vermessung beantragen", "Apply for a survey"),
            ("grenze", "Grenzfragen", "Boundary questions"),
        ),
    ),
    _department(
        "einbuergerung",
        "Ausländerbehörde – Einbürgerung",
        "Immigration office – naturalisation",
        "Beratung zur Einbürgerung, Unterlagen und Sprachnachweis.",
        "Advice on naturalisation, documents and proof of language skills.",
        [([0, 1, 3], "08:00", "12:00"), ([3], "14:00", "18:00")],
        _topics(
            ("antrag", "Einbürgerungsantrag", "Naturalisation application"),
            ("unterlagen", "Fehlende Unterlagen", "Missing documents"),
            ("sprache", "Sprachnachweis", "Proof of language skills"),
        ),
        languages=("de", "en", "tr", "ar", "uk", "ru"),
    ),
    _department(
        "hiv-beratung",
        "Gesundheitsamt – Anonyme HIV- und STI-Beratung",
        "Health office – anonymous HIV and STI counselling",
        "Anonym, vertraulich, ohne Namen: Beratung zu HIV und anderen sexuell übertragbaren "
        "Infektionen.",
        "Anonymous and confidential, no name needed: counselling on HIV and other sexually "
        "transmitted infections.",
        [([2], "15:00", "18:00")],
        _topics(
            ("test", "Fragen zum Test", "Questions about testing"),
            ("beratung", "Beratung", "Counselling"),
        ),
        anonymous=True,
        appointments=False,
    ),
    _department(
        "schwangerschaftskonflikt",
        "Gesundheitsamt – Schwangerschaftskonfliktberatung",
        "Health office – pregnancy conflict counselling",
        "Anonyme Beratung nach § 219 StGB und §§ 5, 6 SchKG.",
        "Anonymous counselling under section 219 of the Criminal Code.",
        [([1], "09:00", "12:00"), ([3], "14:00", "17:00")],
        _topics(("beratung", "Beratungsgespräch", "Counselling session")),
        anonymous=True,
        appointments=False,
    ),
    _department(
        "sexarbeit",
        "Gesundheitsamt – Beratung für Sexarbeitende",
        "Health office – counselling for sex workers",
        "Anonyme gesundheitliche Beratung nach dem Prostituiertenschutzgesetz.",
        "Anonymous health counselling under the Prostitute Protection Act.",
        [([0], "10:00", "13:00")],
        _topics(("gesundheit", "Gesundheitliche Beratung", "Health counselling")),
        languages=("de", "en", "ro", "bg", "hu"),
        anonymous=True,
        appointments=False,
    ),
    _department(
        "pflegeberatung",
        "Pflegeberatung",
        "Care counselling",
        "Beratung zu Pflegegrad, Leistungen und Entlastung für Angehörige.",
        "Advice on care levels, benefits and relief for relatives.",
        [(MON_FRI, "09:00", "12:00")],
        _topics(
            ("pflegegrad", "Pflegegrad", "Care level"),
            ("angehoerige", "Entlastung für Angehörige", "Relief for relatives"),
        ),
    ),
    _department(
        "integration",
        "Kommunales Integrationszentrum",
        "Municipal integration centre",
        "Erstberatung, Sprachkurse, Anerkennung ausländischer Abschlüsse.",
        "First advice, language courses, recognition of foreign qualifications.",
        [(MON_THU, "09:00", "15:00"), ([4], "09:00", "12:00")],
        _topics(
            ("sprachkurs", "Sprachkurse", "Language courses"),
            ("anerkennung", "Anerkennung von Abschlüssen", "Recognition of qualifications"),
        ),
        languages=("de", "en", "ar", "tr", "uk", "ru", "fa"),
    ),
    _department(
        "elterngeld",
        "Elterngeldstelle",
        "Parental allowance office",
        "Elterngeld, ElterngeldPlus und Partnerschaftsbonus.",
        "Parental allowance, ElterngeldPlus and partnership bonus.",
        [([0, 1, 2], "08:30", "12:30")],
        _topics(
            ("antrag", "Antrag auf Elterngeld", "Parental allowance application"),
            ("nachweise", "Nachweise", "Supporting documents"),
        ),
    ),
    _department(
        "wbs",
        "Wohnberechtigungsschein",
        "Housing entitlement certificate",
        "Antrag und Verlängerung des Wohnberechtigungsscheins.",
        "Applying for and renewing the housing entitlement certificate.",
        [([0, 2], "08:30", "12:00"), ([3], "14:00", "17:00")],
        _topics(
            ("antrag", "Neuer Antrag", "New application"),
            ("verlaengerung", "Verlängerung", "Renewal"),
        ),
    ),
    _department(
        "wohnungsbau",
        "Wohnungsbauförderung",
        "Housing construction subsidies",
        "Förderung von Neubau, Kauf und Modernisierung von Wohnraum.",
        "Subsidies for building, buying and modernising homes.",
        [([1], "09:00", "12:00"), ([3], "14:00", "16:00")],
        _topics(
            ("neubau", "Neubau", "New build"), ("modernisierung", "Modernisierung", "Modernisation")
        ),
    ),
    _department(
        "wirtschaft",
        "Wirtschaftsförderung",
        "Business development",
        "Gründung, Ansiedlung und Fördermittel für Unternehmen.",
        "Start-ups, business location and funding for companies.",
        [(MON_FRI, "09:00", "16:00")],
        _topics(
            ("gruendung", "Gründung", "Starting a business"),
            ("foerderung", "Fördermittel", "Funding"),
        ),
    ),
]

# username, display name, global roles, {department slug: roster role}
STAFF: list[tuple[str, str, list[str], dict[str, str]]] = [
    (
        "anna",
        "Anna Schmidt",
        ["staff"],
        {"demo": "admin", "kataster": "admin", "einbuergerung": "staff", "elterngeld": "staff"},
    ),
    (
        "ben",
        "Ben Yilmaz",
        ["staff"],
        {
            "demo": "staff",
            "integration": "admin",
            "wbs": "staff",
            "wohnungsbau": "staff",
            "wirtschaft": "staff",
            "pflegeberatung": "staff",
        },
    ),
    (
        "carla",
        "Carla Nowak",
        ["staff"],
        {
            "demo": "staff",
            "hiv-beratung": "admin",
            "schwangerschaftskonflikt": "staff",
            "sexarbeit": "staff",
        },
    ),
    ("dora", "Dora Datenschutz", ["dpo"], {}),
    ("otto", "Otto Betrieb", ["operator"], {}),
]
