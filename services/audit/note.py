"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

Wire-compatible with Go's ``golang.org/x/mod/sumdb/note``: verifier keys are written
``<name>+<hex key id>+<base64(0x01 || public key)>``, signer keys
``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``, and a signed note is the text
(ending in a newline), a blank line, and one line ``— <name> <base64(key id || signature)>``
per signature. The key id is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.

:func:`open_note` is the only way to get a note's text that has been checked: it ignores
signatures from unknown keys, refuses the note if a known key's signature does not verify,
and refuses it if no known key signed it at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit._text import b64decode_canonical, b64encode, has_control_characters

SIGNATURE_TYPE_ED25519 = 0x01
MAX_SIGNATURES = 100  # the spec asks for at least 16; Go's implementation allows 100
_SIG_PREFIX = "— "  # em dash U+2014, space
_KEY_LEN = 32
_SIG_LEN = 64


class NoteError(ValueError):
    """A note could not be accepted."""


class MalformedNoteError(NoteError):
    """The note does not follow the signed-note syntax."""


class UnverifiedNoteError(NoteError):
    """No signature from a known key is on the note."""


class InvalidSignatureError(NoteError):
    """A signature from a known key (name and key id match) does not verify."""


class KeyFormatError(ValueError):
    """A verifier or signer key string is malformed or inconsistent."""


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode spaces, no ``+``, no control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and not has_control_characters(name, allow_newline=False)
    )


def key_id(name: str, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` for an Ed25519 key."""
    material = name.encode("utf-8") + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key
    return hashlib.sha256(material).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyFormatError(f"invalid key name {self.name!r}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _KEY_LEN:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "key_id", key_id(self.name, self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("a verifier key has three '+'-separated parts")
        name, hex_id, key_b64 = parts
        public_key = _decode_typed_key(key_b64)
        key = cls(name, public_key)
        _check_hex_id(hex_id, key.key_id)
        return key

    def encode(self) -> str:
        typed = bytes([SIGNATURE_TYPE_ED25519]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{b64encode(typed)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _SIG_LEN:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """A named Ed25519 private key (its 32-byte seed) that signs notes."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyFormatError(f"invalid key name {self.name!r}")
        if not isinstance(self.seed, bytes) or len(self.seed) != _KEY_LEN:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")

    @classmethod
    def generate(cls, name: str) -> SignerKey:
        private = Ed25519PrivateKey.generate()
        return cls(name, private.private_bytes_raw())

    @classmethod
    def parse(cls, skey: str) -> SignerKey:
        """Parse ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise KeyFormatError("a signer key reads PRIVATE+KEY+<name>+<id>+<key>")
        key = cls(parts[2], _decode_typed_key(parts[4]))
        _check_hex_id(parts[3], key.verifier().key_id)
        return key

    def encode(self) -> str:
        typed = bytes([SIGNATURE_TYPE_ED25519]) + self.seed
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{b64encode(typed)}"

    @property
    def key_id(self) -> bytes:
        return self.verifier().key_id

    def verifier(self) -> VerifierKey:
        public = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, public)

    def sign(self, message: bytes) -> bytes:
        return self._private().sign(message)

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)


def _decode_typed_key(key_b64: str) -> bytes:
    try:
        typed = b64decode_canonical(key_b64)
    except ValueError as exc:
        raise KeyFormatError(str(exc)) from None
    if len(typed) != 1 + _KEY_LEN or typed[0] != SIGNATURE_TYPE_ED25519:
        raise KeyFormatError("only 32-byte Ed25519 keys (type 0x01) are supported")
    return typed[1:]


def _check_hex_id(hex_id: str, expected: bytes) -> None:
    if hex_id != expected.hex():
        raise KeyFormatError("key id does not match the key name and public key")


# --- notes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note. ``text`` is NOT authenticated unless it came from :func:`open_note`."""

    text: str
    signatures: tuple[Signature, ...]

    def encode(self) -> str:
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)


@dataclass(frozen=True)
class VerifiedNote:
    """A note's text with the signatures that verified and those from unknown keys."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def sign_note(text: str, *signers: SignerKey) -> str:
    """The signed note for ``text`` (which must end in a newline) with one line per signer."""
    _check_text(text)
    message = text.encode("utf-8")
    sigs = [Signature(s.name, s.key_id, s.sign(message)) for s in signers]
    if not sigs:
        raise ValueError("a note needs at least one signer")
    return Note(text, tuple(sigs)).encode()


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking only its syntax."""
    data = _as_text(data)
    split = data.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line before the signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("the signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def open_note(data: str | bytes, verifiers: Iterable[VerifierKey]) -> VerifiedNote:
    """Parse a note and check it against the known ``verifiers`` (C2SP signed-note rules)."""
    note = parse_note(data)
    known = _verifier_map(verifiers)
    message = note.text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.append(sig)
        elif not verifier.verify(message, sig.signature):
            raise InvalidSignatureError(f"bad signature by {sig.name}+{sig.key_id.hex()}")
        elif sig not in verified:
            verified.append(sig)
    if not verified:
        raise UnverifiedNoteError("the note carries no signature from a known key")
    return VerifiedNote(note.text, tuple(verified), tuple(unverified))


def _verifier_map(verifiers: Iterable[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other.public_key != v.public_key:
            raise ValueError(f"two verifier keys share name and id {v.name}+{v.key_id.hex()}")
    return known


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError("a signature line starts with an em dash and a space")
    name, sep, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not is_valid_key_name(name):
        raise MalformedNoteError("malformed key name in a signature line")
    try:
        raw = b64decode_canonical(sig_b64)
    except ValueError as exc:
        raise MalformedNoteError(f"signature is not canonical base64: {exc}") from None
    if len(raw) < 5:
        raise MalformedNoteError("a signature holds a 4-byte key id and at least one byte")
    return Signature(name, raw[:4], raw[4:])


def _as_text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNoteError("a note must be valid UTF-8") from None
    _check_text(data, what="note")
    return data


def _check_text(text: str, *, what: str = "note text") -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedNoteError(f"the {what} is not valid Unicode") from None
    if has_control_characters(text, allow_newline=True):
        raise MalformedNoteError(f"the {what} holds control characters")
    if not text.endswith("\n"):
        raise MalformedNoteError(f"the {what} must end with a newline")
