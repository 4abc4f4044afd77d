"""No token in any log: a whole visit on a real `up`, every log line read afterwards.

The visit, with every log on (DEBUG, every library's lines too): a citizen knocks and
follows the ticket with ``?token=`` (as EventSource must), a staff member signs in and
admits, both join the consultation, the staff member invites an interpreter, who joins
by the invitation's token in ``?token=``; participant tokens ask where the media room is
and leave with ``?token=``. Then every issued token, the session cookie and the CSRF
token are looked for in the system's output and in the NATS server's log: none is found.
Run in both of `up`'s modes (passed on to the core process, the queue processes'
forwarder is in the path of the rooms routes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SystemProcess
from tests.helpers import StaffClient, StreamReader, eventually, knock, open_department
from tests.security.limits_support import MODES, start_system

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=MODES, ids=lambda m: f"queue-processes-{m}")
def system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SystemProcess]:
    yield from start_system(tmp_path, str(request.param), env={"BB_LOG_LEVEL": "DEBUG"})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _visit(system: SystemProcess) -> list[str]:
    """Everything secret the visit handed out or sent."""
    secrets: list[str] = []
    api = f"{system.base}/api/v1"
    with system.client() as citizen:
        dept = open_department(citizen, "demo")
        ticket = knock(citizen, dept, display_name="Ada")
        token = ticket["token"]
        secrets.append(token)
        stream = StreamReader(f"{system.base}{ticket['stream']}?token={token}")
        stream.wait_for(lambda e, d: e == "status")
        assert citizen.get(f"/tickets/{ticket['ticket_id']}?token={token}").status_code == 200

        staff = StaffClient(api, "anna")
        secrets += [staff.csrf, *staff.http.cookies.values()]
        admitted = staff.post(f"/tickets/{ticket['ticket_id']}/admit")
        assert admitted.status_code == 200, admitted.text
        ready = stream.wait_for(lambda e, d: e == "status" and bool(d.get("consultation_id")))
        consultation = ready["consultation_id"]
        stream.close()

        joined = citizen.post(f"/consultations/{consultation}/join?token={token}")
        assert joined.status_code == 200, joined.text
        citizen_pass = joined.json()["participant_token"]
        staff_joined = staff.post(f"/consultations/{consultation}/join")
        assert staff_joined.status_code == 200, staff_joined.text
        secrets += [citizen_pass, staff_joined.json()["participant_token"]]

        invited = staff.post(f"/consultations/{consultation}/invitations")
        assert invited.status_code == 201, invited.text
        invitation = invited.json()["token"]
        secrets.append(invitation)
        with httpx.Client(base_url=api, timeout=10) as interpreter:
            came = interpreter.post(
                f"/consultations/{consultation}/interpreter-join?token={invitation}"
            )
            assert came.status_code == 200, came.text
            interpreter_pass = came.json()["participant_token"]
            secrets.append(interpreter_pass)
            eventually(
                lambda: interpreter.get(
                    f"/media/consultations/{consultation}", headers=_bearer(interpreter_pass)
                ).status_code == 200
            )
            left = interpreter.post(
                f"/consultations/{consultation}/leave?token={interpreter_pass}"
            )
            assert left.status_code == 204, left.text
        # A refused token is a secret too (a mistyped or stolen one).
        refused = citizen.get(f"/tickets/{ticket['ticket_id']}/stream?token={citizen_pass}")
        assert refused.status_code == 401
    return [s for s in secrets if s]


def test_no_token_in_any_log(system: SystemProcess, tmp_path: Path) -> None:
    secrets = _visit(system)
    assert len(secrets) >= 7
    system.stop()  # every line written
    logs = [system.log_path, *tmp_path.glob("nats/**/*.log")]
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    assert "http_request" in text  # the logs were on, and requests were logged
    found = [secret[:12] + "…" for secret in secrets if secret in text]
    assert not found, f"secrets in the logs: {found}"
