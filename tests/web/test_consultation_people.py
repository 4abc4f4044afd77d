"""The consultation as people meet in it: names and languages where they belong, the
chat (relayed, never stored), the page's own confirmation dialog, the preview of the own
shared screen; and the join API's refusals for what an interpreter types."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.conftest import SystemProcess
from tests.helpers import department_id, eventually, knock
from tests.web import patience
from tests.web.conftest import (
    ContextFactory,
    demo_id,
    expect_video_moving,
    sign_in,
    staff_api,
    watch_errors,
)

patient_web_system = patience.patient_web_system  # web_system, with a longer start

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
AXE = Axe()


def _axe(page: Page, name: str) -> list[str]:
    results = AXE.run(page, options=WCAG)
    return [
        f"{name}: {v['id']}: {v['help']} {[n.get('target') for n in v['nodes']][:3]}"
        for v in results.response["violations"]
    ]


def _hunt(directory: Path, needle: bytes) -> list[str]:
    """Every file under `directory` that holds `needle` (the data directory, NATS's store
    and the system's log)."""
    return [
        str(path)
        for path in directory.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    ]


def _chat(page: Page, text: str) -> None:
    page.fill("#chat-text", text)
    page.keyboard.press("Enter")


def test_names_chat_dialog_and_screen_preview(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    demo = demo_id(web_system)
    problems: list[str] = []

    citizen = new_context().new_page()
    citizen_errors = watch_errors(citizen)
    citizen.goto(f"/office/{demo}?lang=de")
    citizen.fill("#display-name", "Erika Muster")
    citizen.click("#knock-form button[type=submit]")
    citizen.wait_for_url("**/visit")
    ticket = citizen.evaluate("JSON.parse(sessionStorage.getItem('bb.ticket'))")
    staff_api(web_system).post(f"/tickets/{ticket['ticket_id']}/admit")
    citizen.wait_for_url("**/visit/consultation/*", timeout=20_000)
    consultation = citizen.url.rsplit("/", 1)[1]

    staff = new_context(locale="en-GB").new_page()
    staff_errors = watch_errors(staff)
    staff.goto("/staff/login?lang=en")
    sign_in(staff)
    staff.goto(f"/staff/consultation/{consultation}")
    expect(staff.locator("[data-action=mute]")).to_be_enabled(timeout=20_000)
    # Item 4: the name the citizen gave, where the dashboard showed it.
    participants = staff.locator("#participants")
    expect(participants).to_contain_text("Erika Muster (Citizen, German)", timeout=15_000)
    expect(staff.locator(".tile[data-role=citizen] .tile-label")).to_have_text(
        "Erika Muster (Citizen, German) – camera", timeout=15_000
    )

    staff.click("#invite")
    state = staff.locator("#consultation-state")
    expect(state).to_have_text("A new invitation link has been created.")
    link = staff.locator("#invitations input").first.input_value()
    interpreter = new_context().new_page()
    interpreter_errors = watch_errors(interpreter)
    interpreter.goto(link.replace(web_system.base, ""))
    interpreter.fill("#guest-name", "Ayşe Yılmaz")
    interpreter.select_option("#guest-language", "tr")
    interpreter.click("#invite-form button[type=submit]")
    expect_video_moving(interpreter, "staff")

    # Item 3: the interpreter's name and language, to staff and citizen.
    expect(staff.locator(".tile[data-role=interpreter] .tile-label")).to_have_text(
        "Ayşe Yılmaz (Interpreter, Turkish) – camera", timeout=15_000
    )
    expect(participants).to_contain_text("Ayşe Yılmaz (Interpreter, Turkish)")
    expect(citizen.locator(".tile[data-role=interpreter] .tile-label")).to_have_text(
        "Ayşe Yılmaz (Dolmetschung, Türkisch) – Kamera", timeout=15_000
    )
    expect(citizen.locator("[data-slot=media-status]")).to_contain_text("Ayşe Yılmaz")
    # The citizen's name is for staff only.
    expect(interpreter.locator(".tile[data-role=citizen] .tile-label")).to_have_text(
        "Bürgerin oder Bürger – Kamera"
    )
    assert "Erika Muster" not in interpreter.content()

    # The chat: staff, citizen and interpreter, with a link that becomes one.
    planted = f"Aktenzeichen PLANT-{uuid.uuid4().hex}"
    _chat(staff, planted)
    for page in (staff, citizen, interpreter):
        expect(page.locator(".chat-log li").last).to_contain_text(planted)
    expect(citizen.locator(".chat-log li").last).to_contain_text("Sachbearbeitung:")
    expect(staff.locator(".chat-log li").last).to_contain_text("You:")
    _chat(citizen, "Das Formular: https://example.org/antrag?id=7 – danke")
    expect(staff.locator(".chat-log li").last).to_contain_text("Erika Muster:")
    form_link = staff.locator(".chat-log li").last.locator("a")
    expect(form_link).to_have_attribute("href", "https://example.org/antrag?id=7")
    expect(interpreter.locator(".chat-log li").last).to_contain_text("Bürgerin oder Bürger:")
    _chat(interpreter, "Ich übersetze.")
    expect(citizen.locator(".chat-log li").last).to_contain_text("Ayşe Yılmaz: Ich übersetze.")
    problems += _axe(citizen, "citizen with chat [de]")
    problems += _axe(interpreter, "interpreter with chat [de]")

    # Item 7: a preview of the screen staff share.
    staff.click("[data-action=screen]")
    expect(staff.locator("[data-slot=screen-preview]")).to_be_visible()
    expect(staff.locator("[data-slot=screen-preview] .tile-label")).to_have_text(
        "Your screen – as the others see it"
    )
    expect_video_moving(citizen, "staff", "screen")
    problems += _axe(staff, "staff with chat and screen preview [en]")
    staff.click("[data-action=screen]")
    expect(staff.locator("[data-slot=screen-preview]")).to_have_count(0)

    # The page's own dialog, by keyboard: Escape keeps the conversation, Enter on the
    # confirm button ends it.
    staff.focus("#end")
    staff.keyboard.press("Enter")
    dialog = staff.locator("dialog#end-dialog")
    expect(dialog).to_be_visible()
    assert staff.evaluate("document.activeElement.id") == "end-dialog-cancel"
    problems += _axe(staff, "end dialog [en]")
    staff.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert staff.evaluate("document.activeElement.id") == "end"
    expect(staff.locator("#in-call")).to_be_visible()
    staff.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    staff.keyboard.press("Tab")
    assert staff.evaluate("document.activeElement.id") == "end-dialog-confirm"
    staff.keyboard.press("Enter")
    expect(staff.locator("#ended")).to_be_visible()
    expect(state).not_to_contain_text("invitation")
    expect(citizen.locator("#ended")).to_be_visible(timeout=15_000)
    expect(interpreter.locator("#invite-ended")).to_be_visible(timeout=15_000)
    for page in (staff, citizen, interpreter):
        expect(page.locator(".chat-log li")).to_have_count(0)

    # Never stored, never logged: the planted text is in no file of the system.
    assert _hunt(web_system.data_dir.parent, planted.encode()) == []
    assert _hunt(web_system.data_dir.parent, "Ayşe Yılmaz".encode()) == []
    assert not problems, "\n".join(problems)
    assert citizen_errors == [] and staff_errors == [] and interpreter_errors == []


def _invitation(system: SystemProcess, name: str = "Benannt") -> tuple[str, dict[str, Any]]:
    demo = demo_id(system)
    with system.client() as client:
        ticket = knock(client, demo, display_name=name, language="uk")
    staff = staff_api(system)
    staff.post(f"/tickets/{ticket['ticket_id']}/admit")

    def consultation() -> Any:
        with system.client() as client:
            answer = client.get(
                f"/tickets/{ticket['ticket_id']}",
                headers={"Authorization": f"Bearer {ticket['token']}"},
            )
            return answer.json().get("consultation_id")

    consultation_id = str(eventually(consultation))
    invitation = staff.post(f"/consultations/{consultation_id}/invitations").json()
    return consultation_id, {"ticket": ticket, "invitation": invitation}


def test_passes_carry_names_only_where_they_belong_and_refuse_bad_ones(
    web_system: SystemProcess,
) -> None:
    consultation, made = _invitation(web_system, "Karl Klar")
    ticket, invitation = made["ticket"], made["invitation"]
    with web_system.client() as client:
        citizen = client.post(
            f"/consultations/{consultation}/join",
            headers={"Authorization": f"Bearer {ticket['token']}"},
        ).json()
        assert (citizen["display_name"], citizen["language"]) == ("Karl Klar", "uk")
        bearer = {"Authorization": f"Bearer {invitation['token']}"}
        path = f"/consultations/{consultation}/interpreter-join"
        for body in (
            {"display_name": "x" * 61, "language": "tr"},
            {"display_name": "\u202e\u200b", "language": "tr"},
            {"display_name": "Ayşe", "language": "Türkisch"},
            {"display_name": ["Ayşe"], "language": "tr"},
        ):
            assert client.post(path, json=body, headers=bearer).status_code == 422, body
        malformed = client.post(
            path, content=b"{nope", headers={**bearer, "Content-Type": "application/json"}
        )
        assert malformed.status_code == 422
        oversized = client.post(
            path, json={"display_name": "A" * 200_000, "language": "tr"}, headers=bearer
        )
        assert oversized.status_code in (413, 422)
        assert client.post(path, json={"display_name": "Ayşe"}).status_code == 401
        joined = client.post(
            path, json={"display_name": "Ayşe Yılmaz", "language": "tr"}, headers=bearer
        ).json()
        assert (joined["display_name"], joined["language"]) == ("Ayşe Yılmaz", "tr")
        # An invitation of another consultation is refused, the name notwithstanding.
        other, _ = _invitation(web_system)
        refused = client.post(
            f"/consultations/{other}/interpreter-join",
            json={"display_name": "Ayşe", "language": "tr"},
            headers=bearer,
        )
        assert refused.status_code == 403

    # The DPO's timeline has the invitation and the joining, with neither name nor
    # language (the language interpreted into would tell the citizen's).
    dora = staff_api(web_system, "dora")

    def timeline() -> Any:
        answer = dora.get(f"/audit/consultations/{consultation}")
        steps = answer.json()["steps"] if answer.status_code == 200 else []
        return next((s for s in steps if s["event"] == "InterpreterJoined"), None) and answer

    answer = eventually(timeline)
    step = next(s for s in answer.json()["steps"] if s["event"] == "InterpreterJoined")
    assert "language" not in step
    assert "Ayşe" not in answer.text and "Karl Klar" not in answer.text


def test_an_anonymous_departments_citizen_is_named_to_nobody(web_system: SystemProcess) -> None:
    carla = staff_api(web_system, "carla")
    with web_system.client() as client:
        anonymous = department_id(client, "hiv-beratung")
    carla.post(f"/offices/{anonymous}/open")  # 409 when it is open already
    with web_system.client() as client:
        eventually(lambda: client.get(f"/departments/{anonymous}").json()["open"])
        ticket = knock(client, anonymous, language="en")
    carla.post(f"/tickets/{ticket['ticket_id']}/admit")

    def consultation() -> Any:
        with web_system.client() as client:
            answer = client.get(
                f"/tickets/{ticket['ticket_id']}",
                headers={"Authorization": f"Bearer {ticket['token']}"},
            )
            return answer.json().get("consultation_id")

    consultation_id = eventually(consultation)
    with web_system.client() as client:
        joined = client.post(
            f"/consultations/{consultation_id}/join",
            headers={"Authorization": f"Bearer {ticket['token']}"},
        ).json()
    assert joined["display_name"] is None and joined["language"] is None
