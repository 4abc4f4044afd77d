"""RFC 6962 test vectors from transparency-dev/merkle, with their mutated variants.

Values are those of ``testonly/constants.go`` (leaf inputs, node hashes, roots) and
``proof/verify_test.go`` (inclusion and consistency proofs); the mutations mirror
``corruptInclusionProof`` / ``corruptConsistencyProof`` there, which also generated the JSON
cases in ``testdata/inclusion/*`` and ``testdata/consistency/*``. A few of those JSON cases are
pinned verbatim below to show the two agree.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from services.audit.merkle import (
    EMPTY_ROOT,
    InvalidProofError,
    MemoryLeafHashes,
    MerkleTree,
    leaf_hash,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# ROOTS[n] is the root of the first n leaves.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# NODE_HASHES[level][index]: every perfect subtree of the eight leaves.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# (leaf index, tree size, proof): verify_test.go's inclusionProofs[1:], whose leaf numbers
# are one-based; these are testdata/inclusion/0..4.
INCLUSION = [
    (0, 1, []),
    (0, 8, [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (5, 8, [
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
    (2, 3, [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    ]),
    (1, 5, [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
]  # fmt: skip

# (size1, size2, proof): verify_test.go's consistencyProofs = testdata/consistency/0..4.
CONSISTENCY = [
    (1, 1, []),
    (1, 8, [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (6, 8, [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
    (2, 5, [
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
    (6, 7, [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
]  # fmt: skip

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
WRAP = 2**64  # Go's uint64 arithmetic wraps; "index - 1" of 0 is 2**64 - 1 there.


def _tree(size: int = 8) -> MerkleTree:
    return MerkleTree(MemoryLeafHashes(leaf_hash(d) for d in LEAVES[:size]), min_cached_level=1)


# --- roots and node hashes ------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_roots(size: int) -> None:
    assert root_of([leaf_hash(d) for d in LEAVES[:size]]) == ROOTS[size]
    assert _tree(size).root() == ROOTS[size]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert ROOTS[0] == EMPTY_ROOT


def test_node_hashes_of_every_perfect_subtree() -> None:
    tree = _tree()
    for level, hashes in enumerate(NODE_HASHES):
        for index, expected in enumerate(hashes):
            assert tree.perfect_hash(level, index) == expected


def test_root_of_every_size_from_the_full_tree() -> None:
    tree = _tree()
    assert [tree.root(size) for size in range(9)] == ROOTS


# --- inclusion ------------------------------------------------------------------------------


def inclusion_mutations(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> list[tuple[str, tuple[int, int, bytes, list[bytes], bytes]]]:
    """corruptInclusionProof of verify_test.go: every entry must be refused."""
    cases = [
        ("leafIndex - 1", ((index - 1) % WRAP, size, leaf, proof, root)),
        ("leafIndex + 1", (index + 1, size, leaf, proof, root)),
        ("leafIndex ^ 2", (index ^ 2, size, leaf, proof, root)),
        ("treeSize * 2", (index, size * 2, leaf, proof, root)),
        ("treeSize / 2", (index, size // 2, leaf, proof, root)),
        ("wrong leaf", (index, size, b"WrongLeaf", proof, root)),
        ("empty root", (index, size, leaf, proof, EMPTY_ROOT)),
        ("random root", (index, size, leaf, proof, SOME_HASH)),
        ("trailing garbage", (index, size, leaf, [*proof, b""], root)),
        ("trailing root", (index, size, leaf, [*proof, root], root)),
        ("preceding garbage", (index, size, leaf, [b"", *proof], root)),
        ("preceding root", (index, size, leaf, [root, *proof], root)),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        cases.append((f"modified proof[{i}] bit 3", (index, size, leaf, flipped, root)))
    if proof:
        cases.append(("removed component", (index, size, leaf, proof[:-1], root)))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        cases.append(("inserted component", (index, size, leaf, inserted, root)))
    return cases


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vector_verifies(index: int, size: int, proof: list[bytes]) -> None:
    leaf = leaf_hash(LEAVES[index])
    assert root_from_inclusion_proof(index, size, leaf, proof) == ROOTS[size]
    verify_inclusion(index, size, leaf, proof, ROOTS[size])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vector_is_generated(index: int, size: int, proof: list[bytes]) -> None:
    assert _tree().inclusion_proof(index, size) == proof


def _all_inclusion_mutations() -> list[tuple[str, tuple[int, int, bytes, list[bytes], bytes]]]:
    cases = []
    for n, (index, size, proof) in enumerate(INCLUSION):
        root, leaf = ROOTS[size], leaf_hash(LEAVES[index])
        for desc, args in inclusion_mutations(index, size, leaf, proof, root):
            cases.append((f"inclusion/{n}/{desc}", args))
    return cases


@pytest.mark.parametrize(("desc", "args"), _all_inclusion_mutations())
def test_inclusion_mutation_is_refused(
    desc: str, args: tuple[int, int, bytes, list[bytes], bytes]
) -> None:
    with pytest.raises(InvalidProofError):
        verify_inclusion(*args)


def test_inclusion_single_entry() -> None:
    """TestVerifyInclusionSingleEntry: root and leaf hash of a one-entry tree are equal."""
    hashed = leaf_hash(b"data")
    verify_inclusion(0, 1, hashed, [], hashed)
    for leaf, root in [(b"", hashed), (hashed, b""), (b"", b"")]:
        with pytest.raises(InvalidProofError):
            verify_inclusion(0, 1, leaf, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_probes_with_invalid_root_or_leaf(index: int, size: int) -> None:
    """TestVerifyInclusion's probes: an empty leaf or root never verifies."""
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(InvalidProofError):
            verify_inclusion(index, size, leaf, [], root)


# --- consistency ----------------------------------------------------------------------------


def consistency_mutations(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    """corruptConsistencyProof of verify_test.go: every entry must be refused."""
    cases = [
        ("size1 - 1", ((size1 - 1) % WRAP, size2, root1, root2, proof)),
        ("size1 + 1", (size1 + 1, size2, root1, root2, proof)),
        ("size1 ^ 2", (size1 ^ 2, size2, root1, root2, proof)),
        ("size2 * 2", (size1, size2 * 2, root1, root2, proof)),
        ("size2 / 2", (size1, size2 // 2, root1, root2, proof)),
        ("wrong root1", (size1, size2, b"WrongRoot", root2, proof)),
        ("wrong root2", (size1, size2, root1, b"WrongRoot", proof)),
        ("swapped roots", (size1, size2, root2, root1, proof)),
        ("empty proof", (size1, size2, root1, root2, [])),
        ("trailing garbage", (size1, size2, root1, root2, [*proof, b""])),
        ("trailing root1", (size1, size2, root1, root2, [*proof, root1])),
        ("trailing root2", (size1, size2, root1, root2, [*proof, root2])),
        ("preceding garbage", (size1, size2, root1, root2, [b"", *proof])),
        ("preceding root1", (size1, size2, root1, root2, [root1, *proof])),
        ("preceding root2", (size1, size2, root1, root2, [root2, *proof])),
        ("preceding proof[0]", (size1, size2, root1, root2, [proof[0], *proof])),
        ("truncated proof", (size1, size2, root1, root2, proof[:-1])),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 16]) + proof[i][1:]
        cases.append((f"modified proof[{i}] bit 4", (size1, size2, root1, root2, flipped)))
    return cases


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_vector_verifies(size1: int, size2: int, proof: list[bytes]) -> None:
    verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_vector_is_generated(size1: int, size2: int, proof: list[bytes]) -> None:
    assert _tree().consistency_proof(size1, size2) == proof


def _all_consistency_mutations() -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    cases = []
    for n, (size1, size2, proof) in enumerate(CONSISTENCY):
        if not proof:  # as in verify_test.go: only non-trivial proofs are mutated
            continue
        for desc, args in consistency_mutations(size1, size2, ROOTS[size1], ROOTS[size2], proof):
            cases.append((f"consistency/{n}/{desc}", args))
    return cases


@pytest.mark.parametrize(("desc", "args"), _all_consistency_mutations())
def test_consistency_mutation_is_refused(
    desc: str, args: tuple[int, int, bytes, bytes, list[bytes]]
) -> None:
    with pytest.raises(InvalidProofError):
        verify_consistency(*args)


ROOT_A, ROOT_B = SOME_HASH, leaf_hash(b"another root")

# TestVerifyConsistency's table, with its "don't care" roots replaced by real 32-byte hashes.
# Where Go ignores root1 of an empty tree we demand the empty tree's hash (stricter).
CONSISTENCY_TABLE = [
    (0, 0, ROOT_A, ROOT_B, [], True),
    (1, 1, ROOT_A, ROOT_B, [], True),
    (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], False),
    (0, 1, EMPTY_ROOT, ROOT_B, [], False),
    (1, 1, ROOT_B, ROOT_B, [], False),
    (1, 0, ROOT_A, ROOT_B, [], True),
    (2, 1, ROOT_A, ROOT_B, [], True),
    (1, 2, ROOT_A, ROOT_B, [], True),
    (0, 0, EMPTY_ROOT, ROOT_B, [], True),
    (1, 1, EMPTY_ROOT, ROOT_B, [], True),
    (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], True),
    (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], True),
    (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], True),
    (0, 1, ROOT_A, ROOT_B, [], True),  # stricter than Go: root1 of size 0 must be EMPTY_ROOT
]


@pytest.mark.parametrize(("size1", "size2", "root1", "root2", "proof", "fails"), CONSISTENCY_TABLE)
def test_consistency_table(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], fails: bool
) -> None:
    check: Callable[[], None] = lambda: verify_consistency(size1, size2, root1, root2, proof)  # noqa: E731
    if fails:
        with pytest.raises(InvalidProofError):
            check()
    else:
        check()


# --- JSON cases from transparency-dev/merkle testdata, pinned verbatim ----------------------


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_pinned_json_consistency_1_happy_path() -> None:
    # testdata/consistency/1/happy-path.json
    root1 = base64.b64decode("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    root2 = base64.b64decode("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    proof = _b64([
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    ])  # fmt: skip
    assert (root1, root2, proof) == (ROOTS[1], ROOTS[8], CONSISTENCY[1][2])
    verify_consistency(1, 8, root1, root2, proof)


def test_pinned_json_inclusion_1_cases() -> None:
    # testdata/inclusion/1/{happy-path,trailing-garbage,wrong-leaf}.json
    root = base64.b64decode("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    leaf = base64.b64decode("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    proof = _b64([
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    ])  # fmt: skip
    verify_inclusion(0, 8, leaf, proof, root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 8, leaf, [*proof, base64.b64decode("")], root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(0, 8, base64.b64decode("V3JvbmdMZWFm"), proof, root)


def test_pinned_json_inclusion_0_happy_path() -> None:
    # testdata/inclusion/0/happy-path.json: one leaf, "proof": null
    root = base64.b64decode("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    verify_inclusion(0, 1, root, [], root)
