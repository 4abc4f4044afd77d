"""The data protection officer's pages (/dpo) against the real system, in Chromium.

- merkle.js, the browser's RFC 9162 consistency verifier, against the RFC 6962 test vectors
  of tests/audit (every valid proof accepted, every mutated one refused);
- a consultation through the HTTP APIs, then dora (role dpo) finds it in the day's list and
  by ticket id, reads its timeline, exports, verifies, and sees her own reads in "who looked";
- anna (staff) gets a 403 page, nobody signed in goes to the sign-in;
- the checkpoint monitor: remembers on the first visit, verifies the extension on the next,
  raises the alert for a remembered checkpoint with a wrong root (same size and smaller);
- axe (WCAG 2 A/AA) finds nothing on the pages in both languages.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.audit.test_merkle_vectors import (
    CONSISTENCY,
    CONSISTENCY_TABLE,
    ROOTS,
    _all_consistency_mutations,
)
from tests.audit.visits import Visits
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually
from tests.web.conftest import (
    ARTIFACTS,
    PHONE,
    ContextFactory,
    sign_in,
    staff_api,
    watch_errors,
)

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
AXE = Axe()
MONITOR_KEY = "bb.audit.checkpoint"
SHOTS = ARTIFACTS / "screenshots"

VERIFY_ALL = """async (cases) => {
  const merkle = await import("/static/js/merkle.js");
  const bytes = (hex) => new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
  const out = [];
  for (const [name, size1, size2, root1, root2, proof] of cases) {
    try {
      await merkle.verifyConsistency(BigInt(size1), BigInt(size2), bytes(root1), bytes(root2),
                                     proof.map(bytes));
      out.push([name, "ok"]);
    } catch (error) {
      out.push([name, error.name === "InvalidProofError" ? "refused" : `crash: ${error}`]);
    }
  }
  return out;
}"""


def _case(name: str, size1: int, size2: int, root1: bytes, root2: bytes,
          proof: list[bytes]) -> list[Any]:
    return [name, str(size1), str(size2), root1.hex(), root2.hex(), [p.hex() for p in proof]]


def test_merkle_js_accepts_the_rfc6962_vectors_and_refuses_every_mutation(
    web_system: SystemProcess, new_context: ContextFactory
) -> None:
    page = new_context().new_page()
    page.goto("/")
    valid = [_case(f"valid {s1}->{s2}", s1, s2, ROOTS[s1], ROOTS[s2], proof)
             for s1, s2, proof in CONSISTENCY]
    mutated = [_case(name, *args) for name, args in _all_consistency_mutations()]
    table = [_case(f"table {n}", s1, s2, r1, r2, proof)
             for n, (s1, s2, r1, r2, proof, _) in enumerate(CONSISTENCY_TABLE)]
    results = dict(page.evaluate(VERIFY_ALL, valid + mutated + table))
    assert len(mutated) > 50
    assert [results[name] for name, *_ in valid] == ["ok"] * len(valid)
    wrong = [name for name, *_ in mutated if results[name] != "refused"]
    assert wrong == [], f"merkle.js accepted or crashed on mutated proofs: {wrong}"
    for n, (*_, fails) in enumerate(CONSISTENCY_TABLE):
        assert results[f"table {n}"] == ("refused" if fails else "ok"), n
    # Sizes beyond 2^64 and non-integers are refused, never wrapped.
    odd = page.evaluate("""async () => {
      const m = await import("/static/js/merkle.js");
      const r = new Uint8Array(32);
      const out = [];
      for (const [a, b] of [[2 ** 70, 2 ** 70], [1.5, 2], [-1, 2], [1n << 64n, 1n << 64n]]) {
        try { await m.verifyConsistency(a, b, r, r, []); out.push("ok"); }
        catch (e) { out.push(e.name); }
      }
      return out;
    }""")
    assert odd == ["InvalidProofError"] * 4


# -- the DPO's view ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consultation(web_system: SystemProcess) -> dict[str, str]:
    """One whole consultation (knock, admit by anna, join, leave, end), in the log."""
    visits = Visits(web_system.base, web_system.base)
    dept = visits.open_office("demo")
    consultation_id = visits.consultation(dept, 1)
    dora = _dora(web_system)

    def ended() -> dict[str, Any] | None:
        response = dora.get(f"/audit/consultations/{consultation_id}")
        if response.status_code != 200:
            return None
        body = response.json()
        return body if any(s["event"] == "ConsultationEnded" for s in body["steps"]) else None

    timeline = eventually(ended, timeout=30)
    return {"consultation": consultation_id, "ticket": timeline["ticket_id"], "department": dept}


def _dora(system: SystemProcess) -> StaffClient:
    return staff_api(system, "dora")


def _signed_in_dpo(new_context: ContextFactory, lang: str = "de") -> Page:
    page = new_context(locale="de-DE" if lang == "de" else "en-GB").new_page()
    sign_in(page, "dora")  # lands on /dpo: let that visit's check finish, then forget it
    # Not just any state: "info" ("checking …") is set before the check runs, and a check
    # still running would remember its checkpoint after the removal below.
    expect(page.locator("#monitor-state[data-state]:not([data-state=info])")).to_be_attached()
    page.evaluate("localStorage.removeItem('bb.audit.checkpoint')")
    page.goto(f"/dpo?lang={lang}")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    return page


def test_dora_reads_a_consultation_searches_exports_and_sees_who_looked(
    web_system: SystemProcess, new_context: ContextFactory, consultation: dict[str, str]
) -> None:
    page = _signed_in_dpo(new_context)
    errors = watch_errors(page)
    row = page.locator(f"tr[data-consultation='{consultation['consultation']}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text("anna")
    row.get_by_role("button").click()

    section = page.locator("#timeline-section")
    expect(section).to_be_visible()
    for event in ("Knocked", "Admitted", "ConsultationOpened", "ParticipantJoined",
                  "ParticipantLeft", "ConsultationEnded"):
        expect(page.locator(f"#timeline-steps li[data-event={event}]").first).to_be_visible()
    expect(page.locator("#timeline-steps li[data-event=Admitted]")).to_contain_text(
        "Hereingebeten von anna")
    expect(page.locator("#timeline-steps li[data-event=ParticipantJoined]").first).to_be_visible()
    expect(section.locator("[data-slot=ticket]")).to_have_text(consultation["ticket"])
    expect(page.locator("#timeline-presence li").first).to_be_visible()

    # Search by the ticket id: the same consultation's timeline.
    page.locator("#timeline-section").evaluate("node => { node.hidden = true; }")
    page.fill("#search-id", consultation["ticket"])
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-state")).to_contain_text(consultation["consultation"])
    expect(section).to_be_visible()
    expect(section.locator("[data-slot=consultation]")).to_have_text(consultation["consultation"])
    page.fill("#search-id", "kein-id")
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-state")).to_have_class("notice notice-error")

    # Statistics of today.
    page.click("#statistics-form button[type=submit]")
    expect(page.locator("#statistics-counts tr[data-count=Knocked] td")).not_to_have_text("0")

    # Export: the JSON Lines file, with the command to verify it offline.
    key_url = f"{web_system.base}/api/v1/audit/key"
    expect(page.locator("#verify-command")).to_contain_text(
        f'buergerbuero audit verify audit.jsonl --key "$(curl -s {key_url})"')
    with page.expect_download() as download:
        page.click("#export-link")
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()  # noqa: SIM115
    assert json.loads(lines[0])["@kind"] == "header"
    assert json.loads(lines[-1])["@kind"] == "end"

    # Online verification.
    page.click("#run-verify")
    expect(page.locator("#verify-result[data-ok=true]")).to_be_visible(timeout=20_000)

    # Who looked: dora's own reads (the list, the timeline, the search, the export).
    def listed() -> bool:
        page.click("#load-views")
        expect(page.locator("#views-state")).not_to_have_text("")
        actions = set(page.locator("#views-rows tr[data-staff=dora]").evaluate_all(
            "rows => rows.map((r) => r.dataset.action)"))
        return {"consultations", "timeline", "search", "export"} <= actions

    eventually(listed, timeout=20, interval=1)
    assert errors == []


def test_dora_sees_who_looked_at_one_consultation(
    web_system: SystemProcess, new_context: ContextFactory, consultation: dict[str, str]
) -> None:
    """ben (on the department's staff, never in the consultation) reads its details: the
    read is in "who looked", filtered by the consultation, the newest first."""
    wanted = consultation["consultation"]
    assert staff_api(web_system, "ben").get(f"/consultations/{wanted}").status_code == 200
    page = _signed_in_dpo(new_context)
    errors = watch_errors(page)
    page.fill("#views-consultation", "kein-id")
    page.click("#load-views")
    expect(page.locator("#views-state")).to_have_class("notice notice-error")
    page.fill("#views-consultation", wanted)

    def listed() -> bool:
        page.click("#load-views")
        expect(page.locator("#views-state")).to_contain_text(wanted)
        return page.locator("#views-rows tr[data-staff=ben]").count() > 0

    eventually(listed, timeout=20, interval=1)
    ben = page.locator("#views-rows tr[data-staff=ben]").first
    expect(ben).to_have_attribute("data-type", "ConsultationViewed")
    expect(ben).to_contain_text("Gesprächsdetails (Beschäftigte)")
    expect(ben).to_contain_text(f"consultation={wanted}")
    times = page.locator("#views-rows time").evaluate_all(
        "nodes => nodes.map((n) => n.getAttribute('datetime'))")
    assert times == sorted(times, reverse=True)
    assert errors == []


def test_only_a_dpo_gets_the_page(web_system: SystemProcess, new_context: ContextFactory) -> None:
    nobody = new_context().new_page()
    response = nobody.goto("/dpo")
    assert response is not None
    nobody.wait_for_url("**/staff/login")

    page = new_context().new_page()
    sign_in(page, "anna")
    response = page.goto("/dpo")
    assert response is not None and response.status == 403
    expect(page.locator("#forbidden-heading")).to_have_text("Zugriff verweigert (403)")
    expect(page.locator("#dpo")).to_have_count(0)
    assert staff_api(web_system, "anna").get("/audit/views").status_code == 403


# -- the checkpoint monitor ------------------------------------------------------------------------


def _grow_and_sign(system: SystemProcess, dora: StaffClient, beyond: int) -> int:
    """More events in the log, then a fresh checkpoint bigger than ``beyond``."""
    visits = Visits(system.base, system.base)
    with system.client() as client:
        dept = visits.open_office("demo")
        response = client.post(f"/departments/{dept}/knock", json={"language": "de"})
        assert response.status_code == 201, response.text

    def signed() -> int | None:
        size = int(dora.get("/audit/checkpoint/fresh").text.split("\n")[1])
        return size if size > beyond else None

    return int(eventually(signed, timeout=20, interval=0.5))


def _remembered(page: Page) -> dict[str, Any]:
    raw = page.evaluate(f"localStorage.getItem('{MONITOR_KEY}')")
    assert raw, "the monitor remembers nothing"
    return dict(json.loads(raw))


def _size(note: str) -> int:
    return int(note.split("\n")[1])


def _with_root(note: str, root: bytes) -> str:
    lines = note.split("\n")
    lines[2] = base64.b64encode(root).decode()
    return "\n".join(lines)


def test_checkpoint_monitor_verifies_extensions_and_alerts_on_a_fork(
    web_system: SystemProcess, new_context: ContextFactory, consultation: dict[str, str]
) -> None:
    dora = _dora(web_system)
    first_size = _size(dora.get("/audit/checkpoint/fresh").text)
    page = _signed_in_dpo(new_context)
    errors = watch_errors(page)
    state = page.locator("#monitor-state")
    expect(state).to_have_attribute("data-state", "ok")
    expect(state).to_contain_text("Checkpoint gemerkt")
    seen = _size(_remembered(page)["note"])
    assert seen >= first_size
    expect(page.locator("#monitor-alert")).to_be_hidden()

    grown = _grow_and_sign(web_system, dora, seen)
    page.reload()
    expect(state).to_contain_text(f"Log unverändert fortgeführt (Größe {seen} → ")
    now = _size(_remembered(page)["note"])
    assert now >= grown > seen
    expect(state).to_have_attribute("data-state", "ok")
    expect(page.locator("#monitor-alert")).to_be_hidden()

    # A remembered checkpoint of the current size with another root: a fork.
    current = web_system.client().get("/audit/checkpoint").text
    assert _size(current) >= now  # or signed since, on its 10-second cadence
    now = _size(current)
    forged = _with_root(current, bytes(32))
    page.evaluate("([k, v]) => localStorage.setItem(k, v)",
                  [MONITOR_KEY, json.dumps({"note": forged})])
    page.reload()
    alert = page.locator("#monitor-alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("Warnung")
    expect(alert).to_contain_text(f"Größe {now}")
    # The forged checkpoint is kept as evidence, not overwritten by the server's.
    assert _remembered(page)["note"] == forged

    # A remembered older checkpoint with a wrong root: the consistency proof fails.
    older = web_system.client().get("/audit/checkpoints").json()[0]["checkpoint"]
    assert _size(older) < now
    page.evaluate("([k, v]) => localStorage.setItem(k, v)",
                  [MONITOR_KEY, json.dumps({"note": _with_root(older, b"\x01" * 32)})])
    page.reload()
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Konsistenzbeweis")
    expect(state).to_have_attribute("data-state", "error")

    # A remembered checkpoint larger than the log: the log shrank.
    lines = current.split("\n")
    lines[1] = str(now + 1000)
    page.evaluate("([k, v]) => localStorage.setItem(k, v)",
                  [MONITOR_KEY, json.dumps({"note": "\n".join(lines)})])
    page.reload()
    expect(alert).to_contain_text("geschrumpft")

    # The genuine older checkpoint verifies again.
    page.evaluate("([k, v]) => localStorage.setItem(k, v)",
                  [MONITOR_KEY, json.dumps({"note": older})])
    page.reload()
    # The log may have grown meanwhile (signing is periodic, and the DPO's views are logged).
    expect(state).to_contain_text(f"Log unverändert fortgeführt (Größe {_size(older)} → ")
    assert _size(_remembered(page)["note"]) >= now
    expect(alert).to_be_hidden()
    assert errors == []


# -- accessibility -------------------------------------------------------------------------------


def _axe(page: Page, name: str, lang: str) -> list[str]:
    page.wait_for_timeout(150)
    results = AXE.run(page, options=WCAG)
    return [f"{name} [{lang}]: {v['id']}: {v['help']} {[n.get('target') for n in v['nodes']][:3]}"
            for v in results.response["violations"]]


@pytest.mark.parametrize("lang", ["de", "en"])
def test_dpo_pages_pass_axe_in_both_languages(
    lang: str, web_system: SystemProcess, new_context: ContextFactory,
    consultation: dict[str, str],
) -> None:
    page = _signed_in_dpo(new_context, lang)
    assert page.evaluate("document.documentElement.lang") == lang
    expect(page.locator(f"tr[data-consultation='{consultation['consultation']}']")).to_be_visible()
    expect(page.locator("#monitor-state")).to_have_attribute("data-state", "ok")
    violations = _axe(page, "dpo", lang)
    page.locator(f"tr[data-consultation='{consultation['consultation']}'] button").click()
    expect(page.locator("#timeline-section")).to_be_visible()
    page.click("#statistics-form button[type=submit]")
    expect(page.locator("#statistics-result")).to_be_visible()
    page.click("#load-views")
    expect(page.locator("#views-table")).to_be_visible()
    page.click("#run-verify")
    expect(page.locator("#verify-result[data-ok]")).to_be_attached(timeout=20_000)
    violations += _axe(page, "dpo-loaded", lang)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"dpo-{lang}-desktop.png"), full_page=True)
    current = page.evaluate(f"localStorage.getItem('{MONITOR_KEY}')")
    note = json.loads(current)["note"]
    page.evaluate("([k, v]) => localStorage.setItem(k, v)",
                  [MONITOR_KEY, json.dumps({"note": _with_root(note, bytes(32))})])
    page.reload()
    expect(page.locator("#monitor-alert")).to_be_visible()
    violations += _axe(page, "dpo-alert", lang)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    violations += _axe(page, "dpo-alert-phone", lang)
    page.screenshot(path=str(SHOTS / f"dpo-alert-{lang}-phone.png"), full_page=True)

    anna = new_context().new_page()
    sign_in(anna, "anna")
    anna.goto(f"/dpo?lang={lang}")
    expect(anna.locator("#dpo-forbidden")).to_be_visible()
    violations += _axe(anna, "dpo-forbidden", lang)
    assert not violations, "\n".join(violations)
