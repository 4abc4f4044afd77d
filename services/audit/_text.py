"""Strict decoders shared by the note, checkpoint and proof formats."""

from __future__ import annotations

import base64
import binascii

MAX_UINT64 = 2**64 - 1


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_canonical(text: str) -> bytes:
    """Decode standard base64, accepting only the one canonical encoding of the result.

    Raises ValueError for characters outside the alphabet, wrong padding, or non-zero padding
    bits, so that no two distinct strings decode to the same bytes.
    """
    if not text.isascii():
        raise ValueError("base64 text must be ASCII")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None
    if b64encode(data) != text:
        raise ValueError("non-canonical base64")
    return data


def parse_uint64(text: str) -> int:
    """An ASCII decimal in [0, 2**64) with no sign, spaces or leading zeroes ("0" is fine)."""
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"not an ASCII decimal: {text!r}")
    if len(text) > 1 and text[0] == "0":
        raise ValueError(f"leading zero in {text!r}")
    value = int(text)
    if value > MAX_UINT64:
        raise ValueError(f"{text} does not fit in 64 bits")
    return value


def has_control_characters(text: str, *, allow_newline: bool) -> bool:
    """True if ``text`` holds a character below U+0020 (other than a permitted newline)."""
    return any(ch < " " and not (allow_newline and ch == "\n") for ch in text)
