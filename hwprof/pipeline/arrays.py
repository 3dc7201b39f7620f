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


def prefix_tree(levels: list[np.ndarray], length: np.ndarray,
                builder_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack table (frame, parent) for rows of root-first frame ids, built level by level from the root.

    `levels[d][row]` is the frame at depth d of each row (-1 past its end; `length` frames per row); the list is
    consumed: each level is dropped once used, so the levels and the table do not both exist in full.
    Identical prefixes share nodes: at each depth, (parent node, frame) pairs are made unique with numpy, so the
    cost is a sort per level, not a dict lookup per frame. Parents always get smaller ids than their children,
    and the nodes of a level are numbered in (parent, frame) order. The rows are kept ordered by their node, so
    each level's keys arrive sorted but for rows that share a parent: a stable (run-detecting) argsort of
    nearly sorted keys is several times cheaper than sorting them from scratch and binary-searching each back.
    Returns (stack_frame, stack_parent, leaf node per row or -1 for an empty row).
    """
    n_rows = len(length)
    leaf = np.full(n_rows, -1, dtype=np.int64)
    # At most one node per frame: written in place, only the pages of the nodes made are ever touched.
    most = int(length.sum())
    out_frame = np.empty(most, dtype=np.int32)
    out_parent = np.empty(most, dtype=np.int32)
    total = 0
    depth = len(levels)
    order = np.nonzero(length > 0)[0]  # rows still going deeper, ordered by their current node
    node = np.full(len(order), -1, dtype=np.int64)  # their current node (the parent of the next level)
    remaining = length[order]
    for d in range(depth):
        if d:
            going = remaining > d
            if not going.all():
                leaf[order[~going]] = node[~going]  # rows that end at the previous level
                order, node, remaining = order[going], node[going], remaining[going]
        key = (node + 1) * builder_frames + levels[d][order]
        levels[d] = None  # type: ignore[call-overload]  # done with: free it
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
        order, remaining = order[perm], remaining[perm]
        total += made
    levels.clear()
    leaf[order] = node
    return out_frame[:total], out_parent[:total], leaf


def levels_matrix(frames: np.ndarray, start: np.ndarray, length: np.ndarray, depth: int) -> np.ndarray:
    """(depth, rows) int32 matrix of root-first frames (-1 past a row's end): the leaf-first rows transposed once,
    in blocks of rows to bound the temporaries, so each level is a small contiguous array rather than a gather
    that touches a cache line of the big frames array per row."""
    n_rows = len(length)
    out = np.full(depth * n_rows, -1, dtype=np.int32)
    if not depth:
        return out.reshape(0, n_rows)
    ends = np.cumsum(length)
    block = 1 << 20
    row = 0
    while row < n_rows:
        stop = int(np.searchsorted(ends, ends[row] - length[row] + block, side="right"))
        stop = max(stop, row + 1)
        lens = length[row:stop]
        first, last = int(start[row]), int(start[stop - 1] + lens[-1])
        # entry j of row r sits at depth start[r] + length[r] - 1 - j: flat position depth * n_rows + r
        base = (start[row:stop] + lens - 1) * n_rows + np.arange(row, stop)
        dest = np.repeat(base, lens) - np.arange(first, last, dtype=np.int64) * n_rows
        out[dest] = frames[first:last]
        row = stop
    return out.reshape(depth, n_rows)


class KeyIndex:
    """A growing map of uint64 keys to int32 values, looked up for whole arrays at once: what the blocks of a
    streamed resolution use to find the addresses earlier blocks already resolved (a multiplicative hash with no
    collisions while the keys are few, else a binary search in the sorted keys; no sort of the looked-up values)."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)    # sorted
        self.values = np.zeros(0, dtype=np.int32)   # value of each key
        self._table: tuple[int, int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The value of each key, -1 where it is not in the index (int64)."""
        keys = keys.astype(np.uint64, copy=False)
        if not len(self.keys):
            return np.full(len(keys), -1, dtype=np.int64)
        if self._table is not None:
            multiplier, shift, slots = self._table
            at = slots[_hash(keys, multiplier, shift)]
        else:
            at = np.searchsorted(self.keys, keys)
            np.minimum(at, len(self.keys) - 1, out=at)
        found = self.keys[at] == keys
        return np.where(found, self.values[at], -1)

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add keys (distinct, none of them present yet) with their values."""
        merged = np.concatenate([self.keys, keys.astype(np.uint64)])
        order = np.argsort(merged, kind="stable")
        self.keys = merged[order]
        self.values = np.concatenate([self.values, values.astype(np.int32)])[order]
        self._table = _perfect_hash(self.keys) if len(self.keys) <= 512 else None  # tables up to 2 MB
