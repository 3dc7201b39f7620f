"""The unique callchains of a decode, kept compact: each entry as a 4-byte code into the table of its distinct values.

A capture's callchains hold millions of entries but few distinct values (addresses and context markers: hundreds
to tens of thousands). A deep capture where nearly every stack is distinct keeps every entry of every stack until
stack resolution, so how an entry is stored is what bounds the decoder's memory: as a uint32 code it takes half of
the raw u64. The encoding is one-to-one, so deduplicating encoded chains is deduplicating the chains, and stack
resolution works on the codes directly (per-value facts, like "is a context marker", become table lookups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwprof.pipeline.arrays import KeyIndex, sorted_unique

_CHUNK_BYTES = 2 << 20  # raw entries encoded at a time: small temporaries, reused rather than faulted in anew


class ChainTable:
    """Unique callchains (u64 entries, context markers included) -> dense ids, stored as uint32 value codes."""

    def __init__(self) -> None:
        self._ids: dict[bytes, int] = {}   # encoded chain -> id
        self._codes = KeyIndex()           # entry value -> code
        self._values: list[np.ndarray] = []  # distinct values, in code order (one array per growth)
        self._n_values = 0

    def __len__(self) -> int:
        return len(self._ids)

    def encode(self, entries: np.ndarray) -> np.ndarray:
        """The code of each entry (new values get the next codes), uint32."""
        code = self._codes.lookup(entries)
        missing = code < 0
        if missing.any():
            new = sorted_unique(entries[missing].astype(np.uint64))
            self._codes.add(new, np.arange(self._n_values, self._n_values + len(new), dtype=np.int32))
            self._values.append(new)
            self._n_values += len(new)
            code[missing] = self._codes.lookup(entries[missing])
        return code.astype("<u4")

    def ids(self, chains: Sequence[bytes]) -> np.ndarray:
        """The id of each chain (u64 little-endian entries), adding the new ones: int64."""
        out = np.empty(len(chains), dtype=np.int64)
        lo = 0
        while lo < len(chains):
            hi, size = lo, 0
            while hi < len(chains) and (size < _CHUNK_BYTES or hi == lo):
                size += len(chains[hi])
                hi += 1
            part = chains[lo:hi]
            codes = self.encode(np.frombuffer(b"".join(part), dtype="<u8")).tobytes()
            self._intern(codes, [len(c) >> 1 for c in part], out, lo)
            lo = hi
        return out

    def ids_in(self, words: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
        """The id of each chain given in place: `count[i]` words of `words` from word `start[i]` (a batch's
        callchains, read without a copy per sample), adding the new ones: int64."""
        n = len(start)
        out = np.empty(n, dtype=np.int64)
        ends = np.cumsum(count)
        lo = 0
        while lo < n:
            hi = max(int(np.searchsorted(ends, ends[lo] - count[lo] + _CHUNK_BYTES // 8, side="right")), lo + 1)
            part = count[lo:hi]
            before = np.cumsum(part) - part
            at = np.repeat(start[lo:hi] - before, part) + np.arange(int(part.sum()), dtype=np.int64)
            codes = self.encode(words[at]).tobytes()
            self._intern(codes, (part * 4).tolist(), out, lo)
            lo = hi
        return out

    def _intern(self, codes: bytes, sizes: list[int], out: np.ndarray, first: int) -> None:
        """out[first + i] = id of the i-th encoded chain in `codes` (`sizes[i]` bytes each)."""
        ids = self._ids
        get = ids.get
        at = 0
        for i, size in enumerate(sizes, first):
            end = at + size
            key = codes[at:end]
            value = get(key)
            if value is None:
                value = ids[key] = len(ids)
            out[i] = value
            at = end

    def values(self) -> np.ndarray:
        """The entry value of each code (uint64)."""
        return np.concatenate(self._values) if self._values else np.zeros(0, dtype=np.uint64)

    def take(self) -> EncodedChains:
        """Every chain's codes in one flat array, in id order, emptying the id table: its one small object per
        chain is freed at once (while nothing else has been allocated among them), and the flat array is freed
        in one piece when stack resolution is done with it."""
        keys = self._ids
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, keys), dtype=np.int64, count=len(keys)) // 4, out=offsets[1:])
        codes = np.frombuffer(b"".join(keys), dtype="<u4")  # ids are given in insertion order: keys are in id order
        keys.clear()
        return EncodedChains(codes, offsets, self.values())


@dataclass
class EncodedChains:
    """The unique chains of a decode, flat: chain i is `values[codes[offsets[i]:offsets[i + 1]]]`."""

    codes: np.ndarray    # uint32 value codes, chains one after another
    offsets: np.ndarray  # int64, chains + 1
    values: np.ndarray   # uint64 entry value of each code

    def release(self) -> None:
        """Drop the codes (the largest array of a deep decode) once they are read."""
        self.codes = np.zeros(0, dtype="<u4")
