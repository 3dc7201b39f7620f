"""The symbol-table rules applied one symbol at a time: the specification hwprof.symbolize.symbol_build must match.

This is the plain-Python build hwprof used before the table was built with numpy (commit 1b471a6), kept verbatim
apart from its entry point: each rule is one readable line per symbol, slow (seconds for node or chromium) but easy
to check against binutils. test_symbol_table_build.py compares the two on real binaries of this machine.
"""

from __future__ import annotations

import re
import struct
from array import array

from hwprof.symbolize.elf import ElfImage, SymbolTable

_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size
_RELA = struct.Struct("<QQq")  # Elf64_Rela: offset, info, addend
_STT_NOTYPE, _STT_FUNC, _STT_FILE, _STT_GNU_IFUNC = 0, 2, 4, 10
_STB_GLOBAL, _STB_WEAK = 1, 2
_SHF_EXECINSTR = 0x4
_SHN_UNDEF, _SHN_LORESERVE = 0, 0xFF00
_R_X86_64_IRELATIVE = 37
_PADDING_SLACK = 64
_CXX_COMPLETE_OBJECT = re.compile(r"[CD]1(?=[EI])")


def reference_table(image: ElfImage) -> SymbolTable:
    """Read .symtab and .dynsym with struct in plain Python: a large library's tables take
    tens of milliseconds this way, less than importing numpy would cost a cold command."""
    rows: list[tuple[int, int, int, str, str | None, int]] = []  # (addr, size, pref, name, file, section end)
    exec_sections = {i for i, sec in enumerate(image._section_list) if sec.flags & _SHF_EXECINSTR}
    section_ends = {i: sec.addr + sec.size for i, sec in enumerate(image._section_list)}
    for table, strtab in ((".symtab", ".strtab"), (".dynsym", ".dynstr")):
        raw = image.read_section(table)
        strings = image.read_section(strtab)
        if raw is None or strings is None:
            continue
        syms = list(_SYM.iter_unpack(raw[: len(raw) - len(raw) % _SYM.size]))
        files = _file_symbols(syms, strings)
        for (name_off, info, _other, shndx, value, size), file in zip(syms, files, strict=True):
            kind = info & 0xF
            is_code = kind == _STT_FUNC or kind == _STT_GNU_IFUNC
            if not (is_code or (kind == _STT_NOTYPE and shndx in exec_sections)):
                continue
            if shndx == _SHN_UNDEF or shndx >= _SHN_LORESERVE or value == 0 or name_off == 0:
                continue
            end = strings.find(b"\0", name_off)
            name = strings[name_off : end if end >= 0 else len(strings)].decode("utf-8", "surrogateescape")
            if not name or name[0] == "$":
                continue
            if "@" in name:  # a .symver name kept in .symtab ("pow@@GLIBC_2.29"): the version is not the name
                name = name.partition("@")[0]
            bind = info >> 4
            pref = (2 if kind != _STT_NOTYPE else 0) + (2 if bind == _STB_GLOBAL else bind == _STB_WEAK)
            rows.append((value, size, pref, name, file, section_ends.get(shndx, value + size)))
    rows.extend(_plt_symbols(image))
    # Aliases at one address: prefer a function, global over weak over local, sized, fewest leading
    # underscores (as perf does), then the first in table order (as binutils does).
    # A C++ complete-object ctor/dtor (C1/D1) aliases the base-object one (C2/D2) that DWARF describes.
    rows = _ordered_aliases(rows)
    starts, sizes, names, files_out, limits = [], [], [], [], []
    aliases: dict[int, list[str]] = {}
    last = None
    for addr, size, _pref, name, file, limit in rows:
        if addr == last:
            group = aliases.setdefault(addr, [names[-1]])
            if name not in group:
                group.append(name)
            continue
        last = addr
        starts.append(addr)
        sizes.append(size)
        names.append(name)
        files_out.append(file)
        limits.append(max(limit, addr + 1))
    ends, reach = [], []
    top = 2**64 - 1
    # Stripped of .symtab, the exported symbols are all there is: the code past one's size is as likely a
    # static function as padding (cc1: 2% of samples landed 0x10-0x40 bytes past an export). There only
    # .eh_frame's function bounds stretch a symbol; everything else is module+offset (as perf and
    # llvm-symbolizer print it).
    fde_ends = function_bounds(image) if not image.has_symtab else None
    for i, (addr, size, limit) in enumerate(zip(starts, sizes, limits, strict=True)):
        nxt = starts[i + 1] if i + 1 < len(starts) else top
        # A zero-size symbol runs to the next symbol, but not out of its section.
        end = addr + size if size > 0 else min(nxt, limit)
        ends.append(end)
        if fde_ends is None:
            reach.append(max(end, min(nxt, end + _PADDING_SLACK, limit)))
        else:
            reach.append(max(end, min(nxt, fde_ends.get(addr, end))))
    rows_out = list(zip(starts, ends, reach, names, files_out, strict=True))
    unnamed = _unnamed_functions(function_bounds(image), starts, reach)
    if unnamed:
        rows_out = sorted(rows_out + unnamed, key=lambda row: row[0])
    return SymbolTable(array("Q", [r[0] for r in rows_out]), array("Q", [r[1] for r in rows_out]),
               tuple(r[3] for r in rows_out), tuple(r[4] for r in rows_out),
               {addr: tuple(group) for addr, group in aliases.items() if len(group) > 1},
               array("Q", [r[2] for r in rows_out]), frozenset(r[0] for r in unnamed))



def function_bounds(image) -> dict[int, int]:
    """{start: end} of every function .eh_frame describes (one FDE each), through the .eh_frame_hdr table.

    Only the encodings GNU ld and lld write are read: the header's eh_frame_ptr pcrel|sdata4, fde_count
    udata4, table datarel|sdata4, and FDEs whose pc_begin, read as pcrel|sdata4, equals the table's entry
    (then pc_range is the next 4 bytes). Anything else yields no bounds rather than wrong ones.
    """
    hdr, raw = image.sections.get(".eh_frame_hdr"), image.read_section(".eh_frame_hdr")
    frame, frames = image.sections.get(".eh_frame"), image.read_section(".eh_frame")
    if hdr is None or raw is None or frame is None or frames is None or len(raw) < 12:
        return {}
    if raw[0] != 1 or raw[1] != 0x1B or raw[2] != 0x03 or raw[3] != 0x3B:
        return {}
    count = int.from_bytes(raw[8:12], "little")
    if 12 + 8 * count > len(raw):
        return {}
    bounds: dict[int, int] = {}
    for initial, fde in struct.iter_unpack("<ii", raw[12 : 12 + 8 * count]):
        start, at = hdr.addr + initial, hdr.addr + fde - frame.addr  # FDE's offset in .eh_frame
        if not 0 <= at <= len(frames) - 16:
            continue
        begin, size = struct.unpack_from("<iI", frames, at + 8)
        if frame.addr + at + 8 + begin == start and size:
            bounds[start] = start + size
    return bounds



def _ordered_aliases(rows: list[tuple]) -> list[tuple]:
    """Rows sorted by (address, -preference, unsized, leading underscores, C1/D1 name), table order last. The
    name tests run only where several rows share an address (a large binary has 100k+ rows, few aliases)."""
    rows = sorted(rows, key=lambda r: (r[0], -r[2], r[1] == 0))  # stable: table order among equals
    out: list[tuple] = []
    i, n = 0, len(rows)
    while i < n:
        j = i + 1
        while j < n and rows[j][0] == rows[i][0]:
            j += 1
        if j - i == 1:
            out.append(rows[i])
        else:
            out += sorted(rows[i:j], key=lambda r: (-r[2], r[1] == 0, _underscores(r[3]),
                                                    bool(_CXX_COMPLETE_OBJECT.search(r[3]))))
        i = j
    return out


def _unnamed_functions(bounds: dict[int, int], starts: list[int],
                       reach: list[int]) -> list[tuple[int, int, int, str, None]]:
    """Rows (start, end, reach, name, file) for the functions .eh_frame describes and no symbol covers.

    Disassemblers name such a function after its link-time start, ``sub_15b40`` (IDA's convention), so every
    address in it is one function in a profile rather than one ``module+0xOFFSET`` row per address. A row ends
    at its FDE's end or at the next symbol, whichever comes first.
    """
    if not bounds:
        return []
    import numpy as np

    top = np.uint64(2**64 - 1)
    fde = np.array(sorted(bounds.items()), dtype=np.uint64).reshape(-1, 2)
    fde_starts, fde_ends = fde[:, 0], fde[:, 1]
    sym_starts = np.asarray(starts, dtype=np.uint64)
    sym_reach = np.asarray(reach, dtype=np.uint64)
    before = np.searchsorted(sym_starts, fde_starts, side="right").astype(np.int64) - 1  # -1: before every symbol
    # A symbol (or its padding/FDE reach) that covers the function's entry names it; index -1 reads the 0 appended.
    covered = fde_starts < np.append(sym_reach, np.uint64(0))[before]
    nxt = np.append(sym_starts, top)[before + 1]
    ends = np.minimum(fde_ends, nxt)
    keep = ~covered & (ends > fde_starts)
    return [(start, end, end, f"sub_{start:x}", None)
            for start, end in zip(fde_starts[keep].tolist(), ends[keep].tolist(), strict=True)]


def _file_symbols(syms: list[tuple], strings: bytes) -> list[str | None]:
    """binutils' rule: a symbol's file is the last STT_FILE before it; for a global symbol only
    while no STT_FILE has followed another symbol (then the globals section has begun)."""
    out: list[str | None] = []
    current: str | None = None
    symbol_seen = file_after_symbol = False
    for index, (name_off, info, *_rest) in enumerate(syms):
        if info & 0xF == _STT_FILE:
            end = strings.find(b"\0", name_off)
            current = strings[name_off : end if end >= 0 else len(strings)].decode("utf-8", "surrogateescape")
            file_after_symbol = file_after_symbol or symbol_seen
            out.append(None)
            continue
        if index > 0:
            symbol_seen = True
        out.append(None if current is None or (info >> 4 != 0 and file_after_symbol) else current)
    return out


def _underscores(name: str) -> int:
    return len(name) - len(name.lstrip("_"))


def _plt_symbols(image: ElfImage) -> list[tuple[int, int, int, str, str | None, int]]:
    """Name PLT stubs ``sym@plt`` by decoding each stub's ``jmp *GOT(%rip)`` as objdump does."""
    got_names: dict[int, str] = {}
    dynsym = image.read_section(".dynsym")
    dynstr = image.read_section(".dynstr")
    if dynsym is None or dynstr is None:
        return []
    dynsyms = list(_SYM.iter_unpack(dynsym[: len(dynsym) - len(dynsym) % _SYM.size]))
    name_offsets = [rec[0] for rec in dynsyms]
    ifuncs: dict[int, str] | None = None
    for rela_name in (".rela.plt", ".rela.dyn"):
        raw = image.read_section(rela_name)
        if raw is None:
            continue
        for got, info, addend in _RELA.iter_unpack(raw[: len(raw) - len(raw) % _RELA.size]):
            sym_index = info >> 32
            if info & 0xFFFFFFFF == _R_X86_64_IRELATIVE:
                # libc's calls to its own ifuncs (memcpy, strlen, ...): no symbol, the addend is the resolver,
                # which is the ifunc symbol's value. objdump prints "*ABS*+0x9f550@plt"; name the target.
                ifuncs = _ifunc_names(dynsyms, dynstr) if ifuncs is None else ifuncs
                if addend in ifuncs:
                    got_names[got] = ifuncs[addend]
            elif 0 < sym_index < len(name_offsets):
                name_off = name_offsets[sym_index]
                end = dynstr.find(b"\0", name_off)
                name = dynstr[name_off:end].decode("utf-8", "surrogateescape")
                if name:
                    got_names[got] = name
    out: list[tuple[int, int, int, str, str | None, int]] = []
    for sec_name in (".plt", ".plt.sec", ".plt.got"):
        sec = image.sections.get(sec_name)
        code = image.read_section(sec_name)
        if sec is None or code is None:
            continue
        step = 8 if sec_name == ".plt.got" and sec.entsize == 8 else 16
        for entry in range(0, len(code) - step + 1, step):
            window = code[entry : entry + step]
            at = window.find(b"\xff\x25")
            if at < 0 or at + 6 > len(window):
                continue
            (disp,) = struct.unpack_from("<i", window, at + 2)
            got = sec.addr + entry + at + 6 + disp
            name = got_names.get(got)
            if name:
                out.append((sec.addr + entry, step, 1, f"{name}@plt", None, sec.addr + sec.size))
    return out


def _ifunc_names(syms: list[tuple], strings: bytes) -> dict[int, str]:
    """{resolver address: public name} of the STT_GNU_IFUNC symbols: of several names for one ifunc, the one
    with fewest leading underscores (mempcpy, not __mempcpy), then global over weak, then table order."""
    best: dict[int, tuple[tuple[int, int], str]] = {}
    for name_off, info, _other, shndx, value, _size in syms:
        if info & 0xF != _STT_GNU_IFUNC or shndx == _SHN_UNDEF or not value:
            continue
        end = strings.find(b"\0", name_off)
        name = strings[name_off : end if end >= 0 else len(strings)].decode("utf-8", "surrogateescape")
        rank = (_underscores(name), 0 if info >> 4 == _STB_GLOBAL else 1)
        if name and (value not in best or rank < best[value][0]):
            best[value] = (rank, name)
    return {value: name for value, (_rank, name) in best.items()}


