"""A binary's SymbolTable built from its ELF symbol tables, PLT and .eh_frame as numpy column operations.

`hwprof agent` meets every binary of a machine; node's two symbol tables hold 185k entries and chromium's .eh_frame
35k functions. Built one Python tuple and str per symbol, the first sight of such a binary cost 0.3-2 s of CPU. Here
each rule (which symbols name code, which of several names of an address wins, how far a symbol reaches, which
.eh_frame functions no symbol names) is a column operation over the raw Elf64_Sym records, and names stay byte
ranges of the string tables until the finished table packs them into one buffer (PackedStrings). Only the few
things that are per alias or per source file, not per symbol, become Python strings.

The rules themselves are stated in SymbolTable.from_image's docstring; tests/integration/symbolize/symtab_reference.py
applies them one symbol at a time, as the specification this module must match on real binaries.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from hwprof.symbolize.elf import ElfError
from hwprof.symbolize.packed import NO_STRING, IndexedStrings, PackedStrings

if TYPE_CHECKING:
    from hwprof.symbolize.elf import ElfImage, SymbolTable

SYM_DTYPE = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
                      ("size", "<u8")])  # Elf64_Sym
RELA_DTYPE = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])  # Elf64_Rela
_STT_NOTYPE, _STT_FUNC, _STT_FILE, _STT_GNU_IFUNC = 0, 2, 4, 10
_STB_LOCAL, _STB_GLOBAL, _STB_WEAK = 0, 1, 2
_SHF_EXECINSTR = 0x4
_SHN_UNDEF, _SHN_LORESERVE = 0, 0xFF00
_R_X86_64_IRELATIVE = 37
_PADDING_SLACK = 64  # gcc aligns functions to at most 64 bytes (see SymbolTable.reach)
_TOP = np.uint64(2**64 - 1)
_WORD_PAD = 16
_SCAN_CHUNK = 1 << 22  # bytes of a string table compared at a time (bounds the temporary masks)
_GATHER_CHUNK = 1 << 20  # bytes copied per step when names are gathered (bounds the index arrays' memory)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass
class _Rows:
    """Candidate symbol rows as columns; names are [name_start, name_end) of the shared name buffer."""

    addr: np.ndarray  # uint64
    size: np.ndarray  # uint64
    pref: np.ndarray  # int64: function over label, global over weak over local
    name_start: np.ndarray  # int64
    name_end: np.ndarray  # int64
    file: np.ndarray  # int64 index into the source-file names, -1 for none
    limit: np.ndarray  # uint64: the end of the symbol's section

    @classmethod
    def concat(cls, parts: list[_Rows]) -> _Rows:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))

    def take(self, index: np.ndarray) -> _Rows:
        return _Rows(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


class _Names:
    """The byte buffer every name range points into: the string tables, then names this build composes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> int:
        """Append bytes; returns where they start."""
        at = self.size
        self._parts.append(data)
        self.size += len(data)
        return at

    def buffer(self) -> np.ndarray:
        """All parts as one array, followed by 16 zero bytes (a short name's 8-byte word may run past the end). The
        parts are replaced by it, so the string tables are not held twice."""
        joined = b"".join((*self._parts, bytes(_WORD_PAD)))
        self._parts, self.size = [joined], len(joined)
        return np.frombuffer(joined, dtype=np.uint8)


def build_symbol_table(image: ElfImage) -> SymbolTable:
    from hwprof.symbolize.elf import SymbolTable

    sections = image._section_list
    exec_sections = np.zeros(0x10000, dtype=bool)
    section_ends = np.zeros(len(sections), dtype=np.uint64)
    for index, sec in enumerate(sections):
        exec_sections[index] = bool(sec.flags & _SHF_EXECINSTR)
        section_ends[index] = (sec.addr + sec.size) & 0xFFFFFFFFFFFFFFFF
    names = _Names()
    file_names: dict[str, int] = {}  # source file -> its index in the table's file column
    parts = []
    for table, strtab in ((".symtab", ".strtab"), (".dynsym", ".dynstr")):
        raw, strings = image.read_section(table), image.read_section(strtab)
        if raw is not None and strings is not None:
            parts.append(_symbol_rows(raw, strings, names, file_names, exec_sections, section_ends))
    parts.append(_plt_rows(image, names))
    rows = _Rows.concat(parts)
    buf = names.buffer()
    rows = rows.take(_alias_order(rows, buf))
    first = np.ones(len(rows.addr), dtype=bool)
    first[1:] = rows.addr[1:] != rows.addr[:-1]
    aliases = _alias_groups(rows, first, buf)
    table = rows.take(np.flatnonzero(first))
    starts, ends, reach = _extents(image, table)
    fde_starts, fde_ends = image.function_bound_columns
    gap_starts, gap_ends = _unnamed_functions(fde_starts, fde_ends, starts, reach)
    order = np.argsort(np.concatenate((starts, gap_starts)), kind="stable")
    gap_names = _sub_names(gap_starts)
    names_out = pack_sources([(buf, table.name_start, table.name_end),
                              (np.frombuffer(gap_names.data, dtype=np.uint8), np.asarray(gap_names.starts),
                               np.asarray(gap_names.ends))], order)
    files = np.concatenate((table.file, np.full(len(gap_starts), -1, dtype=np.int64)))[order]
    return SymbolTable(_words(np.concatenate((starts, gap_starts))[order]),
                       _words(np.concatenate((ends, gap_ends))[order]),
                       names_out,
                       _file_column(files, file_names), aliases,
                       _words(np.concatenate((reach, gap_ends))[order]), frozenset(gap_starts.tolist()))


def _symbol_rows(raw: bytes, strings: bytes, names: _Names, file_names: dict[str, int], exec_sections: np.ndarray,
                 section_ends: np.ndarray) -> _Rows:
    """The rows of one symbol table (.symtab or .dynsym) that name code."""
    syms = np.frombuffer(raw, dtype=SYM_DTYPE, count=len(raw) // SYM_DTYPE.itemsize)
    kind, bind = syms["info"] & 0xF, syms["info"] >> 4
    shndx, value, size, name_off = syms["shndx"], syms["value"], syms["size"], syms["name"].astype(np.int64)
    file_of = _file_symbols(kind, bind)
    code = (kind == _STT_FUNC) | (kind == _STT_GNU_IFUNC) | ((kind == _STT_NOTYPE) & exec_sections[shndx])
    keep = code & (shndx != _SHN_UNDEF) & (shndx < _SHN_LORESERVE) & (value != 0) & (name_off != 0)
    text = np.frombuffer(strings, dtype=np.uint8)
    start = name_off[keep]
    end = _string_ends(text, start)
    named = end > start
    named[named] = text[start[named]] != ord("$")
    index = np.flatnonzero(keep)[named]
    start, end = start[named], end[named]
    # A .symver name kept in .symtab ("pow@@GLIBC_2.29"): the version is not the name.
    end = np.minimum(end, _next_byte(text, b"@", start, len(text)))
    kind, bind, shndx = kind[index], bind[index], shndx[index]
    pref = np.where(kind != _STT_NOTYPE, 2, 0) + np.where(bind == _STB_GLOBAL, 2, bind == _STB_WEAK)
    in_section = shndx < len(section_ends)
    limit = np.where(in_section, section_ends[np.where(in_section, shndx, 0)], value[index] + size[index])
    at = names.add(strings)
    files = file_of[index]
    present = np.zeros(len(syms), dtype=bool)  # np.unique would import numpy.ma (0.1 s) on first use
    present[files[files >= 0]] = True
    used = np.flatnonzero(present)
    if len(used):  # a few hundred source files, not one per symbol
        file_starts = name_off[used]
        file_ends = _string_ends(text, file_starts)
        renumber = np.full(len(syms), -1, dtype=np.int64)
        renumber[used] = [file_names.setdefault(str(strings[s:e], "utf-8", "surrogateescape"), len(file_names))
                          for s, e in zip(file_starts.tolist(), file_ends.tolist(), strict=True)]
        files = np.where(files >= 0, renumber[np.maximum(files, 0)], -1)
    return _Rows(value[index], size[index], pref.astype(np.int64), start + at, end + at, files,
                 limit.astype(np.uint64))


def _file_symbols(kind: np.ndarray, bind: np.ndarray) -> np.ndarray:
    """Per symbol, the index of its STT_FILE symbol or -1. binutils' rule: the last STT_FILE before it; for a global
    symbol only while no STT_FILE has followed another symbol (then the globals section has begun)."""
    count = len(kind)
    position = np.arange(count)
    is_file = kind == _STT_FILE
    last_file = np.maximum.accumulate(np.where(is_file, position, -1)) if count else position
    first_symbol = np.flatnonzero(~is_file[1:])  # the null symbol at 0 does not count
    globals_begin = count
    if len(first_symbol):
        later_files = np.flatnonzero(is_file[first_symbol[0] + 2:])
        if len(later_files):
            globals_begin = later_files[0] + first_symbol[0] + 2
    hidden = (bind != _STB_LOCAL) & (position > globals_begin)
    return np.where(is_file | hidden, -1, last_file)


def _string_ends(text: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The NUL ending each string that starts at `starts` (the table's end when unterminated); a start past the
    table gives an empty string."""
    return np.maximum(_next_byte(text, b"\0", starts, len(text)), np.minimum(starts, len(text)))


def _next_byte(text: np.ndarray, byte: bytes, starts: np.ndarray, missing: int) -> np.ndarray:
    """The first position at or after each start holding `byte`; `missing` where there is none."""
    found = np.append(_positions(text, byte[0]), missing)
    return found[np.searchsorted(found[:-1], starts)]


def _alias_order(rows: _Rows, buf: np.ndarray) -> np.ndarray:
    """Rows sorted by address, then (for aliases of one address) a function before a label, global before weak
    before local, sized before unsized, fewest leading underscores (as perf does), not a C++ complete-object C1/D1
    (DWARF describes the C2/D2 it aliases), and the first in table order (as binutils does)."""
    return np.lexsort((np.arange(len(rows.addr)), _complete_object(buf, rows.name_start, rows.name_end),
                       _leading_underscores(buf, rows.name_start, rows.name_end), rows.size == 0, -rows.pref,
                       rows.addr))


def _leading_underscores(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    count = np.zeros(len(starts), dtype=np.int64)
    active = np.flatnonzero(starts < ends)
    while len(active):
        at = starts[active] + count[active]
        active = active[(at < ends[active]) & (buf[np.minimum(at, len(buf) - 1)] == ord("_"))]
        count[active] += 1
    return count


def _complete_object(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Names holding [CD]1 followed by E or I: a C++ complete-object constructor or destructor."""
    if len(buf) < 3:
        return np.zeros(len(starts), dtype=bool)
    ones = _positions(buf[1:-1], ord("1")) + 1
    before, after = buf[ones - 1], buf[ones + 1]
    hits = ones[((before == ord("C")) | (before == ord("D"))) & ((after == ord("E")) | (after == ord("I")))] - 1
    return _next_byte_at(hits, starts) + 2 < ends


def _positions(buf: np.ndarray, value: int) -> np.ndarray:
    """Every position of `value` in buf, scanned a few MB at a time."""
    found = [np.flatnonzero(buf[at:at + _SCAN_CHUNK] == value) + at for at in range(0, len(buf), _SCAN_CHUNK)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _next_byte_at(hits: np.ndarray, starts: np.ndarray) -> np.ndarray:
    hits = np.append(hits, np.iinfo(np.int64).max - 2)
    return hits[np.searchsorted(hits[:-1], starts)]


def _alias_groups(rows: _Rows, first: np.ndarray, buf: np.ndarray) -> dict[int, tuple[str, ...]]:
    """{address: its distinct names, the chosen one first} for every address with several names."""
    group = np.cumsum(first) - 1
    sizes = np.bincount(group)
    shared = np.flatnonzero(sizes[group] > 1)
    if not len(shared):
        return {}
    starts, ends, owner = rows.name_start[shared], rows.name_end[shared], group[shared]
    # A name repeats when an earlier row of its address has the same bytes. Rows agreeing on (address, length, first
    # and last 8 bytes) are compared 8 bytes at a time with the first of them; should a name differ from that one
    # only in the middle, its address's names are compared one by one.
    words = _Words(buf)
    length = ends - starts
    head = words.at(starts) & np.where(length >= 8, _TOP, (np.uint64(1) << (np.minimum(length, 7).astype(np.uint64)
                                                                             * np.uint64(8))) - np.uint64(1))
    tail = np.where(length >= 8, words.at(np.maximum(ends - 8, 0)), np.uint64(0))
    key = np.lexsort((np.arange(len(shared)), tail, head, length, owner))
    same = np.zeros(len(key), dtype=bool)
    a, b = key[:-1], key[1:]
    same[1:] = (owner[a] == owner[b]) & (length[a] == length[b]) & (head[a] == head[b]) & (tail[a] == tail[b])
    run = np.cumsum(~same) - 1
    run_first = key[np.flatnonzero(~same)][run]
    candidate = key[same]
    equal = words.middles_equal(starts[candidate], starts[run_first[same]], length[candidate])
    repeated = np.zeros(len(shared), dtype=bool)
    repeated[candidate[equal]] = True
    mixed_run = np.zeros(len(key), dtype=bool)
    mixed_run[run[same][~equal]] = True
    mixed = mixed_run[run]
    if mixed.any():  # names that differ only in the middle (v8's builtins folded into one address): one by one
        seen: set[tuple[int, bytes]] = set()
        for row, k in zip(key[mixed].tolist(), run[mixed].tolist(), strict=True):
            name = (k, buf[starts[row]:ends[row]].tobytes())
            repeated[row] = name in seen
            seen.add(name)
    distinct = np.flatnonzero(~repeated)
    counts = np.bincount(owner[distinct], minlength=len(sizes))
    keep = distinct[counts[owner[distinct]] > 1]
    if not len(keep):
        return {}
    data = memoryview(buf)
    out: dict[int, list[str]] = {}
    addrs = rows.addr[shared[keep]].tolist()
    for addr, s, e in zip(addrs, starts[keep].tolist(), ends[keep].tolist(), strict=True):
        out.setdefault(addr, []).append(str(data[s:e], "utf-8", "surrogateescape"))
    return {addr: tuple(group_names) for addr, group_names in out.items()}


class _Words:
    """The 8 bytes at any offset of a byte buffer as one little-endian uint64, through eight shifted zero-copy
    views (one per offset modulo 8) instead of gathering bytes."""

    def __init__(self, buf: np.ndarray) -> None:
        # buf ends in _WORD_PAD zero bytes (_Names.buffer): a short name's word may run past the last name
        self._views = [buf[shift:shift + (len(buf) - shift) // 8 * 8].view("<u8") for shift in range(8)]

    def at(self, offsets: np.ndarray) -> np.ndarray:
        out = np.empty(len(offsets), dtype=np.uint64)
        shift = offsets % 8
        for k, view in enumerate(self._views):
            pick = np.flatnonzero(shift == k)
            out[pick] = view[offsets[pick] // 8]
        return out

    def middles_equal(self, a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
        """For names of equal `length` whose first and last 8 bytes agree: do the bytes between agree too?"""
        count = np.maximum(length - 16 + 7, 0) // 8  # words from offset 8 on that end before the last 8 bytes
        bounds = np.concatenate(([0], np.cumsum(count)))
        equal = np.ones(len(a), dtype=bool)
        at = 0
        while at < len(a):  # a bounded number of words at a time
            stop = max(int(np.searchsorted(bounds, bounds[at] + _GATHER_CHUNK // 8, side="right")) - 1, at + 1)
            part = slice(at, stop)
            n = count[part]
            pair = np.repeat(np.arange(at, stop), n)
            step = np.arange(len(pair)) - np.repeat(bounds[at:stop] - bounds[at], n)
            offset = np.minimum(8 + 8 * step, length[pair] - 16)
            equal[pair[self.at(a[pair] + offset) != self.at(b[pair] + offset)]] = False
            at = stop
        return equal


def _gather(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The bytes of every range, concatenated."""
    length = ends - starts
    total = int(length.sum())
    if not total:
        return np.zeros(0, dtype=np.uint8)
    offset = np.concatenate(([0], np.cumsum(length)[:-1]))
    return buf[np.repeat(starts - offset, length) + np.arange(total)]


def pack_ranges(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> PackedStrings:
    """PackedStrings of buf[starts[i]:ends[i]], each followed by a NUL, as PackedStrings.pack lays them out."""
    return pack_sources([(buf, starts, ends)], np.arange(len(starts)))


def pack_sources(sources: list[tuple[np.ndarray, np.ndarray, np.ndarray]], order: np.ndarray) -> PackedStrings:
    """PackedStrings of the ranges of several buffers: the sources' rows one after another, taken in `order`."""
    length = np.concatenate([ends - starts for _buf, starts, ends in sources])
    final_length = length[order]
    new_ends = np.cumsum(final_length + 1) - 1
    new_starts = new_ends - final_length
    destination = np.empty(len(order), dtype=np.int64)
    destination[order] = new_starts
    out = np.zeros(int(new_ends[-1]) + 1 if len(new_ends) else 0, dtype=np.uint8)
    first_row = 0
    for buf, starts, ends in sources:
        rows = slice(first_row, first_row + len(starts))
        _copy_ranges(out, destination[rows], buf, starts, ends)
        first_row += len(starts)
    return PackedStrings(out.tobytes(), new_starts, new_ends)


def _copy_ranges(out: np.ndarray, to: np.ndarray, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
    """out[to[i]:to[i] + n] = buf[starts[i]:ends[i]] for each range, a bounded number of bytes at a time."""
    length = ends - starts
    bounds = np.concatenate(([0], np.cumsum(length)))
    at = 0
    while at < len(starts):
        stop = max(int(np.searchsorted(bounds, bounds[at] + _GATHER_CHUNK, side="right")) - 1, at + 1)
        part = slice(at, stop)
        out[_gather_positions(to[part], length[part])] = _gather(buf, starts[part], ends[part])
        at = stop


def _gather_positions(starts: np.ndarray, length: np.ndarray) -> np.ndarray:
    total = int(length.sum())
    offset = np.concatenate(([0], np.cumsum(length)[:-1]))
    return np.repeat(starts - offset, length) + np.arange(total)


def _extents(image: ElfImage, table: _Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, reach) of the table's rows.

    A zero-size symbol runs to the next symbol, but not out of its section. Reach: with a .symtab, a symbol claims
    the alignment padding after it (up to 64 bytes, not past the next symbol or its section's end), as addr2line
    does. Stripped of .symtab, the exported symbols are all there is: the code past one's size is as likely a static
    function as padding (cc1: 2% of samples landed 0x10-0x40 bytes past an export), so only .eh_frame's bounds for
    the symbol's own function stretch it; everything else is module+offset (as perf and llvm-symbolizer print it).
    """
    starts, size = table.addr, table.size
    limit = np.maximum(table.limit, np.where(starts == _TOP, _TOP, starts + np.uint64(1)))
    nxt = np.append(starts[1:], _TOP)
    ends = np.where(size > 0, starts + size, np.minimum(nxt, limit))
    if image.has_symtab:
        padded = np.minimum(ends, _TOP - np.uint64(_PADDING_SLACK)) + np.uint64(_PADDING_SLACK)
        return starts, ends, np.maximum(ends, np.minimum(np.minimum(nxt, padded), limit))
    fde_starts, fde_ends = image.function_bound_columns
    at = np.minimum(np.searchsorted(fde_starts, starts), max(len(fde_starts) - 1, 0))
    own = (fde_starts[at] == starts) if len(fde_starts) else np.zeros(len(starts), dtype=bool)
    fde_end = np.where(own, fde_ends[at] if len(fde_ends) else ends, ends)
    return starts, ends, np.maximum(ends, np.minimum(nxt, fde_end))


def _unnamed_functions(fde_starts: np.ndarray, fde_ends: np.ndarray, starts: np.ndarray,
                       reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the functions .eh_frame describes and no symbol covers.

    Disassemblers name such a function after its link-time start, ``sub_15b40`` (IDA's convention), so every
    address in it is one function in a profile rather than one ``module+0xOFFSET`` row per address. A row ends
    at its FDE's end or at the next symbol, whichever comes first.
    """
    fde_starts, fde_ends = np.asarray(fde_starts, dtype=np.uint64), np.asarray(fde_ends, dtype=np.uint64)
    starts, reach = np.asarray(starts, dtype=np.uint64), np.asarray(reach, dtype=np.uint64)
    before = np.searchsorted(starts, fde_starts, side="right").astype(np.int64) - 1  # -1: before every symbol
    # A symbol (or its padding/FDE reach) that covers the function's entry names it; index -1 reads the 0 appended.
    covered = fde_starts < np.append(reach, np.uint64(0))[before]
    nxt = np.append(starts, _TOP)[before + 1]
    ends = np.minimum(fde_ends, nxt)
    keep = ~covered & (ends > fde_starts)
    return fde_starts[keep], ends[keep]


def _sub_names(starts: np.ndarray) -> PackedStrings:
    """``sub_<start in lowercase hex>`` for each start, without a per-name format call."""
    starts = np.asarray(starts, dtype=np.uint64)
    nibbles = (starts[:, None] >> (np.uint64(4) * np.arange(15, -1, -1, dtype=np.uint64))) & np.uint64(0xF)
    nonzero = nibbles != 0
    first_digit = np.where(nonzero.any(axis=1), np.argmax(nonzero, axis=1), 15)  # 0 is "sub_0"
    matrix = np.empty((len(starts), 21), dtype=np.uint8)
    matrix[:, :4] = np.frombuffer(b"sub_", dtype=np.uint8)
    matrix[:, 4:20] = _HEX[nibbles.astype(np.int64)]
    matrix[:, 20] = 0
    wanted = np.ones((len(starts), 21), dtype=bool)
    wanted[:, 4:20] = np.arange(16)[None, :] >= first_digit[:, None]
    length = 4 + 16 - first_digit
    ends = np.cumsum(length + 1) - 1
    return PackedStrings(matrix[wanted].tobytes(), ends - length, ends)


def _plt_rows(image: ElfImage, names: _Names) -> _Rows:
    """``sym@plt`` rows: each PLT stub's ``jmp *GOT(%rip)`` decoded as objdump does, the GOT slot named by its
    relocation (or, for an IRELATIVE one, by the ifunc whose resolver is the addend)."""
    empty = _Rows(*(np.zeros(0, dtype=t) for t in (np.uint64, np.uint64, np.int64, np.int64, np.int64, np.int64,
                                                   np.uint64)))
    dynsym, dynstr = image.read_section(".dynsym"), image.read_section(".dynstr")
    if dynsym is None or dynstr is None:
        return empty
    syms = np.frombuffer(dynsym, dtype=SYM_DTYPE, count=len(dynsym) // SYM_DTYPE.itemsize)
    text = np.frombuffer(dynstr, dtype=np.uint8)
    slots, slot_starts, slot_ends = [], [], []
    for rela_name in (".rela.plt", ".rela.dyn"):
        relocs = _naming_relocations(image, rela_name)
        if relocs is None:
            continue
        kind = relocs["info"] & np.uint64(0xFFFFFFFF)
        sym_index = (relocs["info"] >> np.uint64(32)).astype(np.int64)
        start = np.full(len(relocs), -1, dtype=np.int64)
        end = np.full(len(relocs), -1, dtype=np.int64)
        irelative = kind == _R_X86_64_IRELATIVE
        if irelative.any():
            # libc's calls to its own ifuncs (memcpy, strlen, ...): no symbol, the addend is the resolver, which is
            # the ifunc symbol's value. objdump prints "*ABS*+0x9f550@plt"; name the target.
            resolvers, ifunc_starts, ifunc_ends = _ifunc_names(syms, text)
            addend = relocs["addend"][irelative]
            at = np.minimum(np.searchsorted(resolvers, addend), max(len(resolvers) - 1, 0))
            hit = (resolvers[at] == addend) if len(resolvers) else np.zeros(len(addend), dtype=bool)
            start[np.flatnonzero(irelative)[hit]] = ifunc_starts[at[hit]]
            end[np.flatnonzero(irelative)[hit]] = ifunc_ends[at[hit]]
        symbolic = ~irelative & (sym_index > 0) & (sym_index < len(syms))
        name_off = syms["name"][sym_index[symbolic]].astype(np.int64)
        # an unterminated name runs to the table's last byte (exclusive), as a slice to find()'s -1 does
        name_end = _next_byte(text, b"\0", name_off, len(text) - 1)
        start[symbolic], end[symbolic] = name_off, name_end
        named = end > start
        slots.append(relocs["offset"][named])
        slot_starts.append(start[named])
        slot_ends.append(end[named])
    if not slots:
        return empty
    got, name_start, name_end = np.concatenate(slots), np.concatenate(slot_starts), np.concatenate(slot_ends)
    if not len(got):
        return empty  # relocations, none naming a slot (a small program's only ones may be ld's own)
    # A later relocation of one slot replaces an earlier one's name.
    order = np.argsort(got, kind="stable")
    got, name_start, name_end = got[order], name_start[order], name_end[order]
    last = np.append(got[1:] != got[:-1], True)
    got, name_start, name_end = got[last], name_start[last], name_end[last]
    parts = []
    for sec_name in (".plt", ".plt.sec", ".plt.got"):
        sec = image.sections.get(sec_name)
        code = image.read_section(sec_name)
        if sec is None or code is None:
            continue
        step = 8 if sec_name == ".plt.got" and sec.entsize == 8 else 16
        count = len(code) // step
        if not count:
            continue
        stubs = np.frombuffer(code, dtype=np.uint8, count=count * step).reshape(count, step)
        jump = (stubs[:, :-1] == 0xFF) & (stubs[:, 1:] == 0x25)
        at = np.argmax(jump, axis=1)
        found = jump[np.arange(count), at] & (at + 6 <= step)
        entries = np.flatnonzero(found)
        at = at[found]
        disp = stubs[entries[:, None], at[:, None] + np.arange(2, 6)].copy().view("<i4").ravel().astype(np.int64)
        target = (np.int64(sec.addr) + entries * step + at + 6 + disp).astype(np.uint64)
        slot = np.minimum(np.searchsorted(got, target), max(len(got) - 1, 0))
        hit = (got[slot] == target) if len(got) else np.zeros(len(target), dtype=bool)
        entries, slot = entries[hit], slot[hit]
        stub_addr = (np.uint64(sec.addr) + entries.astype(np.uint64) * np.uint64(step))
        parts.append((stub_addr, np.full(len(entries), step, dtype=np.uint64), name_start[slot], name_end[slot],
                      np.full(len(entries), (sec.addr + sec.size) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)))
    if not parts:
        return empty
    stub_addr, step_sizes, starts, ends, limits = (np.concatenate(column) for column in zip(*parts, strict=True))
    composed = pack_ranges(text, starts, ends)  # name\0 ...: becomes name@plt\0 below
    with_suffix = _append_suffix(composed, b"@plt")
    at = names.add(with_suffix.data)
    return _Rows(stub_addr, step_sizes, np.ones(len(stub_addr), dtype=np.int64),
                 np.asarray(with_suffix.starts, dtype=np.int64) + at, np.asarray(with_suffix.ends, dtype=np.int64) + at,
                 np.full(len(stub_addr), -1, dtype=np.int64), limits)


def _naming_relocations(image: ElfImage, name: str) -> np.ndarray | None:
    """The relocations of section `name` that can name a GOT slot: those with a symbol or an ifunc. Read a few MB at
    a time: a browser's .rela.dyn is 26 MB of R_X86_64_RELATIVE, which name nothing."""
    sec = image.sections.get(name)
    if sec is None or sec.type == "SHT_NOBITS":
        return None
    size = sec.size - sec.size % RELA_DTYPE.itemsize
    step = RELA_DTYPE.itemsize * (_SCAN_CHUNK // RELA_DTYPE.itemsize)
    kept = []
    with open(image.path, "rb") as stream:
        stream.seek(sec.offset)
        for at in range(0, size, step):
            data = stream.read(min(step, size - at))
            if len(data) != min(step, size - at):
                raise ElfError(f"{image.path}: section {name} is truncated")
            relocs = np.frombuffer(data, dtype=RELA_DTYPE)
            kind, symbol = relocs["info"] & np.uint64(0xFFFFFFFF), relocs["info"] >> np.uint64(32)
            kept.append(relocs[(kind == _R_X86_64_IRELATIVE) | (symbol != 0)])
    return np.concatenate(kept) if kept else np.zeros(0, dtype=RELA_DTYPE)


def _append_suffix(strings: PackedStrings, suffix: bytes) -> PackedStrings:
    """Each packed string with `suffix` after it."""
    data = np.frombuffer(strings.data, dtype=np.uint8)
    starts, ends = np.asarray(strings.starts, dtype=np.int64), np.asarray(strings.ends, dtype=np.int64)
    length = ends - starts + len(suffix)
    new_ends = np.cumsum(length + 1) - 1
    new_starts = new_ends - length
    out = np.zeros(int(new_ends[-1]) + 1 if len(new_ends) else 0, dtype=np.uint8)
    out[_gather_positions(new_starts, ends - starts)] = _gather(data, starts, ends)
    tail = np.frombuffer(suffix, dtype=np.uint8)
    out[(new_ends - len(suffix))[:, None] + np.arange(len(suffix))] = tail
    return PackedStrings(out.tobytes(), new_starts, new_ends)


def _ifunc_names(syms: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(resolver addresses, name starts, name ends) of the STT_GNU_IFUNC symbols: of several names for one ifunc,
    the one with fewest leading underscores (mempcpy, not __mempcpy), then global over weak, then table order."""
    info = syms["info"]
    wanted = np.flatnonzero(((info & 0xF) == _STT_GNU_IFUNC) & (syms["shndx"] != _SHN_UNDEF) & (syms["value"] != 0))
    starts = syms["name"][wanted].astype(np.int64)
    ends = _string_ends(text, starts)
    named = ends > starts
    wanted, starts, ends = wanted[named], starts[named], ends[named]
    values = syms["value"][wanted].astype(np.int64)
    local_rank = (info[wanted] >> 4) != _STB_GLOBAL
    order = np.lexsort((wanted, local_rank, _leading_underscores(text, starts, ends), values))
    values, starts, ends = values[order], starts[order], ends[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = values[1:] != values[:-1]
    return values[first], starts[first], ends[first]


def function_bounds(hdr_addr: int, raw: bytes, frame_addr: int, frames: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of every function .eh_frame describes, sorted, through the .eh_frame_hdr search table.

    Only the encodings GNU ld and lld write are read: the header's eh_frame_ptr pcrel|sdata4, fde_count udata4,
    table datarel|sdata4, and FDEs whose pc_begin, read as pcrel|sdata4, equals the table's entry (then pc_range
    is the next 4 bytes). Anything else yields no bounds rather than wrong ones. Of two entries for one start, the
    later one counts.
    """
    none = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    if len(raw) < 12 or raw[0] != 1 or raw[1] != 0x1B or raw[2] != 0x03 or raw[3] != 0x3B:
        return none
    count = int.from_bytes(raw[8:12], "little")
    if 12 + 8 * count > len(raw):
        return none
    table = np.frombuffer(raw, dtype="<i4", count=2 * count, offset=12).reshape(-1, 2).astype(np.int64)
    start = hdr_addr + table[:, 0]
    at = hdr_addr + table[:, 1] - frame_addr  # each FDE's offset in .eh_frame
    inside = (at >= 0) & (at <= len(frames) - 16)
    start, at = start[inside], at[inside]
    fields = np.frombuffer(frames, dtype=np.uint8)[(at + 8)[:, None] + np.arange(8)].copy()
    begin = fields[:, :4].copy().view("<i4").ravel().astype(np.int64)
    size = fields[:, 4:].copy().view("<u4").ravel().astype(np.int64)
    ok = (frame_addr + at + 8 + begin == start) & (size != 0) & (start >= 0)
    start, end = start[ok], start[ok] + size[ok]
    if not len(start):
        return none
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    last = np.append(start[1:] != start[:-1], True)
    return start[last].astype(np.uint64), end[last].astype(np.uint64)


def _file_column(files: np.ndarray, file_names: dict[str, int]) -> IndexedStrings:
    index = np.where(files >= 0, files, NO_STRING).astype(np.uint32)
    return IndexedStrings(tuple(file_names), array("I", index.tobytes()))


def _words(values: np.ndarray) -> array:
    out = array("Q")
    out.frombytes(np.ascontiguousarray(values, dtype="<u8").tobytes())
    return out
