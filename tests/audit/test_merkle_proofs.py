"""Proof generation against the RFC's recursive definitions, caching, and adversarial checks."""

from __future__ import annotations

import random
import time

import pytest

from services.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    InvalidProofError,
    MemoryLeafHashes,
    MemoryNodeCache,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_of,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# --- the RFC 9162 §2.1 definitions, written as literally as possible ------------------------


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = split_point(len(d))
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = split_point(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = split_point(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def hashes(n: int, seed: str = "") -> list[bytes]:
    return [leaf_hash(f"{seed}record {i}".encode()) for i in range(n)]


def tree_of(d: list[bytes], min_cached_level: int = 4) -> MerkleTree:
    return MerkleTree(MemoryLeafHashes(d), min_cached_level=min_cached_level)


MAX_N = 33
LEAVES = hashes(MAX_N)


@pytest.mark.parametrize("min_cached_level", [1, 2, 4])
def test_roots_and_proofs_match_the_definitions(min_cached_level: int) -> None:
    tree = tree_of(LEAVES, min_cached_level=min_cached_level)
    for n in range(MAX_N + 1):
        d = LEAVES[:n]
        assert tree.root(n) == ref_mth(d) == root_of(d)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == ref_path(m, d)
            verify_inclusion(m, n, d[m], proof, ref_mth(d))
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == (ref_subproof(m, d, True) if m < n else [])
            verify_consistency(m, n, ref_mth(d[:m]), ref_mth(d), proof)


def test_compact_range_matches_and_fills_the_cache() -> None:
    cache = MemoryNodeCache()
    compact = CompactRange(on_node=cache.put)
    for n, value in enumerate(LEAVES, start=1):
        compact.append(value)
        assert compact.size == n
        assert compact.root() == ref_mth(LEAVES[:n])
    # 33 leaves hold 16 + 8 + 4 + 2 + 1 perfect subtrees of two or more leaves.
    assert len(cache) == 31
    assert cache.get(5, 0) == ref_mth(LEAVES[:32])
    assert CompactRange().root() == EMPTY_ROOT


def test_partially_warm_cache_gives_the_same_answers() -> None:
    rng = random.Random(3)
    full = MemoryNodeCache()
    compact = CompactRange(on_node=full.put)
    for value in LEAVES:
        compact.append(value)
    for _ in range(20):
        partial = MemoryNodeCache()
        for level in range(1, 6):
            for index in range(MAX_N >> level):
                node = full.get(level, index)
                if node is not None and rng.random() < 0.5:
                    partial.put(level, index, node)
        tree = MerkleTree(MemoryLeafHashes(LEAVES), partial, min_cached_level=rng.randrange(1, 4))
        n = rng.randrange(1, MAX_N + 1)
        m = rng.randrange(n)
        assert tree.inclusion_proof(m, n) == ref_path(m, LEAVES[:n])
        assert tree.consistency_proof(m + 1, n) == (
            ref_subproof(m + 1, LEAVES[:n], True) if m + 1 < n else []
        )
        assert tree.root() == compact.root()


class CountingLeaves(MemoryLeafHashes):
    """Counts leaf reads, to show that a warm cache makes proofs O(log n)."""

    reads = 0

    def get(self, index: int) -> bytes:
        self.reads += 1
        return super().get(index)

    def range(self, start: int, end: int) -> list[bytes]:
        self.reads += end - start
        return list(super().range(start, end))


def test_warm_cache_proofs_read_few_leaves() -> None:
    n = 100_003
    leaves = CountingLeaves(hashes(n))
    cache = MemoryNodeCache()
    compact = CompactRange(on_node=cache.put)
    for value in leaves.range(0, n):
        compact.append(value)
    tree = MerkleTree(leaves, cache, min_cached_level=1)
    leaves.reads = 0
    assert tree.root() == compact.root()
    rng = random.Random(5)
    for _ in range(200):
        index = rng.randrange(n)
        size = rng.randrange(index + 1, n + 1)
        tree.inclusion_proof(index, size)
        tree.consistency_proof(rng.randrange(1, size + 1), size)
    assert leaves.reads <= 200 * 2 * 2 * 17  # a handful of leaf reads per proof at most


def test_million_leaves() -> None:
    """A cold 1,000,000-leaf tree: root, then proofs served from the cache it filled."""
    n = 1_000_000
    leaves = MemoryLeafHashes(leaf_hash(i.to_bytes(8, "big")) for i in range(n))
    tree = MerkleTree(leaves)
    started = time.perf_counter()
    root = tree.root()
    assert root == root_of(leaves.range(0, n))
    rng = random.Random(1)
    for _ in range(1000):
        index = rng.randrange(n)
        verify_inclusion(index, n, leaves.get(index), tree.inclusion_proof(index, n), root)
        size1 = rng.randrange(1, n + 1)
        proof = tree.consistency_proof(size1, n)
        verify_consistency(size1, n, tree.root(size1), root, proof)
    assert time.perf_counter() - started < 30


# --- adversarial: proofs for other positions and trees --------------------------------------


def test_no_inclusion_proof_verifies_for_another_position_or_tree() -> None:
    n_max = 17
    tree = tree_of(LEAVES[:n_max])
    roots = [tree.root(n) for n in range(n_max + 1)]
    for n in range(1, n_max + 1):
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            for n2 in range(1, n_max + 1):
                for m2 in range(n2):
                    leaf2 = LEAVES[m2]
                    if (m2, n2) == (m, n):
                        verify_inclusion(m2, n2, leaf2, proof, roots[n2])
                        continue
                    with pytest.raises(InvalidProofError):
                        verify_inclusion(m2, n2, leaf2, proof, roots[n2])


def test_no_consistency_proof_verifies_for_other_sizes() -> None:
    n_max = 17
    tree = tree_of(LEAVES[:n_max])
    roots = [tree.root(n) for n in range(n_max + 1)]
    for a in range(1, n_max):
        for b in range(a + 1, n_max + 1):
            proof = tree.consistency_proof(a, b)
            for a2 in range(n_max + 1):
                for b2 in range(a2, n_max + 1):
                    if (a2, b2) == (a, b):
                        continue
                    with pytest.raises(InvalidProofError):
                        verify_consistency(a2, b2, roots[a2], roots[b2], proof)


def test_proof_for_another_tree_with_the_same_size_is_refused() -> None:
    ours, theirs = tree_of(hashes(20)), tree_of(hashes(20, seed="forged "))
    with pytest.raises(InvalidProofError):
        verify_inclusion(3, 20, ours.perfect_hash(0, 3), theirs.inclusion_proof(3, 20), ours.root())
    with pytest.raises(InvalidProofError):
        verify_consistency(7, 20, ours.root(7), ours.root(), theirs.consistency_proof(7, 20))


def test_rewritten_history_is_not_consistent() -> None:
    original = hashes(30)
    rewritten = list(original)
    rewritten[4] = leaf_hash(b"tampered")
    old, new = tree_of(original), tree_of(rewritten)
    for size1 in range(5, 30):
        with pytest.raises(InvalidProofError):
            verify_consistency(size1, 30, old.root(size1), new.root(), new.consistency_proof(size1))
    verify_consistency(4, 30, old.root(4), new.root(), new.consistency_proof(4))


@pytest.mark.parametrize(
    "bad",
    [-1, 2**64, True, 1.0, "3", None],
)
def test_non_integer_or_out_of_range_sizes_are_refused(bad: object) -> None:
    leaf = LEAVES[0]
    with pytest.raises(InvalidProofError):
        verify_inclusion(bad, 1, leaf, [], leaf)  # type: ignore[arg-type]
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, bad, leaf, [], leaf)  # type: ignore[arg-type]
    with pytest.raises(InvalidProofError):
        verify_consistency(bad, 1, leaf, leaf, [])  # type: ignore[arg-type]


def test_malformed_proof_containers_are_refused() -> None:
    tree = tree_of(LEAVES[:8])
    proof = tree.inclusion_proof(0, 8)
    root = tree.root()
    for bad in [b"".join(proof), [*proof[:2], proof[2] + b"\x00"], [p[:31] for p in proof]]:
        with pytest.raises(InvalidProofError):
            verify_inclusion(0, 8, LEAVES[0], bad, root)  # type: ignore[arg-type]
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 8, LEAVES[0], [bytearray(p) for p in proof], root)  # type: ignore[misc]
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 2**63, LEAVES[0], [root] * 65, root)


def test_random_bit_flips_are_refused() -> None:
    rng = random.Random(7)
    tree = tree_of(LEAVES)
    for _ in range(300):
        n = rng.randrange(2, MAX_N + 1)
        m = rng.randrange(n)
        proof = tree.inclusion_proof(m, n)
        i, bit = rng.randrange(len(proof)), 1 << rng.randrange(8)
        byte = rng.randrange(32)
        flipped = list(proof)
        flipped[i] = proof[i][:byte] + bytes([proof[i][byte] ^ bit]) + proof[i][byte + 1 :]
        with pytest.raises(InvalidProofError):
            verify_inclusion(m, n, LEAVES[m], flipped, tree.root(n))


def test_generation_refuses_impossible_requests() -> None:
    tree = tree_of(LEAVES[:8])
    for index, size in [(8, 8), (0, 0), (-1, 8), (0, 9)]:
        with pytest.raises(ValueError):
            tree.inclusion_proof(index, size)
    for size1, size2 in [(5, 4), (-1, 8), (1, 9)]:
        with pytest.raises(ValueError):
            tree.consistency_proof(size1, size2)
    assert tree.consistency_proof(0, 8) == []
    with pytest.raises(ValueError):
        MemoryLeafHashes([b"short"])


def test_append_only_property_every_checkpoint_extends_to_the_newest() -> None:
    """After random appends, every earlier (size, root) proves consistent with the newest."""
    rng = random.Random(11)
    leaves = MemoryLeafHashes()
    cache = MemoryNodeCache()
    compact = CompactRange(on_node=cache.put)
    tree = MerkleTree(leaves, cache, min_cached_level=2)
    seen: list[tuple[int, bytes]] = []
    for step in range(40):
        for _ in range(rng.randrange(0, 9)):
            value = leaf_hash(f"event {step} {rng.random()}".encode())
            leaves.append(value)
            compact.append(value)
        assert tree.root() == compact.root()
        seen.append((tree.size, tree.root()))
        for size1, root1 in seen:
            proof = tree.consistency_proof(size1)
            verify_consistency(size1, tree.size, root1, tree.root(), proof)
