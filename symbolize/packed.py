"""Strings kept as bytes in one buffer and decoded when asked for: symbol names of large tables.

A kernel has 120k text symbols, a browser binary 200k function symbols; a lookup needs a few hundred names. As one
str each (plus a tuple slot) they cost ~70 bytes apiece in every process that loads them, most of the load time,
and memory a long-lived symbolizer (hwprof agent) keeps for hours. Packed, a table is its UTF-8 bytes plus two
offsets per string, and when the buffer is a mapped cache file only the pages of the names looked up are resident.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

NO_STRING = 0xFFFFFFFF  # IndexedStrings: an index that names no string (None)


class PackedStrings(Sequence[str]):
    """String i is data[starts[i]:ends[i]] (UTF-8, undecodable bytes kept as surrogates)."""

    def __init__(self, data: bytes | memoryview, starts: Sequence[int], ends: Sequence[int]) -> None:
        if len(starts) != len(ends):
            raise ValueError("one start and one end per string")
        self._data = data
        self._starts = starts
        self._ends = ends

    @classmethod
    def pack(cls, strings: Sequence[str]) -> PackedStrings:
        """Pack Python strings that hold no NUL (symbol names): one join and one encode, each string followed by a
        NUL in the buffer (the encoding side of a cache file)."""
        import numpy as np

        data = "".join(f"{s}\0" for s in strings).encode("utf-8", "surrogateescape")
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0)
        if len(ends) != len(strings):
            raise ValueError("a string to pack holds a NUL")
        starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
        return cls(data, starts, ends)

    @property
    def data(self) -> bytes | memoryview:
        return self._data

    @property
    def starts(self) -> Sequence[int]:
        return self._starts

    @property
    def ends(self) -> Sequence[int]:
        return self._ends

    def __len__(self) -> int:
        return len(self._starts)

    def _one(self, i: int) -> str:
        return str(self._data[int(self._starts[i]):int(self._ends[i])], "utf-8", "surrogateescape")

    def __getitem__(self, i):  # noqa: ANN001 -- int or slice, as Sequence has it
        if isinstance(i, slice):
            return [self._one(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("string index out of range")
        return self._one(i)

    def __iter__(self) -> Iterator[str]:
        return (self._one(i) for i in range(len(self)))

    def index(self, value: str, start: int = 0, stop: int | None = None) -> int:
        wanted = value.encode("utf-8", "surrogateescape")
        data, starts, ends = self._data, self._starts, self._ends
        for i in range(start, len(self) if stop is None else min(stop, len(self))):
            if ends[i] - starts[i] == len(wanted) and data[starts[i]:ends[i]] == wanted:
                return i
        raise ValueError(f"{value!r} is not in the table")

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            self.index(value)
        except ValueError:
            return False
        return True


class IndexedStrings(Sequence[str | None]):
    """Row i is distinct[index[i]], or None where index[i] is NO_STRING: a column with few distinct values (the
    source file of each symbol)."""

    def __init__(self, distinct: Sequence[str], index: Sequence[int]) -> None:
        self.distinct = distinct
        self.index_column = index

    def __len__(self) -> int:
        return len(self.index_column)

    def _one(self, i: int) -> str | None:
        k = self.index_column[i]
        return None if k == NO_STRING else self.distinct[k]

    def __getitem__(self, i):  # noqa: ANN001
        if isinstance(i, slice):
            return [self._one(j) for j in range(*i.indices(len(self)))]
        return self._one(i)

    def __iter__(self) -> Iterator[str | None]:
        return (self._one(i) for i in range(len(self)))
