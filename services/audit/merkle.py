"""RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and strict verification.

Leaves are hashed as ``SHA-256(0x00 || data)``, inner nodes as ``SHA-256(0x01 || left || right)``,
and the empty tree's hash is ``SHA-256("")`` (RFC 9162 §2.1.1).

Proof generation reads leaf hashes from a :class:`LeafHashSource` and the hashes of *perfect*
subtrees (``2**level`` leaves starting at a multiple of ``2**level``) from an optional
:class:`NodeCache`. A perfect subtree never changes once its last leaf is appended, so a cache
filled by :class:`CompactRange` while appending (or lazily, by :class:`MerkleTree` itself) stays
valid for every later tree size; with it a proof costs O(log n) hash look-ups.

Verification (RFC 9162 §2.1.3.2 and §2.1.4.2) is strict: every hash must be exactly 32 bytes,
sizes and indices must be integers in ``[0, 2**64)``, and a proof that is too short, too long or
computed for another position or tree is refused with :class:`InvalidProofError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

HASH_SIZE = 32
MAX_SIZE = 2**64 - 1
MAX_PROOF_LENGTH = 64
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


class InvalidProofError(ValueError):
    """A proof, or the sizes, indices and hashes it is checked against, does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf: ``SHA-256(0x00 || data)``."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an inner node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n >= 2``): the left subtree's size."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, computed bottom-up level by level."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [
            _sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --- storage abstractions -------------------------------------------------------------------


class LeafHashSource(Protocol):
    """Read access to the leaf hashes of an append-only log, indexed from 0."""

    def __len__(self) -> int: ...

    def get(self, index: int) -> bytes: ...

    def range(self, start: int, end: int) -> Sequence[bytes]: ...


class NodeCache(Protocol):
    """Hashes of perfect subtrees keyed by (level, index); ``get`` returns None when unknown."""

    def get(self, level: int, index: int) -> bytes | None: ...

    def put(self, level: int, index: int, value: bytes) -> None: ...


class MemoryLeafHashes:
    """An in-memory :class:`LeafHashSource` that can be appended to."""

    def __init__(self, hashes: Iterable[bytes] = ()) -> None:
        self._hashes: list[bytes] = []
        self.extend(hashes)

    def __len__(self) -> int:
        return len(self._hashes)

    def get(self, index: int) -> bytes:
        if not 0 <= index < len(self._hashes):
            raise IndexError(index)
        return self._hashes[index]

    def range(self, start: int, end: int) -> Sequence[bytes]:
        if not 0 <= start <= end <= len(self._hashes):
            raise IndexError((start, end))
        return self._hashes[start:end]

    def append(self, value: bytes) -> None:
        _require_stored_hash(value)
        self._hashes.append(value)

    def extend(self, values: Iterable[bytes]) -> None:
        for value in values:
            self.append(value)


class MemoryNodeCache:
    """An in-memory :class:`NodeCache`."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, level: int, index: int) -> bytes | None:
        return self._nodes.get((level, index))

    def put(self, level: int, index: int, value: bytes) -> None:
        self._nodes[(level, index)] = value


class CompactRange:
    """The right frontier of a growing tree: appends in amortised O(1), root in O(log n).

    ``on_node(level, index, hash)`` is called for every perfect subtree of two or more leaves
    as it becomes complete, which is how a :class:`NodeCache` is filled while ingesting.
    """

    def __init__(self, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        self._size = 0
        self._frontier: list[bytes] = []  # perfect subtree roots, largest (leftmost) first
        self._on_node = on_node

    @classmethod
    def resume(
        cls,
        size: int,
        frontier: Sequence[bytes],
        on_node: Callable[[int, int, bytes], None] | None = None,
    ) -> CompactRange:
        """Continue a tree of ``size`` leaves from the hashes of :func:`frontier_ranges`."""
        if len(frontier) != len(frontier_ranges(size)):
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} frontier hashes")
        compact = cls(on_node)
        for value in frontier:
            _require_stored_hash(value)
        compact._size = size
        compact._frontier = list(frontier)
        return compact

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        """The perfect subtree roots of :func:`frontier_ranges`, largest first."""
        return list(self._frontier)

    def append(self, value: bytes) -> None:
        _require_stored_hash(value)
        node, index, level = value, self._size, 0
        while index & 1:
            node = node_hash(self._frontier.pop(), node)
            index >>= 1
            level += 1
            if self._on_node is not None:
                self._on_node(level, index, node)
        self._frontier.append(node)
        self._size += 1

    def root(self) -> bytes:
        if not self._frontier:
            return EMPTY_ROOT
        node = self._frontier[-1]
        for left in reversed(self._frontier[:-1]):
            node = node_hash(left, node)
        return node


def frontier_ranges(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up ``size`` leaves, largest first."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ranges.append((level, start >> level))
            start += 1 << level
    return ranges


# --- proof generation -----------------------------------------------------------------------


class MerkleTree:
    """Roots and proofs over the first ``len(leaves)`` leaf hashes of an append-only log.

    Perfect subtrees of ``2**min_cached_level`` leaves or more are looked up in (and, on a
    miss, written to) ``cache``; smaller ones are hashed from one ``leaves.range`` read.
    """

    def __init__(
        self,
        leaves: LeafHashSource,
        cache: NodeCache | None = None,
        *,
        min_cached_level: int = 4,
    ) -> None:
        if min_cached_level < 1:
            raise ValueError("min_cached_level must be at least 1")
        self._leaves = leaves
        self._cache: NodeCache = cache if cache is not None else MemoryNodeCache()
        self._min_cached_level = min_cached_level

    @property
    def size(self) -> int:
        return len(self._leaves)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them)."""
        size = self._checked_size(size)
        return EMPTY_ROOT if size == 0 else self.range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, from the leaf's sibling upwards."""
        size = self._checked_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is not in a tree of size {size}")
        return [self.range_hash(start, end) for start, end in inclusion_ranges(index, size)]

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1 (empty if size1 is 0 or size2)."""
        size2 = self._checked_size(size2)
        if not 0 <= size1 <= size2:
            raise ValueError(f"no consistency proof from size {size1} to size {size2}")
        return [self.range_hash(start, end) for start, end in consistency_ranges(size1, size2)]

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a non-empty range of existing leaves."""
        if not 0 <= start < end <= len(self._leaves):
            raise ValueError(f"range [{start}, {end}) is empty or beyond the tree")
        return self._range_hash(start, end)

    def perfect_hash(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of leaves ``[index << level, (index + 1) << level)``."""
        if level == 0:
            return self._leaves.get(index)
        if level < self._min_cached_level:
            return root_of(self._leaves.range(index << level, (index + 1) << level))
        cached = self._cache.get(level, index)
        if cached is not None:
            return cached
        left, right = self._cached_children(level, index)
        if left is None or right is None:
            return self._fill(level, index)
        value = node_hash(left, right)
        self._cache.put(level, index, value)
        return value

    def _cached_children(self, level: int, index: int) -> tuple[bytes | None, bytes | None]:
        if level - 1 < self._min_cached_level:
            return None, None
        return self._cache.get(level - 1, 2 * index), self._cache.get(level - 1, 2 * index + 1)

    def _fill(self, level: int, index: int) -> bytes:
        """Hash a perfect subtree bottom-up from its leaves, caching nodes on cached levels."""
        nodes = list(self._leaves.range(index << level, (index + 1) << level))
        for height in range(1, level + 1):
            pairs = zip(nodes[0::2], nodes[1::2], strict=True)
            nodes = [node_hash(left, right) for left, right in pairs]
            if height >= self._min_cached_level:
                first = index << (level - height)
                for offset, value in enumerate(nodes):
                    self._cache.put(height, first + offset, value)
        return nodes[0]

    def _range_hash(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect_hash(n.bit_length() - 1, start // n)
        k = split_point(n)
        return node_hash(self._range_hash(start, start + k), self._range_hash(start + k, end))

    def _checked_size(self, size: int | None) -> int:
        if size is None:
            return len(self._leaves)
        if not 0 <= size <= len(self._leaves):
            raise ValueError(f"tree size {size} exceeds the log's {len(self._leaves)} leaves")
        return size


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PATH(index, D[0:size]), leaf sibling first."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + split_point(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PROOF(size1, D[0:size2]) (RFC 9162 SUBPROOF)."""
    ranges: list[tuple[int, int]] = []
    if size1 == 0 or size1 == size2:
        return ranges
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


# --- verification ---------------------------------------------------------------------------


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-5, without the root)."""
    _require_size(size, "tree size")
    _require_size(index, "leaf index")
    _require_hash(leaf, "leaf hash")
    _require_proof(proof)
    if index >= size:
        raise InvalidProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise InvalidProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`InvalidProofError` unless ``proof`` shows ``leaf`` at ``index`` in ``root``."""
    _require_hash(root, "root hash")
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise InvalidProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`InvalidProofError` unless tree ``size2``/``root2`` extends ``size1``/``root1``.

    Follows RFC 9162 §2.1.4.2. For ``size1 == size2`` the proof must be empty and the roots equal;
    for ``size1 == 0`` the proof must be empty and ``root1`` the empty tree's hash.
    """
    _require_size(size1, "first tree size")
    _require_size(size2, "second tree size")
    _require_hash(root1, "first root hash")
    _require_hash(root2, "second root hash")
    _require_proof(proof)
    if size1 > size2:
        raise InvalidProofError(f"first tree size {size1} exceeds second tree size {size2}")
    if size1 == 0 and root1 != EMPTY_ROOT:
        raise InvalidProofError("the root hash of an empty tree must be SHA-256 of nothing")
    if size1 == 0 or size1 == size2:
        if proof:
            raise InvalidProofError("consistency proof must be empty for these sizes")
        if size1 == size2 and root1 != root2:
            raise InvalidProofError("trees of the same size have different root hashes")
        return
    if not proof:
        raise InvalidProofError("consistency proof is empty")
    fr, sr = _consistency_roots(size1, size2, root1, proof)
    if fr != root1:
        raise InvalidProofError("consistency proof does not lead to the first root hash")
    if sr != root2:
        raise InvalidProofError("consistency proof does not lead to the second root hash")


def _consistency_roots(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("consistency proof is too short")
    return fr, sr


def _require_stored_hash(value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes")


def _require_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise InvalidProofError(f"{what} must be an integer in [0, 2**64): {value!r}")


def _require_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise InvalidProofError(f"{what} must be {HASH_SIZE} bytes")


def _require_proof(proof: Sequence[bytes]) -> None:
    if isinstance(proof, bytes | str) or len(proof) > MAX_PROOF_LENGTH:
        raise InvalidProofError("proof must be a sequence of at most 64 hashes")
    for element in proof:
        _require_hash(element, "proof hash")
