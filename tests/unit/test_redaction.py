"""What the log redaction removes, on lines as libraries really write them."""

from __future__ import annotations

from services.common.redaction import REDACTED, redact_secrets, redact_text

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVlLWhlcmU"
OPAQUE = "Zk3vR8xQ-2_pL0sWm9TyB4nA"


def test_query_tokens_are_redacted_whatever_they_look_like() -> None:
    line = (
        f'HTTP Request: POST http://127.0.0.1:5/api/v1/consultations/c/join?token={OPAQUE}'
        f'&lang=de "HTTP/1.1 200 OK"'
    )
    redacted = redact_text(line)
    assert OPAQUE not in redacted
    assert f"?token={REDACTED}&lang=de" in redacted
    assert OPAQUE not in redact_text(f"GET /x?a=1&access_token={OPAQUE}")


def test_signed_tokens_anywhere_are_redacted() -> None:
    assert JWT not in redact_text(f"invalid token {JWT} for ticket")
    assert redact_text(f"link=https://x/invite/c#token={JWT}").count(REDACTED) == 1


def test_headers_and_cookies_are_redacted() -> None:
    httpcore = (
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
        f"[(b'set-cookie', b'bb_session={OPAQUE}; HttpOnly; Path=/'), (b'x', b'y')])"
    )
    assert OPAQUE not in redact_text(httpcore)
    assert "(b'x', b'y')" in redact_text(httpcore)  # the rest stays readable
    assert OPAQUE not in redact_text(f"Authorization: Bearer {OPAQUE}")
    assert OPAQUE not in redact_text(f"> Cookie: bb_session={OPAQUE}")
    assert OPAQUE not in redact_text(f"headers={{'authorization': 'Basic {OPAQUE}'}}")


def test_the_processor_redacts_fields_and_leaves_the_rest() -> None:
    event = {
        "event": f"forward_failed url=http://h/x?token={OPAQUE}",
        "token": OPAQUE,
        "headers": {"Cookie": OPAQUE, "accept": "text/html"},
        "route": "/api/v1/tickets/{ticket_id}/stream",
        "status": 200,
    }
    out = redact_secrets(None, "info", dict(event))
    assert OPAQUE not in repr(out)
    assert out["token"] == REDACTED and out["headers"]["Cookie"] == REDACTED
    assert out["headers"]["accept"] == "text/html"
    assert out["route"] == event["route"] and out["status"] == 200
