"""Capability tokens over HTTP, against the real system: forgeries get 401, dead links 410."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest

from services.common.natsserver import EmbeddedNats
from services.common.tokens import ISSUER, TokenSigner
from tests.conftest import SystemProcess
from tests.helpers import StaffClient, eventually, knock, open_department

OTHER_KEY = b"not-the-system-key-but-just-as-long-and-random!!"


# -- one system for the module --------------------------------------------------------------

@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemProcess]:
    nats_server = EmbeddedNats(tmp_path_factory.mktemp("tokens-nats"))
    nats_server.start()
    system = SystemProcess(Path(tmp_path_factory.mktemp("tokens-data")), nats_server.url)
    try:
        system.start()
        yield system
    finally:
        system.kill()  # its data dies with the module
        nats_server.stop()


@pytest.fixture(scope="module")
def signer(system: SystemProcess) -> TokenSigner:
    """The system's own key: tokens minted here are genuine in every way we do not change."""
    return TokenSigner(system.env["BB_SECRET_KEY"].encode())


@pytest.fixture(scope="module")
def citizen(system: SystemProcess) -> Iterator[httpx.Client]:
    with system.client() as client:
        yield client


@pytest.fixture(scope="module")
def demo(citizen: httpx.Client) -> str:
    return open_department(citizen, "demo")


@pytest.fixture(scope="module")
def anna(system: SystemProcess) -> StaffClient:
    return StaffClient(f"{system.base}/api/v1", "anna")


@pytest.fixture
def ticket(citizen: httpx.Client, demo: str) -> Iterator[dict[str, Any]]:
    made = knock(citizen, demo)
    yield made
    citizen.post(f"/tickets/{made['ticket_id']}/withdraw", headers=bearer(made["token"]))


@pytest.fixture(scope="module")
def consultation(citizen: httpx.Client, demo: str, anna: StaffClient) -> dict[str, Any]:
    """An admitted citizen in a consultation: its id, the ticket and a participant token."""
    made = knock(citizen, demo)
    admitted = anna.post(f"/tickets/{made['ticket_id']}/admit")
    assert admitted.status_code == 200, admitted.text
    consultation_id = eventually(lambda: citizen.get(
        f"/tickets/{made['ticket_id']}", headers=bearer(made["token"])).json()["consultation_id"])
    joined = citizen.post(f"/consultations/{consultation_id}/join", headers=bearer(made["token"]))
    assert joined.status_code == 200, joined.text
    return {"id": consultation_id, "ticket": made, **joined.json()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(unb64(token.split(".")[1])))


def ticket_status(citizen: httpx.Client, ticket_id: str, token: str) -> httpx.Response:
    return citizen.get(f"/tickets/{ticket_id}", headers=bearer(token))


def refused(response: httpx.Response, status: int, phrase: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and phrase.lower() in detail.lower(), detail


# -- the ticket's token -------------------------------------------------------------------------

def test_the_genuine_token_works(citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    # What the refusals below change is all that stands between them and this answer.
    response = ticket_status(citizen, ticket["ticket_id"], ticket["token"])
    assert response.status_code == 200 and response.json()["status"] == "waiting"


def test_a_changed_signature_is_401(citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    header, payload, signature = ticket["token"].split(".")
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 0x20
    forged = f"{header}.{payload}.{b64(bytes(raw))}"
    refused(ticket_status(citizen, ticket["ticket_id"], forged), 401, "not valid")


def test_a_payload_changed_to_another_ticket_is_401(citizen: httpx.Client, demo: str,
                                                    ticket: dict[str, Any]) -> None:
    other = knock(citizen, demo)
    try:
        header, _, signature = ticket["token"].split(".")
        claims = {**claims_of(ticket["token"]), "sub": other["ticket_id"]}
        forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
        refused(ticket_status(citizen, other["ticket_id"], forged), 401, "not valid")
        withdrawn = citizen.post(f"/tickets/{other['ticket_id']}/withdraw",
                                 headers=bearer(forged))
        refused(withdrawn, 401, "not valid")
        assert ticket_status(citizen, other["ticket_id"], other["token"]).json()["status"] \
            == "waiting"
    finally:
        citizen.post(f"/tickets/{other['ticket_id']}/withdraw", headers=bearer(other["token"]))


def test_an_expired_token_is_401(citizen: httpx.Client, signer: TokenSigner,
                                 ticket: dict[str, Any]) -> None:
    expired = signer.issue("ticket", ticket["ticket_id"], -60, department=claims_of(
        ticket["token"])["department"])
    refused(ticket_status(citizen, ticket["ticket_id"], expired), 401, "expired")
    refused(citizen.post(f"/tickets/{ticket['ticket_id']}/withdraw", headers=bearer(expired)),
            401, "expired")
    # The same, minted to live: accepted. Only the expiry made the difference.
    fresh = signer.issue("ticket", ticket["ticket_id"], 60)
    assert ticket_status(citizen, ticket["ticket_id"], fresh).status_code == 200


def test_alg_none_is_401(citizen: httpx.Client, ticket: dict[str, Any]) -> None:
    claims = claims_of(ticket["token"])
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64(json.dumps(claims).encode())}."
    refused(ticket_status(citizen, ticket["ticket_id"], unsigned), 401, "not valid")
    refused(ticket_status(citizen, ticket["ticket_id"], jwt.encode(claims, None, algorithm="none")),
            401, "not valid")


def test_a_token_signed_with_another_key_is_401(citizen: httpx.Client,
                                                ticket: dict[str, Any]) -> None:
    foreign = TokenSigner(OTHER_KEY).issue("ticket", ticket["ticket_id"], 600)
    refused(ticket_status(citizen, ticket["ticket_id"], foreign), 401, "not valid")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_algorithm_with_the_right_key_is_401(citizen: httpx.Client, system: SystemProcess,
                                                     ticket: dict[str, Any],
                                                     algorithm: str) -> None:
    key = system.env["BB_SECRET_KEY"].encode()
    swapped = jwt.encode(claims_of(ticket["token"]), key, algorithm=algorithm)
    refused(ticket_status(citizen, ticket["ticket_id"], swapped), 401, "not valid")


def test_a_token_of_another_issuer_is_401(citizen: httpx.Client, system: SystemProcess,
                                          ticket: dict[str, Any]) -> None:
    claims = {**claims_of(ticket["token"]), "iss": "not-" + ISSUER}
    token = jwt.encode(claims, system.env["BB_SECRET_KEY"].encode(), algorithm="HS256")
    refused(ticket_status(citizen, ticket["ticket_id"], token), 401, "not valid")


def test_a_participant_token_is_not_a_ticket_token(citizen: httpx.Client,
                                                   consultation: dict[str, Any]) -> None:
    participant = consultation["participant_token"]
    ticket_id = consultation["ticket"]["ticket_id"]
    assert claims_of(participant)["scope"] == "participant"
    refused(ticket_status(citizen, ticket_id, participant), 401, "not valid")
    # ... nor does it open the consultation the way the ticket's token does
    refused(citizen.post(f"/consultations/{consultation['id']}/join",
                         headers=bearer(participant)), 401, "not valid")


def test_a_participant_token_of_the_right_scope_minted_for_the_ticket_is_401(
        citizen: httpx.Client, signer: TokenSigner, consultation: dict[str, Any]) -> None:
    ticket_id = consultation["ticket"]["ticket_id"]
    wrong_scope = signer.issue("participant", ticket_id, 600, consultation=consultation["id"])
    refused(ticket_status(citizen, ticket_id, wrong_scope), 401, "not valid")


def test_a_ticket_token_is_not_a_participant_or_session_token(
        system: SystemProcess, citizen: httpx.Client, consultation: dict[str, Any],
        demo: str) -> None:
    ticket_token = consultation["ticket"]["token"]
    refused(citizen.post(f"/consultations/{consultation['id']}/leave",
                         headers=bearer(ticket_token)), 401, "not valid")
    with httpx.Client(base_url=f"{system.base}/api/v1", timeout=10,
                      cookies={"bb_session": ticket_token}) as as_staff:
        refused(as_staff.get(f"/departments/{demo}/queue"), 401, "sign in")


def test_a_ticket_admitted_elsewhere_does_not_open_this_consultation(
        citizen: httpx.Client, consultation: dict[str, Any], ticket: dict[str, Any]) -> None:
    refused(citizen.post(f"/consultations/{consultation['id']}/join",
                         headers=bearer(ticket["token"])), 403, "not admitted")


def test_a_forged_session_cookie_is_401(system: SystemProcess, anna: StaffClient,
                                        demo: str) -> None:
    cookie = anna.http.cookies["bb_session"]
    header, _, signature = cookie.split(".")
    claims = {**claims_of(cookie), "sub": "dora"}
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    with httpx.Client(base_url=f"{system.base}/api/v1", timeout=10,
                      cookies={"bb_session": forged}) as impostor:
        refused(impostor.get(f"/departments/{demo}/queue"), 401, "sign in")


# -- invitation links: revoked or expired answer 410 --------------------------------------------

def invite(anna: StaffClient, consultation: dict[str, Any]) -> dict[str, Any]:
    response = anna.post(f"/consultations/{consultation['id']}/invitations")
    assert response.status_code == 201, response.text
    return dict(response.json())


def interpreter_join(citizen: httpx.Client, consultation_id: str, token: str) -> httpx.Response:
    return citizen.post(f"/consultations/{consultation_id}/interpreter-join",
                        headers=bearer(token))


def test_an_invitation_lets_an_interpreter_in(citizen: httpx.Client, anna: StaffClient,
                                              consultation: dict[str, Any]) -> None:
    invitation = invite(anna, consultation)
    assert invitation["token"] not in invitation["link"].split("#")[0]  # never sent to a server
    joined = interpreter_join(citizen, consultation["id"], invitation["token"])
    assert joined.status_code == 200, joined.text
    assert joined.json()["role"] == "interpreter"


def test_a_revoked_invitation_answers_410(citizen: httpx.Client, anna: StaffClient,
                                          signer: TokenSigner,
                                          consultation: dict[str, Any]) -> None:
    def interpreters() -> int:
        details = anna.get(f"/consultations/{consultation['id']}").json()
        return sum(p["role"] == "interpreter" for p in details["participants"])

    invitation = invite(anna, consultation)
    before = interpreters()
    revoked = anna.http.delete(
        f"/consultations/{consultation['id']}/invitations/{invitation['invitation_id']}",
        headers={"X-CSRF-Token": anna.csrf})
    assert revoked.status_code == 204, revoked.text
    refused(interpreter_join(citizen, consultation["id"], invitation["token"]), 410, "withdrawn")
    # Asked again, still gone; and nobody joined on it.
    refused(interpreter_join(citizen, consultation["id"], invitation["token"]), 410, "withdrawn")
    # What is revoked is the invitation: any other token for it is refused too.
    another = signer.issue("invitation", str(invitation["invitation_id"]), 600,
                           consultation=consultation["id"])
    refused(interpreter_join(citizen, consultation["id"], another), 410, "withdrawn")
    assert interpreters() == before


def test_an_expired_invitation_answers_410(citizen: httpx.Client, signer: TokenSigner,
                                           anna: StaffClient,
                                           consultation: dict[str, Any]) -> None:
    invitation = invite(anna, consultation)
    expired = signer.issue("invitation", str(invitation["invitation_id"]), -60,
                           consultation=consultation["id"])
    refused(interpreter_join(citizen, consultation["id"], expired), 410, "expired")


def test_a_forged_invitation_answers_401(citizen: httpx.Client, anna: StaffClient,
                                         consultation: dict[str, Any]) -> None:
    invitation = invite(anna, consultation)
    foreign = TokenSigner(OTHER_KEY).issue("invitation", str(invitation["invitation_id"]), 600,
                                           consultation=consultation["id"])
    refused(interpreter_join(citizen, consultation["id"], foreign), 401, "not valid")
    refused(citizen.post(f"/consultations/{consultation['id']}/interpreter-join"), 401, "token")


def test_an_invitation_for_another_consultation_is_403(citizen: httpx.Client, signer: TokenSigner,
                                                       consultation: dict[str, Any]) -> None:
    elsewhere = signer.issue("invitation", str(uuid4()), 600, consultation=str(uuid4()))
    refused(interpreter_join(citizen, consultation["id"], elsewhere), 403, "another consultation")
