"""Secrets out of every log line: tokens, the Authorization header, cookies.

Our own request line names the route template only, never the path or the query; but
libraries log what they see (httpx logs every URL the forwarder passes on, ``?token=``
included; httpcore and websockets log headers at DEBUG), and an exception's text may
quote a URL. So every line, ours and theirs, passes ``redact_secrets`` last before it is
rendered: whatever looks like a token is replaced by ``[redacted]``.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

REDACTED = "[redacted]"

# Fields whose whole value is secret, whatever it looks like.
SECRET_FIELDS = frozenset({
    "token", "access_token", "authorization", "cookie", "cookies", "set-cookie", "set_cookie",
    "csrf", "csrf_token", "password", "secret", "participant_token", "session",
})
# A cheap first look: a line without any of these carries no secret we know of.
_MAYBE = re.compile(r"eyJ|token|bearer|cookie|session|csrf|authorization", re.IGNORECASE)
_PATTERNS = [
    # Signed tokens (JWS: base64url of '{"' ...), wherever they stand.
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}"), REDACTED),
    # Query or form parameters named like a token: ?token=…, &csrf_token=…
    (re.compile(r"(?i)(\b[\w-]*token=)[^&\s'\"#;,)]+"), rf"\1{REDACTED}"),
    # Authorization: Bearer …, Basic …
    (re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*b?['\"]?)[^'\"\n,)]+"), rf"\1{REDACTED}"),
    # Cookie and Set-Cookie headers, as text or as httpcore's byte tuples.
    (re.compile(r"(?i)((?:set-)?cookie['\"]?\s*[:=,]\s*b?['\"]?)[^'\"\n]+"), rf"\1{REDACTED}"),
    # A session cookie or CSRF value named anywhere else: bb_session=…, csrf=…
    (re.compile(r"(?i)(\b[\w-]*(?:session|csrf)[\w-]*=)[^;&\s'\"]+"), rf"\1{REDACTED}"),
]


def redact_text(text: str) -> str:
    if not _MAYBE.search(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_FIELDS else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    if isinstance(value, bytes):
        return redact_text(value.decode("latin-1"))
    return value


def redact_secrets(
    _: structlog.types.WrappedLogger, __: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """A structlog processor: runs last before rendering, on our lines and libraries'."""
    for key, value in event.items():
        if key.startswith("_"):  # the stdlib record itself, rendered by no one
            continue
        if key.lower() in SECRET_FIELDS:
            event[key] = REDACTED
        elif not isinstance(value, int | float | bool) and value is not None:
            event[key] = _redact(value)
    return event
