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

import struct
from typing import NamedTuple

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

    def __init__(self, data: bytes) -> None:
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

            self._fallback = symbolic.SymCache.from_bytes(data)
            return
        off = _HEADER.size

        def take(count: int, width: int) -> np.ndarray:
            nonlocal off
            off = (off + 7) & ~7
            arr = np.frombuffer(data, dtype="<u4", count=count * width, offset=off)
            off += count * width * 4
            return arr.reshape(count, width) if width > 1 else arr

        try:
            self._files = take(nfiles, _FILE_FIELDS)
            self._funcs = take(nfuncs, 4)
            locs = take(nlocs, 4)
            self._ranges = take(nranges, 1)
            off = (off + 7) & ~7
            self._strings = data[off : off + nstrings]
        except ValueError as exc:
            raise DwarfIndexError(f"truncated index ({exc})") from exc
        if len(self._strings) != nstrings or nranges > nlocs:
            raise DwarfIndexError("truncated index")
        self._loc_file = locs[:, 0]
        self._loc_line = locs[:, 1]
        self._loc_func = locs[:, 2]
        self._loc_parent = locs[:, 3]
        self._range_base = nlocs - nranges
        self._string_memo: dict[int, str | None] = {}
        self._path_memo: dict[int, str | None] = {}
        self._chain_memo: dict[int, tuple[Location, ...]] = {}

    @property
    def data(self) -> bytes:
        return self._data

    def lookup(self, rel_addrs: np.ndarray) -> list[tuple[Location, ...]]:
        """Inline chain (innermost first) for each relative address; () where DWARF has nothing.

        The inline walk runs level by level over all distinct leaf locations at once; Python only
        assembles the tuples, with names and paths decoded once per index.
        """
        rel_addrs = np.asarray(rel_addrs, dtype=np.uint64)
        if self._fallback is not None:
            return [self._fallback_lookup(int(a)) for a in rel_addrs]
        leaf, gap_leaf = self.leaf_locations(rel_addrs)
        wanted = np.concatenate([leaf[leaf >= 0], gap_leaf[gap_leaf >= 0]])
        chains = self._chains_for(np.unique(wanted))
        out: list[tuple[Location, ...]] = []
        for loc, gap in zip(leaf.tolist(), gap_leaf.tolist(), strict=True):
            if loc >= 0:
                out.append(chains[loc])
            elif gap >= 0:
                inner = chains[gap][0]
                out.append((Location(None, inner.file, inner.line, None, inner.has_source),))
            else:
                out.append(())
        return out

    def _chains_for(self, locs: np.ndarray) -> dict[int, tuple[Location, ...]]:
        memo = self._chain_memo
        todo = np.array([loc for loc in locs.tolist() if loc not in memo], dtype=np.int64)
        if len(todo):
            levels = []
            cur = todo
            alive = np.ones(len(todo), dtype=bool)
            for _depth in range(256):
                if not alive.any():
                    break
                func = self._loc_func[cur]
                parent = self._loc_parent[cur]
                levels.append(
                    (alive.tolist(), func.tolist(), self._loc_file[cur].tolist(), self._loc_line[cur].tolist())
                )
                alive = alive & (parent != _NONE) & (parent < len(self._loc_func))
                cur = np.where(alive, parent, 0).astype(np.int64)
            func_memo: dict[int, tuple[str | None, int | None]] = {}
            path = self._path
            for j, loc in enumerate(todo.tolist()):
                chain = []
                for alive_l, func_l, file_l, line_l in levels:
                    if not alive_l[j]:
                        break
                    func = func_l[j]
                    named = func_memo.get(func)
                    if named is None:
                        named = func_memo[func] = self._function(func)
                    file_idx = file_l[j]
                    chain.append(Location(named[0], path(file_idx), line_l[j], named[1], file_idx != _NONE))
                memo[loc] = tuple(chain)
        return memo

    def _function(self, func: int) -> tuple[str | None, int | None]:
        if func == _NONE or func >= len(self._funcs):
            return None, None
        name = self._string(int(self._funcs[func, 0]))
        entry_pc = int(self._funcs[func, 2])
        return name, (None if entry_pc == _NONE else entry_pc)

    def leaf_locations(self, rel_addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised core: the innermost source-location index per address (-1 none), and for
        addresses in padding gaps the location of the range just before (-1 none)."""
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
        text = data[pos : pos + length].decode("utf-8", "surrogateescape") if pos + length <= len(data) else None
        memo[offset] = text
        return text

    def _path(self, file_idx: int) -> str | None:
        """The file name as binutils builds it: comp_dir/dir/name joined, never normalised."""
        if file_idx == _NONE or file_idx >= len(self._files):
            return None
        memo = self._path_memo
        if file_idx in memo:
            return memo[file_idx]
        comp_dir, directory, name = (self._string(int(x)) for x in self._files[file_idx, :3])
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
