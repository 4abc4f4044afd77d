"""Self-contained per-record proofs in the C2SP tlog-proof format."""

from __future__ import annotations

import base64

import pytest

from services.audit.checkpoint import Checkpoint, sign_checkpoint
from services.audit.merkle import MemoryLeafHashes, MerkleTree, leaf_hash
from services.audit.note import SignerKey, sign_note
from services.audit.proofs import (
    HEADER,
    BundleError,
    ProofBundle,
    build_bundle,
    verify_bundle,
)

ORIGIN = "buergerbuero.example/audit"
LOG_KEY = SignerKey.generate(ORIGIN)
LOG = LOG_KEY.verifier()
RECORDS = [f'{{"event":"Knocked","n":{i}}}'.encode() for i in range(23)]


def make_tree(records: list[bytes]) -> MerkleTree:
    return MerkleTree(MemoryLeafHashes(leaf_hash(r) for r in records))


TREE = make_tree(RECORDS)


def signed_checkpoint(tree: MerkleTree, size: int, key: SignerKey = LOG_KEY) -> str:
    return sign_checkpoint(Checkpoint(key.name, size, tree.root(size)), key)


SIGNED = signed_checkpoint(TREE, len(RECORDS))


def bundle_for(index: int, *, with_record: bool = True) -> ProofBundle:
    return build_bundle(TREE, index, SIGNED, RECORDS[index] if with_record else None)


def test_encoding_follows_tlog_proof() -> None:
    bundle = bundle_for(5)
    encoded = bundle.encode()
    lines = encoded.split("\n")
    assert lines[0] == HEADER == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(RECORDS[5]).decode()
    assert lines[2] == "index 5"
    assert [base64.b64decode(x) for x in lines[3 : 3 + len(bundle.proof)]] == list(bundle.proof)
    assert lines[3 + len(bundle.proof)] == ""
    assert encoded.endswith("\n\n" + SIGNED)
    assert ProofBundle.decode(encoded) == bundle
    assert ProofBundle.decode(encoded.encode()) == bundle


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_every_record_verifies_alone(index: int) -> None:
    verified = verify_bundle(bundle_for(index).encode(), LOG)
    assert verified.index == index
    assert verified.record == RECORDS[index]
    assert verified.leaf_hash == leaf_hash(RECORDS[index])
    assert verified.checkpoint.size == len(RECORDS)


def test_bundle_without_record_needs_the_record_or_leaf() -> None:
    bundle = bundle_for(3, with_record=False)
    assert "extra" not in bundle.encode()
    assert verify_bundle(bundle, LOG, record=RECORDS[3]).record == RECORDS[3]
    assert verify_bundle(bundle, LOG, leaf=leaf_hash(RECORDS[3])).record is None
    with pytest.raises(BundleError):
        verify_bundle(bundle, LOG)
    with pytest.raises(BundleError):
        verify_bundle(bundle, LOG, record=RECORDS[4])
    with pytest.raises(BundleError):
        verify_bundle(bundle, LOG, leaf=leaf_hash(RECORDS[4]))
    with pytest.raises(BundleError):
        verify_bundle(bundle, LOG, record=RECORDS[3], leaf=leaf_hash(RECORDS[4]))


def test_other_record_is_refused() -> None:
    bundle = bundle_for(3)
    with pytest.raises(BundleError):
        verify_bundle(bundle, LOG, record=RECORDS[4])
    swapped = ProofBundle(3, bundle.proof, bundle.checkpoint, RECORDS[4])
    with pytest.raises(BundleError):
        verify_bundle(swapped.encode(), LOG)
    changed = ProofBundle(3, bundle.proof, bundle.checkpoint, RECORDS[3].replace(b"3", b"4"))
    with pytest.raises(BundleError):
        verify_bundle(changed, LOG)


@pytest.mark.parametrize("index", [0, 4, 2, 5, 22, 23, 2**64 - 1])
def test_wrong_index_is_refused(index: int) -> None:
    bundle = bundle_for(3)
    with pytest.raises(BundleError):
        verify_bundle(ProofBundle(index, bundle.proof, bundle.checkpoint, bundle.record), LOG)


def test_trailing_or_missing_proof_hashes_are_refused() -> None:
    bundle = bundle_for(6)
    for proof in [bundle.proof[:-1], (*bundle.proof, bundle.proof[-1]), (bytes(32), *bundle.proof)]:
        with pytest.raises(BundleError):
            verify_bundle(ProofBundle(6, proof, bundle.checkpoint, bundle.record), LOG)


def test_proof_for_another_tree_is_refused() -> None:
    forked_records = list(RECORDS)
    forked_records[0] = b'{"event":"Knocked","n":"forged"}'
    forked = make_tree(forked_records)
    forked_signed = signed_checkpoint(forked, len(RECORDS))  # the log signed a fork
    ours = bundle_for(9)
    with pytest.raises(BundleError):
        verify_bundle(ProofBundle(9, ours.proof, forked_signed, ours.record), LOG)
    smaller = signed_checkpoint(TREE, 16)
    with pytest.raises(BundleError):
        verify_bundle(ProofBundle(9, ours.proof, smaller, ours.record), LOG)
    assert verify_bundle(build_bundle(TREE, 9, smaller, RECORDS[9]), LOG).checkpoint.size == 16
    with pytest.raises(BundleError):
        verify_bundle(ProofBundle(17, bundle_for(17).proof, smaller, RECORDS[17]), LOG)


def test_checkpoint_by_another_key_is_refused() -> None:
    impostor = SignerKey.generate(ORIGIN)
    forged = signed_checkpoint(TREE, len(RECORDS), impostor)
    bundle = build_bundle(TREE, 2, forged, RECORDS[2])
    with pytest.raises(BundleError):
        verify_bundle(bundle, LOG)
    assert verify_bundle(bundle, impostor.verifier()).index == 2  # only with the wrong trust


def test_cosigned_checkpoint_is_accepted() -> None:
    text = Checkpoint(ORIGIN, len(RECORDS), TREE.root()).to_text()
    cosigned = sign_note(text, LOG_KEY, SignerKey.generate("witness.example"))
    assert verify_bundle(build_bundle(TREE, 1, cosigned, RECORDS[1]), LOG).index == 1


def test_build_refuses_mismatches() -> None:
    with pytest.raises(BundleError):
        build_bundle(TREE, 1, signed_checkpoint(make_tree(RECORDS[::-1]), 23), RECORDS[1])
    with pytest.raises(BundleError):
        build_bundle(TREE, 1, SIGNED, RECORDS[2])
    with pytest.raises(ValueError):
        build_bundle(TREE, 23, SIGNED, None)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.replace(HEADER, "c2sp.org/tlog-proof@v2"),
        lambda s: s.replace(HEADER + "\n", ""),
        lambda s: s.replace("index 7", "index 07"),
        lambda s: s.replace("index 7", "index +7"),
        lambda s: s.replace("index 7", "index  7"),
        lambda s: s.replace("index 7", "index 7 "),
        lambda s: s.replace("index 7", "Index 7"),
        lambda s: s.replace("index 7\n", ""),
        lambda s: s.replace("extra ", "extra  "),
        lambda s: s.replace("index 7\n", "index 7\n\n"),
        lambda s: s.replace("\n\n", "\n"),
        lambda s: s.replace("\n\n", "\n\n\n"),
        lambda s: s + "trailing garbage\n",
        lambda s: s + "\n",
        lambda s: s[:-1],
        lambda s: s.replace("index 7\n", "index 7\n" + base64.b64encode(bytes(31)).decode() + "\n"),
        lambda s: s.replace("index 7\n", "index 7\nnot base64\n"),
        lambda s: s.replace("index 7\n", "index 7\n" + base64.b64encode(bytes(32)).decode() + "\n"),
        lambda s: s.replace("\nindex 7", "\nindex 7\nextra AAAA"),
    ],
)
def test_malformed_encodings_are_refused(mangle: object) -> None:
    encoded = bundle_for(7).encode()
    mangled = mangle(encoded)  # type: ignore[operator]
    assert mangled != encoded
    with pytest.raises(BundleError):
        verify_bundle(mangled, LOG)


def one_character_edits(text: str) -> list[str]:
    """Every single-character replacement and every single-character deletion of ``text``."""
    edits = []
    for i, ch in enumerate(text):
        edits.append(text[:i] + ("A" if ch != "A" else "B") + text[i + 1 :])
        edits.append(text[:i] + text[i + 1 :])
    return edits


def test_every_changed_or_deleted_character_is_detected() -> None:
    encoded = bundle_for(13).encode()
    for variant in one_character_edits(encoded):
        with pytest.raises(BundleError):
            verify_bundle(variant, LOG)


def test_invalid_utf8_and_huge_proofs_are_refused() -> None:
    with pytest.raises(BundleError):
        verify_bundle(b"\xff" + bundle_for(1).encode().encode(), LOG)
    bundle = bundle_for(1)
    huge = ProofBundle(1, bundle.proof * 20, bundle.checkpoint, bundle.record).encode()
    with pytest.raises(BundleError):
        ProofBundle.decode(huge)


def test_single_record_log_has_an_empty_proof() -> None:
    tree = make_tree(RECORDS[:1])
    bundle = build_bundle(tree, 0, signed_checkpoint(tree, 1), RECORDS[0])
    assert bundle.proof == ()
    assert "\nindex 0\n\n" in bundle.encode()
    assert verify_bundle(bundle.encode(), LOG).record == RECORDS[0]
