"""Self-contained proofs for single records in the C2SP tlog-proof format.

https://c2sp.org/tlog-proof::

    c2sp.org/tlog-proof@v1
    extra <base64 of the record's canonical bytes>      (optional)
    index <zero-based leaf index>
    <base64 inclusion proof hash, leaf sibling first>  (zero or more)
    <blank line>
    <the signed checkpoint, verbatim>

The spec's opaque ``extra`` line carries the record itself here, so a citizen or DPO who is
handed one record can check it alone with the log's public key. ``extra`` is not trusted as
such: it is only accepted because ``SHA-256(0x00 || record)`` must be the leaf the inclusion
proof leads from, up to the root hash signed in the checkpoint. For a record whose payload
was crypto-shredded, the bundle may omit ``extra`` and the verifier supply the leaf hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.audit._text import b64decode_canonical, b64encode, parse_uint64
from services.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    unverified_checkpoint,
)
from services.audit.merkle import (
    HASH_SIZE,
    MAX_PROOF_LENGTH,
    InvalidProofError,
    MerkleTree,
    leaf_hash,
    verify_inclusion,
)
from services.audit.note import VerifierKey

HEADER = "c2sp.org/tlog-proof@v1"
_EXTRA = "extra "
_INDEX = "index "


class BundleError(ValueError):
    """A proof bundle is malformed or does not prove its record."""


@dataclass(frozen=True)
class ProofBundle:
    """A record's index, inclusion proof and signed checkpoint (and, usually, the record)."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    record: bytes | None = None

    def encode(self) -> str:
        lines = [HEADER]
        if self.record is not None:
            lines.append(_EXTRA + b64encode(self.record))
        lines.append(f"{_INDEX}{self.index}")
        lines.extend(b64encode(h) for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def decode(cls, data: str | bytes) -> ProofBundle:
        """Parse a bundle strictly; the checkpoint is kept verbatim and checked on verify."""
        text = _as_text(data)
        head, sep, checkpoint = text.partition("\n\n")
        if not sep or not checkpoint:
            raise BundleError("no blank line followed by a checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise BundleError(f"the first line must be {HEADER}")
        position = 1
        record = None
        if position < len(lines) and lines[position].startswith(_EXTRA):
            record = _decode(lines[position][len(_EXTRA) :], "extra data")
            position += 1
        if position >= len(lines) or not lines[position].startswith(_INDEX):
            raise BundleError("missing index line")
        index = _parse_index(lines[position][len(_INDEX) :])
        hashes = tuple(_decode_hash(line) for line in lines[position + 1 :])
        if len(hashes) > MAX_PROOF_LENGTH:
            raise BundleError("inclusion proof is too long")
        return cls(index, hashes, checkpoint, record)


@dataclass(frozen=True)
class VerifiedRecord:
    """What a successfully verified bundle proves."""

    index: int
    leaf_hash: bytes
    record: bytes | None
    checkpoint: Checkpoint


class BundleBuilder:
    """Bundles against one signed checkpoint, whose root is checked against the tree once."""

    def __init__(self, tree: MerkleTree, signed_checkpoint: str) -> None:
        checkpoint = unverified_checkpoint(signed_checkpoint)
        if tree.root(checkpoint.size) != checkpoint.root_hash:
            raise BundleError("the checkpoint's root hash is not this tree's")
        self.tree = tree
        self.size = checkpoint.size
        self.signed_checkpoint = signed_checkpoint

    def bundle(self, index: int, record: bytes | None = None) -> ProofBundle:
        """The bundle for leaf ``index``; with ``record``, checked to be that leaf."""
        if record is not None and leaf_hash(record) != self.tree.range_hash(index, index + 1):
            raise BundleError("the record is not the leaf at this index")
        proof = tuple(self.tree.inclusion_proof(index, self.size))
        return ProofBundle(index, proof, self.signed_checkpoint, record)


def build_bundle(
    tree: MerkleTree, index: int, signed_checkpoint: str, record: bytes | None = None
) -> ProofBundle:
    """The bundle for leaf ``index`` against the tree size named in ``signed_checkpoint``."""
    return BundleBuilder(tree, signed_checkpoint).bundle(index, record)


def verify_bundle(
    bundle: ProofBundle | str | bytes,
    verifier: VerifierKey,
    *,
    record: bytes | None = None,
    leaf: bytes | None = None,
    origin: str | None = None,
) -> VerifiedRecord:
    """Check a bundle against the log's verifier key; raise :class:`BundleError` if it fails.

    The leaf is ``SHA-256(0x00 || record)`` for the record in the bundle or the ``record``
    argument (both must agree if given), or else the ``leaf`` hash supplied by the caller.
    """
    if not isinstance(bundle, ProofBundle):
        bundle = ProofBundle.decode(bundle)
    try:
        checkpoint = open_checkpoint(bundle.checkpoint, verifier, origin=origin)
    except CheckpointError as exc:
        raise BundleError(str(exc)) from exc
    known_record, expected_leaf = _resolve_leaf(bundle.record, record, leaf)
    try:
        verify_inclusion(
            bundle.index, checkpoint.size, expected_leaf, bundle.proof, checkpoint.root_hash
        )
    except InvalidProofError as exc:
        raise BundleError(f"record {bundle.index}: {exc}") from exc
    return VerifiedRecord(bundle.index, expected_leaf, known_record, checkpoint)


def _resolve_leaf(
    carried: bytes | None, given: bytes | None, leaf: bytes | None
) -> tuple[bytes | None, bytes]:
    if carried is not None and given is not None and carried != given:
        raise BundleError("the record in the bundle is not the record given")
    known = carried if carried is not None else given
    if known is None:
        if leaf is None:
            raise BundleError("neither a record nor a leaf hash to check")
        return None, leaf
    computed = leaf_hash(known)
    if leaf is not None and leaf != computed:
        raise BundleError("the record does not hash to the leaf hash given")
    return known, computed


def _as_text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError("a proof bundle must be UTF-8") from None
    return data


def _decode(text: str, what: str) -> bytes:
    try:
        return b64decode_canonical(text)
    except ValueError as exc:
        raise BundleError(f"{what}: {exc}") from None


def _decode_hash(line: str) -> bytes:
    value = _decode(line, "inclusion proof hash")
    if len(value) != HASH_SIZE:
        raise BundleError(f"an inclusion proof hash is {HASH_SIZE} bytes")
    return value


def _parse_index(text: str) -> int:
    try:
        return parse_uint64(text)
    except ValueError as exc:
        raise BundleError(f"index: {exc}") from None
