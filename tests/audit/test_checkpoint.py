"""C2SP tlog-checkpoints: format, signatures, forgeries, forks and the client-side monitor."""

from __future__ import annotations

import base64

import pytest

from services.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointMonitor,
    ForkError,
    find_fork,
    is_fork,
    open_checkpoint,
    sign_checkpoint,
    unverified_checkpoint,
    verify_checkpoint_consistency,
)
from services.audit.merkle import EMPTY_ROOT, MemoryLeafHashes, MerkleTree, leaf_hash
from services.audit.note import InvalidSignatureError, Signature, SignerKey, sign_note

ORIGIN = "buergerbuero.example/audit"
LOG_KEY = SignerKey.generate(ORIGIN)
LOG = LOG_KEY.verifier()
ROOT8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


def make_tree(n: int, seed: str = "") -> MerkleTree:
    return MerkleTree(MemoryLeafHashes(leaf_hash(f"{seed}{i}".encode()) for i in range(n)))


def checkpoint_of(tree: MerkleTree, size: int | None = None) -> Checkpoint:
    size = tree.size if size is None else size
    return Checkpoint(ORIGIN, size, tree.root(size))


# --- format ---------------------------------------------------------------------------------


def test_body_format() -> None:
    text = Checkpoint("example.com/log42", 8, ROOT8).to_text()
    assert text == "example.com/log42\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert Checkpoint.from_text(text) == Checkpoint("example.com/log42", 8, ROOT8)


def test_signed_form() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    signed = sign_checkpoint(checkpoint, LOG_KEY)
    body, _, sig_line = signed.partition("\n\n")
    assert body + "\n" == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    assert sig_line.startswith(f"— {ORIGIN} ") and sig_line.endswith("\n")
    raw = base64.b64decode(sig_line.split(" ")[2])
    assert raw[:4] == LOG.key_id and len(raw) == 4 + 64
    assert open_checkpoint(signed, LOG) == checkpoint


def test_c2sp_spec_example_parses() -> None:
    example = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
        "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    )
    checkpoint = unverified_checkpoint(example)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    with pytest.raises(CheckpointError):  # not signed by our key
        open_checkpoint(example, LOG, origin="example.com/behind-the-sofa")


ROOT_B64 = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="


@pytest.mark.parametrize(
    "text",
    [
        f"o\n08\n{ROOT_B64}\n",
        f"o\n+8\n{ROOT_B64}\n",
        f"o\n 8\n{ROOT_B64}\n",
        f"o\n8 \n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n0x8\n{ROOT_B64}\n",
        f"o\n\u0668\n{ROOT_B64}\n",  # ARABIC-INDIC DIGIT EIGHT
        f"o\n{2**64}\n{ROOT_B64}\n",
        f"o\n\n{ROOT_B64}\n",
        f"\n8\n{ROOT_B64}\n",
        f"o\n8\n{ROOT_B64}",
        f"o\n8\n{ROOT_B64[:-1]}\n",
        f"o\n8\n{ROOT_B64[:-2]}h=\n",  # non-canonical padding bits
        f"o\n8\n{base64.b64encode(ROOT8[:31]).decode()}\n",
        f"o\n8\n{base64.b64encode(ROOT8 + b'x').decode()}\n",
        f"o\n8\n {ROOT_B64}\n",
        "o\n8\n",
        f"o\n8\n{ROOT_B64}\nextension\n",
        f"o\n8\n{ROOT_B64}\n\n",
    ],
)
def test_malformed_bodies_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_text(text)


def test_extension_lines_only_when_allowed() -> None:
    text = f"o\n8\n{ROOT_B64}\nline one\nline two\n"
    parsed = Checkpoint.from_text(text, allow_extensions=True)
    assert parsed.extensions == ("line one", "line two")
    assert parsed.to_text() == text
    with pytest.raises(CheckpointError):
        Checkpoint.from_text(f"o\n8\n{ROOT_B64}\nline one\n\nline two\n", allow_extensions=True)


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [("", 1, ROOT8), ("a\nb", 1, ROOT8), ("o", -1, ROOT8), ("o", 2**64, ROOT8),
     ("o", True, ROOT8), ("o", 1, ROOT8[:31]), ("o", 1, ROOT8.hex())],
)  # fmt: skip
def test_invalid_checkpoints_cannot_be_built(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root)


# --- signatures and forgeries ---------------------------------------------------------------


def test_signer_name_must_be_the_origin() -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint("other.example/log", 8, ROOT8), LOG_KEY)


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    other = SignerKey.generate("other.example/log")
    signed = sign_checkpoint(Checkpoint("other.example/log", 8, ROOT8), other)
    with pytest.raises(CheckpointError):
        open_checkpoint(signed, LOG)
    with pytest.raises(CheckpointError):
        open_checkpoint(signed, LOG, origin="other.example/log")


def test_forged_checkpoint_under_our_name_is_refused() -> None:
    forger = SignerKey.generate(ORIGIN)  # same name, different key: another key id
    forged = sign_checkpoint(Checkpoint(ORIGIN, 10**6, ROOT8), forger)
    with pytest.raises(CheckpointError):
        open_checkpoint(forged, LOG)


def test_key_id_matching_but_signature_not_is_refused() -> None:
    text = Checkpoint(ORIGIN, 8, ROOT8).to_text()
    forger = SignerKey.generate(ORIGIN)
    line = Signature(ORIGIN, LOG.key_id, forger.sign(text.encode())).line()
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(text + "\n" + line, LOG)
    assert isinstance(caught.value.__cause__, InvalidSignatureError)


def test_signed_text_for_another_origin_is_refused() -> None:
    signed = sign_note(Checkpoint("elsewhere.example/log", 8, ROOT8).to_text(), LOG_KEY)
    with pytest.raises(CheckpointError):
        open_checkpoint(signed, LOG)


def test_signed_text_that_is_not_a_checkpoint_is_refused() -> None:
    with pytest.raises(CheckpointError):
        open_checkpoint(sign_note(f"{ORIGIN}\n8\n", LOG_KEY), LOG)
    with pytest.raises(CheckpointError):
        open_checkpoint(sign_note(f"{ORIGIN}\n8\n{ROOT_B64}\nextra\n", LOG_KEY), LOG)


def test_witness_cosignatures_are_ignored() -> None:
    checkpoint = Checkpoint(ORIGIN, 8, ROOT8)
    witness = SignerKey.generate("witness.example")
    signed = sign_note(checkpoint.to_text(), LOG_KEY, witness)
    assert open_checkpoint(signed, LOG) == checkpoint
    only_witness = sign_note(checkpoint.to_text(), witness)
    with pytest.raises(CheckpointError):
        open_checkpoint(only_witness, LOG)


def one_character_edits(text: str) -> list[str]:
    """Every single-character replacement and every single-character deletion of ``text``."""
    edits = []
    for i, ch in enumerate(text):
        edits.append(text[:i] + ("A" if ch != "A" else "B") + text[i + 1 :])
        edits.append(text[:i] + text[i + 1 :])
    return edits


def test_every_changed_or_deleted_character_is_detected() -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT8), LOG_KEY)
    assert open_checkpoint(signed, LOG).size == 1234
    for variant in one_character_edits(signed):
        with pytest.raises(CheckpointError):
            open_checkpoint(variant, LOG)
    for garbage in ["x", "\n", "— x\n", "extra line\n"]:
        with pytest.raises(CheckpointError):
            open_checkpoint(signed + garbage, LOG)


# --- consistency, forks and the monitor -----------------------------------------------------


def test_fork_of_the_same_size_is_detected() -> None:
    ours, theirs = make_tree(9), make_tree(9, seed="fork ")
    a, b = checkpoint_of(ours), checkpoint_of(theirs)
    assert is_fork(a, b) and not is_fork(a, a)
    assert find_fork([checkpoint_of(ours, 3), a, checkpoint_of(ours, 5), b]) == (a, b)
    assert find_fork([checkpoint_of(ours, n) for n in range(10)]) is None
    with pytest.raises(ForkError) as caught:
        verify_checkpoint_consistency(a, b, [])
    assert (caught.value.first, caught.value.second) == (a, b)


def test_checkpoint_consistency() -> None:
    tree = make_tree(21)
    for size1 in range(22):
        verify_checkpoint_consistency(
            checkpoint_of(tree, size1), checkpoint_of(tree), tree.consistency_proof(size1)
        )
    other = make_tree(21, seed="rewritten ")
    with pytest.raises(CheckpointError):
        verify_checkpoint_consistency(
            checkpoint_of(tree, 7), checkpoint_of(other), other.consistency_proof(7)
        )
    with pytest.raises(CheckpointError):  # shrinking
        verify_checkpoint_consistency(checkpoint_of(tree), checkpoint_of(tree, 7), [])
    with pytest.raises(CheckpointError):  # another log
        verify_checkpoint_consistency(Checkpoint("x", 0, tree.root(0)), checkpoint_of(tree), [])


def test_monitor_follows_a_growing_log() -> None:
    tree = make_tree(50)
    monitor = CheckpointMonitor(LOG)
    assert monitor.latest is None
    previous = 0
    for size in [1, 2, 7, 8, 8, 9, 31, 32, 33, 50]:
        signed = sign_checkpoint(checkpoint_of(tree, size), LOG_KEY)
        proof: list[bytes] = tree.consistency_proof(previous, size) if monitor.latest else []
        assert monitor.update(signed, proof).size == size
        previous = size
    assert monitor.latest == checkpoint_of(tree)


def signed_of(tree: MerkleTree, size: int | None = None) -> str:
    return sign_checkpoint(checkpoint_of(tree, size), LOG_KEY)


def test_monitor_refuses_forks_rollbacks_and_bad_proofs() -> None:
    tree, forked = make_tree(40), make_tree(40, seed="fork ")
    monitor = CheckpointMonitor(LOG, checkpoint_of(tree, 20))
    kept = monitor.latest
    with pytest.raises(ForkError):
        monitor.update(sign_checkpoint(checkpoint_of(forked, 20), LOG_KEY))
    with pytest.raises(CheckpointError):
        monitor.update(sign_checkpoint(checkpoint_of(tree, 19), LOG_KEY))
    with pytest.raises(CheckpointError):
        monitor.update(signed_of(forked), forked.consistency_proof(20))
    with pytest.raises(CheckpointError):
        monitor.update(sign_checkpoint(checkpoint_of(tree), LOG_KEY), tree.consistency_proof(21))
    with pytest.raises(CheckpointError):
        monitor.update(sign_checkpoint(checkpoint_of(tree), SignerKey.generate(ORIGIN)), [])
    assert monitor.latest == kept
    monitor.update(sign_checkpoint(checkpoint_of(tree), LOG_KEY), tree.consistency_proof(20))
    assert monitor.latest == checkpoint_of(tree)


def test_monitor_refuses_a_proof_without_a_starting_point_and_foreign_state() -> None:
    tree = make_tree(4)
    with pytest.raises(CheckpointError):
        CheckpointMonitor(LOG).update(sign_checkpoint(checkpoint_of(tree), LOG_KEY), [ROOT8])
    with pytest.raises(CheckpointError):
        CheckpointMonitor(LOG, Checkpoint("x", 0, tree.root(0)))
