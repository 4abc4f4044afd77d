"""The whole visit across services, only through NATS: knock → admit → consultation → join."""

from __future__ import annotations

import pytest

from tests.helpers import StaffClient, StreamReader, eventually, knock, open_department


def test_knock_admit_join_end(system_factory) -> None:  # type: ignore[no-untyped-def]
    system = system_factory(env={"BB_LOG_LEVEL": "INFO"})
    citizen = system.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept, display_name="Erika Mustermann", topic="antrag")
    assert ticket["place"] == 1
    assert ticket["expected_wait"]["basis"] == "default_duration"

    own_stream = StreamReader(f"{system.base}{ticket['stream']}?token={ticket['token']}")
    own_stream.wait_for(lambda e, d: e == "status" and d["status"] == "waiting")

    staff = StaffClient(f"{system.base}/api/v1", "anna")
    line_stream = StreamReader(
        f"{system.base}/api/v1/departments/{dept}/queue/stream", cookies=staff.http.cookies
    )
    snapshot = line_stream.wait_for(lambda e, d: e == "snapshot")
    assert [w["display_name"] for w in snapshot["waiting"]] == ["Erika Mustermann"]

    second = knock(citizen, dept, display_name="Hans Meier")
    knocked = line_stream.wait_for(lambda e, d: e == "knocked")
    assert knocked["ticket_id"] == second["ticket_id"]
    assert knocked["display_name"] == "Hans Meier"

    admitted = staff.post(f"/departments/{dept}/queue/admit-next")
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["ticket_id"] == ticket["ticket_id"]

    # rooms opened the consultation on queue's Admitted; the citizen's stream says where
    ready = own_stream.wait_for(lambda e, d: e == "status" and bool(d.get("consultation_id")))
    consultation = ready["consultation_id"]
    line_stream.wait_for(lambda e, d: e == "left" and d["ticket_id"] == ticket["ticket_id"])

    joined = citizen.post(
        f"/consultations/{consultation}/join",
        headers={"Authorization": f"Bearer {ticket['token']}"},
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["role"] == "citizen"
    assert joined.json()["participant_token"]

    staff_joined = staff.post(f"/consultations/{consultation}/join")
    assert staff_joined.status_code == 200, staff_joined.text

    details = staff.get(f"/consultations/{consultation}").json()
    assert sorted(p["role"] for p in details["participants"]) == ["citizen", "staff"]

    ended = staff.post(f"/consultations/{consultation}/end")
    assert ended.status_code == 200 and ended.json()["ended"] is True
    again = citizen.post(
        f"/consultations/{consultation}/join",
        headers={"Authorization": f"Bearer {ticket['token']}"},
    )
    assert again.status_code == 409

    # the second citizen moved up to place 1
    status = eventually(
        lambda: (
            citizen.get(
                f"/tickets/{second['ticket_id']}",
                headers={"Authorization": f"Bearer {second['token']}"},
            ).json()["place"]
            == 1
        )
    )
    assert status
    own_stream.close()
    line_stream.close()

    # Tokens are never written to a log; every line is JSON with service and correlation id.
    log = system.log_path.read_text()
    for secret in (ticket["token"], second["token"], joined.json()["participant_token"]):
        assert secret not in log
    requests = [line for line in log.splitlines() if '"http_request"' in line]
    assert requests and all('"correlation_id"' in r and '"service"' in r for r in requests)


@pytest.mark.postgres
def test_the_same_flow_on_postgres(system_factory, postgres_url) -> None:  # type: ignore[no-untyped-def]
    system = system_factory(env={"BB_DATABASE_URL": postgres_url})
    citizen = system.client()
    dept = open_department(citizen, "demo")
    ticket = knock(citizen, dept, display_name="Erika")
    staff = StaffClient(f"{system.base}/api/v1", "anna")
    assert staff.post(f"/tickets/{ticket['ticket_id']}/admit").status_code == 200
    auth = {"Authorization": f"Bearer {ticket['token']}"}
    consultation = eventually(
        lambda: citizen.get(f"/tickets/{ticket['ticket_id']}", headers=auth).json()[
            "consultation_id"
        ]
    )
    joined = citizen.post(f"/consultations/{consultation}/join", headers=auth)
    assert joined.status_code == 200, joined.text
