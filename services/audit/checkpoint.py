"""C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint): signed tree heads of the log.

A checkpoint's note text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` (optionally
followed by extension lines, which this log never writes and verifiers refuse unless asked
to allow them), signed as a C2SP signed note with the log's Ed25519 key. The key name is
the origin.

Also here: fork detection (two checkpoints of one origin and size with different roots),
checking a consistency proof between two checkpoints, and :class:`CheckpointMonitor`, the
client-held "last checkpoint seen" state that demands a consistency proof for each new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.audit._text import (
    MAX_UINT64,
    b64decode_canonical,
    b64encode,
    has_control_characters,
    parse_uint64,
)
from services.audit.merkle import HASH_SIZE, InvalidProofError, verify_consistency
from services.audit.note import (
    NoteError,
    SignerKey,
    VerifierKey,
    open_note,
    parse_note,
    sign_note,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointMonitor",
    "ForkError",
    "find_fork",
    "is_fork",
    "open_checkpoint",
    "sign_checkpoint",
    "unverified_checkpoint",
    "verify_checkpoint_consistency",
]


class CheckpointError(ValueError):
    """A checkpoint is malformed, unsigned, for another log, or inconsistent with another."""


class ForkError(CheckpointError):
    """Two checkpoints of the same log cannot both be true: the log has been forked."""

    def __init__(self, message: str, first: Checkpoint, second: Checkpoint) -> None:
        super().__init__(message)
        self.first = first
        self.second = second


@dataclass(frozen=True)
class Checkpoint:
    """The origin, size and root hash of a log tree (plus extension lines, normally none)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("tree size must be an integer")
        if not 0 <= self.size <= MAX_UINT64:
            raise CheckpointError("tree size must be in [0, 2**64)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash must be {HASH_SIZE} bytes")
        for line in self.extensions:
            _check_line(line, "extension line")

    def to_text(self) -> str:
        """The note text: origin, size and base64 root, one per line, then any extensions."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str, *, allow_extensions: bool = False) -> Checkpoint:
        """Parse a checkpoint's note text strictly (no leading zeroes, canonical base64)."""
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint text needs origin, size and root hash lines")
        if len(lines) > 3 and not allow_extensions:
            raise CheckpointError("unexpected lines after the root hash")
        origin, size_text, root_text, *extensions = lines
        try:
            size = parse_uint64(size_text)
            root = b64decode_canonical(root_text)
        except ValueError as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from None
        return cls(origin, size, root, tuple(extensions))


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise CheckpointError(f"{what} must be a non-empty string")
    if has_control_characters(line, allow_newline=False):
        raise CheckpointError(f"{what} must be one line without control characters")


def sign_checkpoint(checkpoint: Checkpoint, signer: SignerKey) -> str:
    """The signed note for ``checkpoint``; the signer's key name must be the origin."""
    if signer.name != checkpoint.origin:
        raise CheckpointError("the log's key name must match the checkpoint origin")
    return sign_note(checkpoint.to_text(), signer)


def open_checkpoint(
    data: str | bytes,
    verifier: VerifierKey,
    *,
    origin: str | None = None,
    allow_extensions: bool = False,
) -> Checkpoint:
    """Verify a signed checkpoint with the log's key and parse it.

    ``origin`` defaults to the verifier's key name. Signatures by other keys (witnesses) are
    ignored; the note is refused if the log's own signature is missing or does not verify,
    if the text is not a well-formed checkpoint, or if it is for another origin.
    """
    try:
        note = open_note(data, [verifier])
    except NoteError as exc:
        raise CheckpointError(f"checkpoint signature: {exc}") from exc
    checkpoint = Checkpoint.from_text(note.text, allow_extensions=allow_extensions)
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointError(f"checkpoint is for origin {checkpoint.origin!r}, not {expected!r}")
    return checkpoint


def unverified_checkpoint(data: str | bytes, *, allow_extensions: bool = False) -> Checkpoint:
    """Parse a signed checkpoint WITHOUT checking its signature (e.g. to build a proof for it)."""
    try:
        note = parse_note(data)
    except NoteError as exc:
        raise CheckpointError(f"malformed checkpoint note: {exc}") from exc
    return Checkpoint.from_text(note.text, allow_extensions=allow_extensions)


# --- consistency and forks ------------------------------------------------------------------


def is_fork(first: Checkpoint, second: Checkpoint) -> bool:
    """True if both are for one origin and size but differ in root hash (or extensions)."""
    return (
        first.origin == second.origin
        and first.size == second.size
        and (first.root_hash != second.root_hash or first.extensions != second.extensions)
    )


def find_fork(checkpoints: Iterable[Checkpoint]) -> tuple[Checkpoint, Checkpoint] | None:
    """The first pair of checkpoints that fork (see :func:`is_fork`), or None."""
    seen: dict[tuple[str, int], Checkpoint] = {}
    for checkpoint in checkpoints:
        earlier = seen.setdefault((checkpoint.origin, checkpoint.size), checkpoint)
        if is_fork(earlier, checkpoint):
            return earlier, checkpoint
    return None


def verify_checkpoint_consistency(
    older: Checkpoint, newer: Checkpoint, proof: Sequence[bytes]
) -> None:
    """Check that ``newer`` extends ``older`` (RFC 9162 consistency proof between their roots).

    Raises :class:`ForkError` for a same-size pair with different roots, and
    :class:`CheckpointError` for other origins, a shrinking log or a proof that fails.
    """
    if older.origin != newer.origin:
        raise CheckpointError("checkpoints are for different origins")
    if is_fork(older, newer):
        raise ForkError("two checkpoints of the same size differ", older, newer)
    if older.size > newer.size:
        raise CheckpointError(f"log shrank from {older.size} to {newer.size} leaves")
    try:
        verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash, proof)
    except InvalidProofError as exc:
        raise CheckpointError(f"consistency proof failed: {exc}") from exc


class CheckpointMonitor:
    """Remembers the newest verified checkpoint and accepts a new one only with a proof.

    This is the DPO's (or any auditor's) client-held state: each new checkpoint must be signed
    by the log and be proven an extension of the last one seen; otherwise it is refused and the
    remembered checkpoint stays as it was.
    """

    def __init__(
        self,
        verifier: VerifierKey,
        latest: Checkpoint | None = None,
        *,
        origin: str | None = None,
    ) -> None:
        self._verifier = verifier
        self._origin = verifier.name if origin is None else origin
        if latest is not None and latest.origin != self._origin:
            raise CheckpointError("the remembered checkpoint is for another origin")
        self._latest = latest

    @property
    def latest(self) -> Checkpoint | None:
        return self._latest

    def update(self, signed: str | bytes, proof: Sequence[bytes] = ()) -> Checkpoint:
        """Verify ``signed`` and the consistency ``proof`` from the latest checkpoint to it."""
        checkpoint = open_checkpoint(signed, self._verifier, origin=self._origin)
        if self._latest is not None:
            verify_checkpoint_consistency(self._latest, checkpoint, proof)
        elif proof:
            raise CheckpointError("no earlier checkpoint to check a consistency proof against")
        self._latest = checkpoint
        return checkpoint
