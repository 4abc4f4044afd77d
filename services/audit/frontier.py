"""A fast right frontier for recomputing a log's roots from many leaf hashes at once.

:class:`~services.audit.merkle.CompactRange` appends one leaf at a time; verifying a
million-record export that way spends most of its time in the Python loop. Here whole
aligned runs of leaves are hashed level by level (:func:`~services.audit.merkle.root_of`)
and pushed as one perfect subtree, which halves the interpreter work per leaf.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.audit.merkle import EMPTY_ROOT, frontier_ranges, node_hash, root_of


class Frontier:
    """Perfect subtree roots covering leaves ``[0, size)``, largest first."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        levels = [level for level, _ in frontier_ranges(size)]
        if len(levels) != len(hashes):
            raise ValueError(f"a prefix of {size} leaves has {len(levels)} frontier hashes")
        self.size = size
        self._stack: list[tuple[int, bytes]] = list(zip(levels, hashes, strict=True))

    def hashes(self) -> list[bytes]:
        return [h for _, h in self._stack]

    def push_subtree(self, level: int, value: bytes) -> None:
        """Append a perfect subtree of ``2**level`` leaves starting at ``size`` (aligned)."""
        if self.size % (1 << level):
            raise ValueError("a subtree must start at a multiple of its size")
        self._stack.append((level, value))
        self.size += 1 << level
        stack = self._stack
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (lvl, right), (_, left) = stack.pop(), stack.pop()
            stack.append((lvl + 1, node_hash(left, right)))

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append leaf hashes, in as few perfect subtrees as their alignment allows."""
        position, end = 0, len(leaves)
        while position < end:
            start = self.size
            level = (start & -start).bit_length() - 1 if start else 64
            while (1 << level) > end - position:
                level -= 1
            count = 1 << level
            chunk = leaves[position:position + count]
            self.push_subtree(level, chunk[0] if count == 1 else root_of(chunk))
            position += count

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node

    def copy(self) -> Frontier:
        clone = Frontier()
        clone.size, clone._stack = self.size, list(self._stack)
        return clone
