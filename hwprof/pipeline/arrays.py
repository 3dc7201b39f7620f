"""numpy building blocks of the pipeline (and of the report): uniques with inverses, row uniques, prefix trees.

Why hand-written: numpy's np.unique(return_inverse=True) uses a stable argsort and its axis=0 path sorts rows as
opaque bytes; on tens of millions of callchain entries both are several times slower than what is below.
"""

from __future__ import annotations

import numpy as np


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True) for 1-D integers, without the stable argsort numpy uses for the
    inverse (slow on tens of millions of callchain entries): an unstable sort, then the index of each value, by
    a collision-free hash table when there are few distinct values (millions of entries, hundreds of addresses:
    a binary search per entry costs several times more), else by a binary search."""
    uniq = sorted_unique(values)
    table = _perfect_hash(uniq) if len(values) > 4 * len(uniq) else None
    if table is not None:
        multiplier, shift, slots = table
        return uniq, slots[_hash(values, multiplier, shift)].astype(np.int64)
    return uniq, np.searchsorted(uniq, values).astype(np.int64)


_HASH_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9)


def _hash(values: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Multiplicative (Fibonacci) hashing: the top bits of value * odd constant, wrapping mod 2**64."""
    return (values.astype(np.uint64, copy=False) * np.uint64(multiplier)) >> np.uint64(shift)


def _perfect_hash(uniq: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """(multiplier, shift, slot -> index) that maps each of `uniq` to its own slot, or None when none of a few
    tries is collision-free or the table would be large (more than 2**22 slots)."""
    k = len(uniq)
    if k == 0:
        return None
    bits = max(8, int(k * k).bit_length() + 1)
    if bits > 22:
        return None
    for multiplier in _HASH_MULTIPLIERS:
        slot = _hash(uniq, multiplier, 64 - bits)
        if len(sorted_unique(slot)) == k:
            slots = np.zeros(1 << bits, dtype=np.int32)
            slots[slot.astype(np.int64)] = np.arange(k, dtype=np.int32)
            return multiplier, 64 - bits, slots
    return None


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values, sorted: a sort and a neighbour compare (numpy 2's hash-based np.unique is several times
    slower on large integer arrays)."""
    ordered = np.sort(values, kind="quicksort")
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(matrix, axis=0, return_inverse=True), sorted the same way, but with a lexsort of the columns:
    numpy's axis=0 path sorts rows as opaque bytes and is an order of magnitude slower on big inputs."""
    n = len(matrix)
    if n == 0:
        return matrix[:0], np.zeros(0, dtype=np.int64)
    order = np.lexsort(matrix.T[::-1])
    sorted_rows = matrix[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1)
    group = np.cumsum(new) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    return sorted_rows[new], inverse


def ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] for counts c: the position of each element inside its group."""
    if not len(counts):
        return np.zeros(0, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def prefix_tree(frames: np.ndarray, start: np.ndarray, length: np.ndarray,
                builder_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack table (frame, parent) for rows of leaf-first frame ids, built level by level from the root.

    Row r's frames are `frames[start[r]:start[r] + length[r]]`, leaf first. Identical prefixes share nodes: at each
    depth, (parent node, frame) pairs are made unique with numpy, so the cost is a sort per level, not a dict
    lookup per frame. Parents always get smaller ids than their children, and the nodes of a level are numbered
    in (parent, frame) order. The rows are kept ordered by their node, so each level's keys arrive sorted but for
    rows that share a parent: a stable (run-detecting) argsort of nearly sorted keys is several times cheaper
    than sorting them from scratch and binary-searching each back. Each row's position in `frames` moves one
    entry per level, so a row's consecutive levels share cache lines (no transposed copy of the frames).
    Returns (stack_frame, stack_parent, leaf node per row or -1 for an empty row).
    """
    n_rows = len(length)
    leaf = np.full(n_rows, -1, dtype=np.int64)
    # At most one node per frame: written in place, only the pages of the nodes made are ever touched.
    most = int(length.sum())
    out_frame = np.empty(most, dtype=np.int32)
    out_parent = np.empty(most, dtype=np.int32)
    total = 0
    depth = int(length.max()) if n_rows else 0
    order = np.nonzero(length > 0)[0]  # rows still going deeper, ordered by their current node
    node = np.full(len(order), -1, dtype=np.int64)  # their current node (the parent of the next level)
    remaining = length[order]
    at = start[order] + remaining - 1  # where each row's frame of the current level is: its root first
    for d in range(depth):
        if d:
            going = remaining > d
            if not going.all():
                leaf[order[~going]] = node[~going]  # rows that end at the previous level
                order, node, remaining, at = order[going], node[going], remaining[going], at[going]
            at -= 1
        key = (node + 1) * builder_frames + frames[at]
        perm = np.argsort(key, kind="stable")
        key = key[perm]
        new = np.empty(len(key), dtype=bool)
        new[:1] = True
        np.not_equal(key[1:], key[:-1], out=new[1:])
        uniq = key[new]
        made = len(uniq)
        out_frame[total:total + made] = uniq % builder_frames
        out_parent[total:total + made] = uniq // builder_frames - 1
        node = total + np.cumsum(new) - 1
        order, remaining, at = order[perm], remaining[perm], at[perm]
        total += made
    leaf[order] = node
    return out_frame[:total], out_parent[:total], leaf


class KeyIndex:
    """A growing map of uint64 keys to int32 values, looked up for whole arrays at once: the decoder's table of
    distinct callchain values and the stack resolution's (address, space) pairs. An open-addressing hash table
    (multiplicative hash, linear probing, at most a quarter full), probed with numpy: every key is looked up in
    its home slot in one pass, and only the few whose slot holds another key probe on. No sort of the looked-up
    keys, and no binary search (several times slower once there are more than a few hundred keys)."""

    _MULTIPLIER = 0x9E3779B97F4A7C15

    def __init__(self) -> None:
        self._bits = 0
        self._keys = np.zeros(0, dtype=np.uint64)   # slot -> key
        self._values = np.zeros(0, dtype=np.int32)  # slot -> value, -1 when the slot is empty
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return _hash(keys, self._MULTIPLIER, 64 - self._bits).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The value of each key, -1 where it is not in the index (int64)."""
        keys = keys.astype(np.uint64, copy=False)
        if not self._size:
            return np.full(len(keys), -1, dtype=np.int64)
        slot = self._home(keys)
        value = self._values[slot]
        found = self._keys[slot] == keys
        out = np.where(found, value, -1).astype(np.int64)
        pending = np.nonzero(~found & (value >= 0))[0]  # their home slot holds another key: probe on
        slot = slot[pending]
        mask = (1 << self._bits) - 1
        while len(pending):
            slot = (slot + 1) & mask
            value = self._values[slot]
            found = (self._keys[slot] == keys[pending]) & (value >= 0)
            out[pending[found]] = value[found]
            keep = ~found & (value >= 0)
            pending, slot = pending[keep], slot[keep]
        return out

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add keys (distinct, none of them present yet) with their values."""
        if 4 * (self._size + len(keys)) > (1 << self._bits):
            old = self._values >= 0
            old_keys, old_values = self._keys[old], self._values[old]
            self._bits = max(8, (4 * (self._size + len(keys))).bit_length())
            self._keys = np.zeros(1 << self._bits, dtype=np.uint64)
            self._values = np.full(1 << self._bits, -1, dtype=np.int32)
            self._size = 0
            self._insert(old_keys, old_values)
        self._insert(keys.astype(np.uint64), values.astype(np.int32))

    def _insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        mask = (1 << self._bits) - 1
        table_keys, table_values = self._keys, self._values
        for key, value, slot in zip(keys.tolist(), values.tolist(), self._home(keys).tolist(), strict=True):
            while table_values[slot] >= 0:
                slot = (slot + 1) & mask
            table_keys[slot] = key
            table_values[slot] = value
        self._size += len(keys)
