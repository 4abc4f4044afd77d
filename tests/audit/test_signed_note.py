"""C2SP signed notes: known answers from Go's sumdb/note and the C2SP spec, and refusals."""

from __future__ import annotations

import pytest

from services.audit.note import (
    InvalidSignatureError,
    KeyFormatError,
    MalformedNoteError,
    NoteError,
    Signature,
    SignerKey,
    UnverifiedNoteError,
    VerifierKey,
    key_id,
    open_note,
    parse_note,
    sign_note,
)

# golang.org/x/mod/sumdb/note note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox"
    "33WWd1RvMc+QQ=\n"
)

# The example of the C2SP signed-note specification ("Verifier keys").
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2"
    "ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

PETER = VerifierKey.parse(PETER_VKEY)
ENOCH = VerifierKey.parse(ENOCH_VKEY)


def test_keys_round_trip_and_match() -> None:
    signer = SignerKey.parse(PETER_SKEY)
    assert signer.encode() == PETER_SKEY
    assert signer.verifier() == PETER
    assert PETER.encode() == PETER_VKEY
    assert PETER.key_id == bytes.fromhex("c74f20a3") == key_id("PeterNeumann", PETER.public_key)
    assert "seed" not in repr(signer) and "AYEK" not in repr(signer)


def test_sign_reproduces_the_go_known_answer() -> None:
    assert sign_note(TEXT, SignerKey.parse(PETER_SKEY)) == TEXT + "\n" + PETER_SIG


def test_open_the_c2sp_spec_example() -> None:
    note = open_note(SPEC_NOTE, [VerifierKey.parse(SPEC_VKEY)])
    assert note.text == "This is an example message.\n"


def test_open_with_one_known_and_one_unknown_key() -> None:
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER])
    assert note.text == TEXT
    assert [s.name for s in note.verified] == ["PeterNeumann"]
    assert [s.name for s in note.unverified] == ["EnochRoot"]
    both = open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [PETER, ENOCH])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]


def test_note_signed_only_by_another_key_is_refused() -> None:
    with pytest.raises(UnverifiedNoteError):
        open_note(TEXT + "\n" + ENOCH_SIG, [PETER])
    with pytest.raises(UnverifiedNoteError):
        open_note(TEXT + "\n" + PETER_SIG, [])


def test_same_name_other_key_is_ignored_not_trusted() -> None:
    impostor = SignerKey.generate("PeterNeumann")
    assert impostor.key_id != PETER.key_id
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note(TEXT, impostor), [PETER])


def test_key_id_matching_but_signature_not_is_refused() -> None:
    impostor = SignerKey.generate("PeterNeumann")
    forged = Signature("PeterNeumann", PETER.key_id, impostor.sign(TEXT.encode()))
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + forged.line(), [PETER])
    # ... even when a valid signature by the same key is also present.
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + PETER_SIG + forged.line(), [PETER])


def test_go_invalid_signature_case() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError):
        open_note(TEXT + "\n" + bad, [PETER])


def test_changed_text_is_refused() -> None:
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT.replace("problem", "pr0blem", 1) + "\n" + PETER_SIG, [PETER])


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG + "\n",
        TEXT + "\n" + PETER_SIG.replace("— ", "- "),
        TEXT + "\n" + PETER_SIG.replace("— ", "—"),
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64
        TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),
        TEXT + "\n" + "— PeterNeumann x08gow==\n",  # a key id and no signature
        TEXT.replace("\n", "\r\n") + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG * (100 + 1),
    ],
)
def test_malformed_notes_are_refused(message: str) -> None:
    with pytest.raises(MalformedNoteError):
        open_note(message, [PETER])


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(MalformedNoteError):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [PETER])


def test_duplicate_signatures_are_reported_once() -> None:
    note = open_note(TEXT + "\n" + PETER_SIG + PETER_SIG, [PETER])
    assert len(note.verified) == 1


def test_ambiguous_verifier_list_is_refused() -> None:
    twin = VerifierKey(ENOCH.name, PETER.public_key)
    object.__setattr__(twin, "key_id", ENOCH.key_id)  # a collision nobody should configure
    with pytest.raises(ValueError, match="share name and id"):
        open_note(TEXT + "\n" + ENOCH_SIG, [ENOCH, twin])


def test_parse_keeps_text_and_signatures() -> None:
    note = parse_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert note.text == TEXT
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    assert note.encode() == TEXT + "\n" + PETER_SIG + ENOCH_SIG


def test_sign_refuses_text_without_final_newline_or_signers() -> None:
    signer = SignerKey.parse(PETER_SKEY)
    with pytest.raises(MalformedNoteError):
        sign_note("abc", signer)
    with pytest.raises(ValueError):
        sign_note(TEXT)


def _mangled(key: str) -> list[str]:
    """Go's TestNewVerifier/TestNewSigner: every proper substring and every byte + 1."""
    variants = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    variants = [v for v in variants if v != key]
    variants += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return variants


def test_mangled_verifier_keys_are_refused() -> None:
    for variant in _mangled(PETER_VKEY):
        with pytest.raises((KeyFormatError, ValueError)):
            VerifierKey.parse(variant)
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(KeyFormatError):
            VerifierKey.parse(bad)


def test_mangled_signer_keys_are_refused() -> None:
    for variant in _mangled(PETER_SKEY):
        with pytest.raises((KeyFormatError, ValueError)):
            SignerKey.parse(variant)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "new\nline", "nbsp\u00a0x"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(KeyFormatError):
        SignerKey(name, bytes(32))


def test_generated_keys_sign_and_verify() -> None:
    signer = SignerKey.generate("buergerbuero.example/audit")
    verifier = VerifierKey.parse(signer.verifier().encode())
    assert SignerKey.parse(signer.encode()) == signer
    note = open_note(sign_note("hello\n", signer), [verifier])
    assert note.text == "hello\n"
    assert not verifier.verify(b"hello\n", b"\x00" * 64)
    assert not verifier.verify(b"hello\n", b"short")
