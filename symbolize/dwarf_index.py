"""Address -> (function, file, line) inline chains from DWARF, through Sentry's SymCache.

Sentry's ``symbolic`` (compiled Rust) turns DWARF 4/5 -- split, compressed or not -- into a
SymCache: sorted range starts, each pointing at a source location whose ``inlined_into`` link
climbs the inline chain. Building it is the expensive part and runs once per binary; the bytes
are the on-disk cache. Lookups then read the SymCache arrays with numpy (zero copy), so a bulk
lookup is one ``searchsorted`` plus a few vector gathers per inline level, with no per-address
call into the library.

The SymCache layout read here is version 9 (symbolic 12 and 13). Any other version falls back to
the library's own per-address lookup, slower but with the same results.
"""

from __future__ import annotations

import bisect
import functools
import mmap
import struct
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np


_NONE = 0xFFFFFFFF
_HEADER = struct.Struct("<4sI32sI5I16x")  # magic, version, debug id, arch, 5 counts, reserved
_SUPPORTED_VERSION = 9
_FILE_FIELDS = 6  # comp_dir, directory, name, srcsrv name, srcsrv dir, revision (v9)
# A gap (no source location) right after a range is the function's alignment padding: the line
# table row before it still covers it, and addr2line/llvm-symbolizer report that row's line.
_GAP_SLACK = 64


class DwarfIndexError(Exception):
    """The DWARF could not be turned into an index; callers fall back to ELF symbols."""


class Location(NamedTuple):
    """One level of an inline chain as DWARF describes it (names are raw, not demangled)."""

    function: str | None
    file: str | None
    line: int
    entry: int | None  # relative entry address of the function (outermost level only matters)
    has_source: bool  # False for ranges SymCache filled in from the ELF symbol table


def build_symcache(path: str) -> bytes:
    """Run symbolic over an ELF (or separate debug) file and return the SymCache bytes."""
    try:
        import symbolic
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise DwarfIndexError(f"the 'symbolic' package is missing ({exc})") from exc
    try:
        archive = symbolic.Archive.open(path)
        obj = next(iter(archive.iter_objects()), None)
        if obj is None:
            raise DwarfIndexError(f"{path}: no object inside")
        cache = obj.make_symcache()
        return cache.open_stream().read()
    except DwarfIndexError:
        raise
    except Exception as exc:  # symbolic raises its own hierarchy plus OSError; all mean "no DWARF"
        raise DwarfIndexError(f"{path}: cannot read debug info ({exc})") from exc


class DwarfIndex:
    """Bulk address lookups over one SymCache."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self._data = data
        if len(data) < _HEADER.size:
            raise DwarfIndexError("index too short")
        magic, version, _debug_id, _arch, nfiles, nfuncs, nlocs, nranges, nstrings = _HEADER.unpack_from(data)
        if magic != b"SYMC":
            raise DwarfIndexError("not a SymCache")
        self.version = version
        self._fallback = None
        if version != _SUPPORTED_VERSION:
            import symbolic

            self._fallback = symbolic.SymCache.from_bytes(bytes(data))
            return
        off = _HEADER.size
        view = memoryview(data)

        def take(count: int, width: int) -> memoryview:
            nonlocal off
            off = (off + 7) & ~7
            size = count * width * 4
            if off + size > len(data):
                raise DwarfIndexError("truncated index")
            part = view[off : off + size].cast("I")
            off += size
            return part

        self._files_mv = take(nfiles, _FILE_FIELDS)
        self._funcs_mv = take(nfuncs, 4)
        self._locs_mv = take(nlocs, 4)
        self._ranges_mv = take(nranges, 1)
        off = (off + 7) & ~7
        self._strings = view[off : off + nstrings]  # a view: the data may be a mapped file
        if len(self._strings) != nstrings or nranges > nlocs:
            raise DwarfIndexError("truncated index")
        self._nlocs = nlocs
        self._range_base = nlocs - nranges
        self._string_memo: dict[int, str | None] = {}
        self._path_memo: dict[int, str | None] = {}
        self._chain_memo: dict[int, tuple[Location, ...]] = {}
        self._function_memo: dict[int, tuple[str | None, int | None]] = {}

    # numpy views for bulk lookups, made on first use so scalar users never import numpy.
    @functools.cached_property
    def _locs(self):
        import numpy as np

        return np.frombuffer(self._locs_mv, dtype=np.uint32).reshape(-1, 4)

    @functools.cached_property
    def _ranges(self):
        import numpy as np

        return np.frombuffer(self._ranges_mv, dtype=np.uint32)

    @property
    def _loc_file(self):
        return self._locs[:, 0]

    @property
    def _loc_line(self):
        return self._locs[:, 1]

    @property
    def _loc_func(self):
        return self._locs[:, 2]

    @property
    def _loc_parent(self):
        return self._locs[:, 3]

    def lookup_scalar(self, rel_addrs: list[int]) -> list[tuple[Location, ...]]:
        """Same answers as ``lookup`` for a plain list, by bisection: for callers with few
        addresses (or a command line that should start fast) and no numpy to import."""
        if self._fallback is not None:
            return [self._fallback_lookup(a) for a in rel_addrs]
        ranges, locs, base = self._ranges_mv, self._locs_mv, self._range_base
        out: list[tuple[Location, ...]] = []
        for addr in rel_addrs:
            if not 0 <= addr < _NONE:
                out.append(())
                continue
            idx = bisect.bisect_right(ranges, addr) - 1
            if idx < 0:
                out.append(())
                continue
            loc = idx + base
            if locs[4 * loc + 2] != _NONE:
                chain = self._chain_memo.get(loc)
                out.append(chain if chain is not None else self._chain_scalar(loc))
            elif idx >= 1 and locs[4 * (loc - 1) + 2] != _NONE and addr - ranges[idx] < _GAP_SLACK:
                inner = self._chain_scalar(loc - 1)[0]
                out.append((Location(None, inner.file, inner.line, None, inner.has_source),))
            else:
                out.append(())
        return out

    def _chain_scalar(self, loc: int) -> tuple[Location, ...]:
        """Chain of one location; every location's chain is its own Location followed by its
        caller's chain, so each is built once and shared by all the addresses inlined below it."""
        memo = self._chain_memo
        found = memo.get(loc)
        if found is not None:
            return found
        locs, nlocs = self._locs_mv, self._nlocs
        path = []
        cur = loc
        while cur != _NONE and cur < nlocs and cur not in memo and len(path) < 256:
            path.append(cur)
            cur = locs[4 * cur + 3]
        tail = memo.get(cur, ())
        function, file_path, new = self._function, self._path, tuple.__new__
        functions, paths = self._function_memo, self._path_memo
        for at in reversed(path):
            base = 4 * at
            file_idx = locs[base]
            func = locs[base + 2]
            named = functions.get(func) or function(func)
            where = paths[file_idx] if file_idx in paths else file_path(file_idx)
            # tuple.__new__ skips NamedTuple's Python-level constructor: this runs once per location.
            tail = (new(Location, (named[0], where, locs[base + 1], named[1], file_idx != _NONE)), *tail)
            memo[at] = tail
        return memo[loc]

    def data(self) -> bytes:
        return self._data

    def lookup(self, rel_addrs: np.ndarray) -> list[tuple[Location, ...]]:
        """Inline chain (innermost first) for each relative address; () where DWARF has nothing.

        The range search is one vectorised searchsorted; each location's chain is then built once
        (sharing its callers' chains) and memoised, so repeated and nearby addresses cost a lookup.
        """
        import numpy as np

        rel_addrs = np.asarray(rel_addrs, dtype=np.uint64)
        if self._fallback is not None:
            return [self._fallback_lookup(int(a)) for a in rel_addrs]
        leaf, gap_leaf = self.leaf_locations(rel_addrs)
        chain_of = self._chain_scalar
        out: list[tuple[Location, ...]] = []
        for loc, gap in zip(leaf.tolist(), gap_leaf.tolist(), strict=True):
            if loc >= 0:
                out.append(chain_of(loc))
            elif gap >= 0:
                inner = chain_of(gap)[0]
                out.append((Location(None, inner.file, inner.line, None, inner.has_source),))
            else:
                out.append(())
        return out

    def _function(self, func: int) -> tuple[str | None, int | None]:
        known = self._function_memo.get(func)
        if known is not None:
            return known
        known = self._function_memo[func] = self._read_function(func)
        return known

    def _read_function(self, func: int) -> tuple[str | None, int | None]:
        if func == _NONE or 4 * func >= len(self._funcs_mv):
            return None, None
        name = self._string(self._funcs_mv[4 * func])
        entry_pc = self._funcs_mv[4 * func + 2]
        return name, (None if entry_pc == _NONE else entry_pc)

    def leaf_locations(self, rel_addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised core: the innermost source-location index per address (-1 none), and for
        addresses in padding gaps the location of the range just before (-1 none)."""
        import numpy as np

        ranges = self._ranges
        in_u32 = rel_addrs < np.uint64(_NONE)
        addr32 = np.where(in_u32, rel_addrs, 0).astype(np.uint32)
        idx = np.searchsorted(ranges, addr32, side="right").astype(np.int64) - 1
        valid = in_u32 & (idx >= 0)
        loc = np.where(valid, idx + self._range_base, 0)
        func = self._loc_func[loc]
        is_gap = func == _NONE
        leaf = np.where(valid & ~is_gap, loc, -1)
        prev = np.maximum(loc - 1, 0)
        prev_ok = valid & is_gap & (idx >= 1) & (self._loc_func[prev] != _NONE)
        near = addr32.astype(np.int64) - ranges[np.maximum(idx, 0)].astype(np.int64) < _GAP_SLACK
        gap_leaf = np.where(prev_ok & near, prev, -1)
        return leaf, gap_leaf

    def _string(self, offset: int) -> str | None:
        if offset == _NONE:
            return None
        memo = self._string_memo
        if offset in memo:
            return memo[offset]
        data = self._strings
        length = shift = 0
        pos = offset
        while pos < len(data):
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        text = str(data[pos : pos + length], "utf-8", "surrogateescape") if pos + length <= len(data) else None
        memo[offset] = text
        return text

    def _path(self, file_idx: int) -> str | None:
        """The file name as binutils builds it: comp_dir/dir/name joined, never normalised."""
        if file_idx == _NONE or _FILE_FIELDS * file_idx >= len(self._files_mv):
            return None
        memo = self._path_memo
        if file_idx in memo:
            return memo[file_idx]
        at = _FILE_FIELDS * file_idx
        comp_dir, directory, name = (self._string(x) for x in self._files_mv[at : at + 3])
        path = name
        if name is not None and not name.startswith("/"):
            if directory:
                path = f"{directory}/{name}"
            if not path.startswith("/") and comp_dir:
                path = f"{comp_dir}/{path}"
        memo[file_idx] = path
        return path

    def _fallback_lookup(self, addr: int) -> tuple[Location, ...]:
        chain = []
        for loc in self._fallback.lookup(addr):
            entry = None if loc.sym_addr in (None, _NONE) else loc.sym_addr
            chain.append(Location(loc.symbol, loc.full_path, loc.line or 0, entry, bool(loc.full_path)))
        return tuple(chain)
