"""Names and notes people type are shown to other people: nothing in them may change how
the text around them looks (control characters, escape sequences, direction overrides,
invisible characters). Cleaned where they come in, refused when nothing visible is left."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from services.common.identity import AccountError, LocalAccounts
from services.common.natsserver import EmbeddedNats
from services.common.text import DisplayName, VisibleText, clean_line, clean_text
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, StreamReader, knock, open_department


class Named(BaseModel):
    name: DisplayName


class Note(BaseModel):
    text: VisibleText


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("\u202eanna", "anna"),  # right-to-left override: would show "anna" reversed
        ("\u202dAnna\u202c Schmidt", "Anna Schmidt"),
        ("\u2066Anna\u2069 \u2067Schmidt\u2069", "Anna Schmidt"),  # isolates
        ("\u200eAnna\u200f", "Anna"),  # direction marks
        ("An\u200bna\ufeff", "Anna"),  # zero-width space, byte-order mark
        ("Ann\u00ada", "Anna"),  # soft hyphen
        ("an\u200dna", "anna"),  # a joiner inside a Latin name hides nothing here
        ("\x1b[31mAnna\x1b[0m", "Anna"),  # ANSI colour, removed whole
        ("\x1b]0;owned\x07Anna", "Anna"),  # terminal title (OSC)
        ("An\x00na\x07\x08", "Anna"),  # NUL, bell, backspace
        ("  Anna \t\n  Schmidt\u00a0 ", "Anna Schmidt"),  # whitespace collapsed
        ("Ame\u0301lie", "Amélie"),  # NFC
        ("Zo\u00eb \u00d6zt\u00fcrk", "Zoë Öztürk"),
    ],
)
def test_a_display_name_is_cleaned(typed: str, shown: str) -> None:
    assert Named(name=typed).name == shown
    assert unicodedata.is_normalized("NFC", Named(name=typed).name)


def test_joiners_stay_where_a_script_needs_them() -> None:
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "mi-khaham", with ZWNJ
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert Named(name=persian).name == persian
    assert Named(name=family).name == family
    assert Named(name="\u200cAnna\u200d").name == "Anna"


@pytest.mark.parametrize(
    "typed", ["", "   ", "\x00", "\x00\x1b[31m", "\u202e\u202c", "\u200b\ufeff", "\x1b]0;x\x07"]
)
def test_nothing_visible_left_is_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Named(name=typed)
    (error,) = refused.value.errors()
    assert error["type"] == "text_empty"
    assert "visible characters" in error["msg"]


def test_a_name_has_a_length_limit_before_cleaning() -> None:
    with pytest.raises(ValidationError):
        Named(name="\u202e" * 100 + "Anna")


def test_notes_keep_their_line_breaks_and_lose_the_rest() -> None:
    assert Note(text="Bitte\r\nwarten\x1b[2J\u202e\n\n\n\nDanke ").text == "Bitte\nwarten\n\nDanke"
    assert clean_text("\n\n a \n") == "a"
    assert clean_line("a\nb") == "a b"
    with pytest.raises(ValidationError):
        Note(text="\n\x07\n")


def test_a_staff_account_name_is_cleaned_and_an_empty_one_refused() -> None:
    accounts = LocalAccounts()
    accounts.add("eve", "\u202eEve\x1b[1m Example", "long enough password", ["staff"])
    identity = accounts.authenticate("eve", "long enough password")
    assert identity is not None and identity.display_name == "Eve Example"
    with pytest.raises(AccountError, match="visible"):
        accounts.add("mallory", "\x00\u202e", "long enough password", ["staff"])


# -- over HTTP, against the real system -------------------------------------------------------


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    nats = EmbeddedNats(tmp_path_factory.mktemp("names-nats"))
    nats.start()
    system = SystemProcess(Path(tmp_path_factory.mktemp("names-data")), nats.url)
    try:
        system.start()
        yield system
    finally:
        system.stop()
        nats.stop()


def test_a_knock_stores_the_name_without_the_override(system: SystemProcess) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    ticket = knock(citizen, demo, display_name="\u202eanna")
    assert ticket["display_name"] == "anna"

    staff = StaffClient(f"{system.base}/api/v1", "anna")
    queue = staff.get(f"/departments/{demo}/queue")
    assert queue.status_code == 200, queue.text
    (entry,) = [e for e in queue.json()["waiting"] if e["ticket_id"] == ticket["ticket_id"]]
    assert entry["display_name"] == "anna"
    assert "\u202e" not in queue.text and "\\u202e" not in queue.text.lower()


def test_a_knock_with_nothing_visible_in_its_name_is_refused(system: SystemProcess) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    refused = citizen.post(
        f"/departments/{demo}/knock", json={"language": "de", "display_name": "\x00\x1b[31m"}
    )
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "display_name" in detail and "visible characters" in detail
    assert "\x1b" not in refused.text and "\\u001b" not in refused.text


def test_a_staff_note_reaches_the_citizen_cleaned_or_is_refused(system: SystemProcess) -> None:
    citizen = system.client()
    demo = open_department(citizen, "demo")
    ticket = knock(citizen, demo, display_name="Ben")
    stream = StreamReader(
        f"{system.base}{ticket['stream']}", {"Authorization": f"Bearer {ticket['token']}"}
    )
    try:
        stream.wait_for(lambda name, _: name == "status")
        staff = StaffClient(f"{system.base}/api/v1", "anna")
        path = f"/tickets/{ticket['ticket_id']}/message"
        refused = staff.post(path, {"text": "\x07\u202e\u200b"})
        assert refused.status_code == 422
        assert "visible characters" in refused.json()["detail"]
        sent = staff.post(path, {"text": "\u202eBitte\x1b[5m warten"})
        assert sent.status_code == 202, sent.text
        note = stream.wait_for(lambda name, _: name == "message")
        assert note["text"] == "Bitte warten"
    finally:
        stream.close()
