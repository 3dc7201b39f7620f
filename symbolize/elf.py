"""ELF facts the symbolizer and the probe code need: load segments, build-id, debuglink, symbols, PLT.

The symbol tables are read straight into numpy arrays because a large library has tens of
thousands of symbols and per-symbol Python objects cost seconds.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import struct
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwprof.errors import HwprofError
from hwprof.units import Address, FileOffset

if TYPE_CHECKING:
    import numpy as np



_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size
_RELA = struct.Struct("<QQq")  # Elf64_Rela: offset, info, addend
_STT_NOTYPE, _STT_FUNC, _STT_FILE, _STT_GNU_IFUNC = 0, 2, 4, 10
_STB_GLOBAL, _STB_WEAK = 1, 2
_SHF_EXECINSTR = 0x4
_SHN_UNDEF, _SHN_LORESERVE = 0, 0xFF00
_R_X86_64_IRELATIVE = 37
# gcc aligns functions to at most 64 bytes: an address this close past a symbol's end is its padding,
# and addr2line names such addresses after the symbol before them too.
_PADDING_SLACK = 64
_CXX_COMPLETE_OBJECT = re.compile(r"[CD]1(?=[EI])")


class ElfError(Exception):
    """The file is not an ELF file we can read; callers degrade to module+offset."""


@dataclass(frozen=True)
class LoadSegment:
    offset: FileOffset
    vaddr: Address
    filesz: int
    memsz: int
    executable: bool


@dataclass(frozen=True)
class SectionInfo:
    name: str
    addr: Address
    offset: FileOffset
    size: int
    flags: int
    entsize: int
    type: str


_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_PT_LOAD = 1
_SECTION_TYPES = {1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 7: "SHT_NOTE", 8: "SHT_NOBITS",
                  11: "SHT_DYNSYM"}
_NT_GNU_BUILD_ID = 3


class ElfImage:
    """The parts of one ELF file that symbolization needs, read once.

    Headers are decoded with ``struct`` rather than pyelftools: only the ELF64 header, program and
    section headers and two notes are needed, and skipping pyelftools' import and object model
    saves a third of a warm ``hwprof addr2line`` run. Every read is bounds-checked, so a truncated
    or corrupt file raises ElfError instead of returning garbage.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, "rb") as stream:
                self._parse(stream, os.fstat(stream.fileno()).st_size)
        except FileNotFoundError as exc:
            raise ElfError(f"{path}: no such file") from exc
        except IsADirectoryError as exc:
            raise ElfError(f"{path}: is a directory") from exc
        except OSError as exc:
            raise ElfError(f"{path}: {exc.strerror or exc}") from exc
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ElfError(f"{path}: not a readable ELF file ({exc})") from exc

    def _parse(self, stream, file_size: int) -> None:
        def read_at(offset: int, size: int) -> bytes:
            if offset < 0 or size < 0 or offset + size > file_size:
                raise ElfError(f"{self.path}: truncated ELF file (needs bytes {offset:#x}+{size:#x})")
            stream.seek(offset)
            return stream.read(size)

        ident = read_at(0, 16) if file_size >= 16 else b""
        if ident[:4] != b"\x7fELF":
            raise ElfError(f"{self.path}: not an ELF file")
        if ident[4] != 2 or ident[5] != 1:
            raise ElfError(f"{self.path}: only 64-bit little-endian ELF is supported")
        (_, e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, e_shentsize, e_shnum,
         e_shstrndx) = _EHDR.unpack(read_at(0, _EHDR.size))
        self.elf_type = e_type
        self.machine = e_machine
        segments = []
        if e_phnum and e_phentsize >= _PHDR.size:
            table = read_at(e_phoff, e_phnum * e_phentsize)
            for i in range(e_phnum):
                p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = _PHDR.unpack_from(table, i * e_phentsize)
                if p_type == _PT_LOAD:
                    segments.append(LoadSegment(p_offset, p_vaddr, p_filesz, p_memsz, bool(p_flags & 1)))
        self.segments = tuple(segments)
        self.sections: dict[str, SectionInfo] = {}
        self._section_list: list[SectionInfo] = []
        raw_sections = []
        if e_shnum and e_shentsize >= _SHDR.size:
            table = read_at(e_shoff, e_shnum * e_shentsize)
            raw_sections = [_SHDR.unpack_from(table, i * e_shentsize) for i in range(e_shnum)]
        names = b""
        if raw_sections and e_shstrndx < len(raw_sections):
            strtab = raw_sections[e_shstrndx]
            names = read_at(strtab[4], strtab[5]) if strtab[1] != 8 else b""
        for sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, _, _, _, sh_entsize in raw_sections:
            end = names.find(b"\0", sh_name)
            name = names[sh_name : end if end >= 0 else len(names)].decode("utf-8", "replace")
            info = SectionInfo(name, sh_addr, sh_offset, sh_size, sh_flags, sh_entsize,
                               _SECTION_TYPES.get(sh_type, f"SHT_{sh_type:#x}"))
            self.sections.setdefault(name, info)
            self._section_list.append(info)
        self.build_id = None
        for sec in self._section_list:
            if sec.type == "SHT_NOTE" and self.build_id is None and sec.size < (1 << 20):
                self.build_id = _build_id_in_notes(read_at(sec.offset, sec.size))
        self.debuglink = None
        link = self.sections.get(".gnu_debuglink")
        if link is not None and link.type != "SHT_NOBITS" and link.size < 4096:
            self.debuglink = _parse_debuglink(read_at(link.offset, link.size))

    @property
    def has_dwarf(self) -> bool:
        return ".debug_info" in self.sections or ".zdebug_info" in self.sections

    @property
    def has_symtab(self) -> bool:
        return ".symtab" in self.sections

    @property
    def is_stripped_of_code(self) -> bool:
        """A separate debug file: sections are NOBITS placeholders, only symbols and DWARF are real."""
        text = self.sections.get(".text")
        return text is not None and text.type == "SHT_NOBITS"

    @property
    def load_bias(self) -> Address:
        """The address DWARF lookups are relative to: the lowest PT_LOAD vaddr (0 for PIE/DSOs)."""
        return min((s.vaddr for s in self.segments), default=0)

    def section_at(self, vaddr: Address) -> SectionInfo | None:
        for sec in self._section_list:
            if sec.flags & 0x2 and sec.addr <= vaddr < sec.addr + sec.size:
                return sec
        return None

    def offset_to_vaddr(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised PT_LOAD rule; returns (vaddrs, mask of offsets that lie in a loaded segment)."""
        import numpy as np

        offsets = np.asarray(offsets, dtype=np.uint64)
        vaddrs = np.zeros_like(offsets)
        found = np.zeros(offsets.shape, dtype=bool)
        for seg in self.segments:
            inside = (offsets >= seg.offset) & (offsets < seg.offset + max(seg.filesz, 1)) & ~found
            vaddrs[inside] = offsets[inside] - np.uint64(seg.offset) + np.uint64(seg.vaddr)
            found |= inside
        return vaddrs, found

    def vaddr_to_offset(self, vaddrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        vaddrs = np.asarray(vaddrs, dtype=np.uint64)
        offsets = np.zeros_like(vaddrs)
        found = np.zeros(vaddrs.shape, dtype=bool)
        for seg in self.segments:
            inside = (vaddrs >= seg.vaddr) & (vaddrs < seg.vaddr + max(seg.memsz, 1)) & ~found
            offsets[inside] = vaddrs[inside] - np.uint64(seg.vaddr) + np.uint64(seg.offset)
            found |= inside
        return offsets, found

    def offset_to_vaddr_one(self, offset: FileOffset) -> Address | None:
        for seg in self.segments:
            if seg.offset <= offset < seg.offset + max(seg.filesz, 1):
                return offset - seg.offset + seg.vaddr
        return None

    def vaddr_to_offset_one(self, vaddr: Address) -> FileOffset | None:
        for low, high, delta in self._vaddr_spans:
            if low <= vaddr < high:
                return vaddr + delta
        return None

    @functools.cached_property
    def _vaddr_spans(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((s.vaddr, s.vaddr + max(s.memsz, 1), s.offset - s.vaddr) for s in self.segments)

    def read_section(self, name: str) -> bytes | None:
        sec = self.sections.get(name)
        if sec is None or sec.type == "SHT_NOBITS":
            return None
        with open(self.path, "rb") as stream:
            stream.seek(sec.offset)
            data = stream.read(sec.size)
        if len(data) != sec.size:
            raise ElfError(f"{self.path}: section {name} is truncated")
        return data

    @functools.cached_property
    def function_bounds(self) -> dict[int, int]:
        """{start: end} of every function .eh_frame describes (one FDE each), through the .eh_frame_hdr table.

        Only the encodings GNU ld and lld write are read: the header's eh_frame_ptr pcrel|sdata4, fde_count
        udata4, table datarel|sdata4, and FDEs whose pc_begin, read as pcrel|sdata4, equals the table's entry
        (then pc_range is the next 4 bytes). Anything else yields no bounds rather than wrong ones.
        """
        hdr, raw = self.sections.get(".eh_frame_hdr"), self.read_section(".eh_frame_hdr")
        frame, frames = self.sections.get(".eh_frame"), self.read_section(".eh_frame")
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

    @functools.cached_property
    def symbols(self) -> SymbolTable:
        return SymbolTable.from_image(self)


def _build_id_in_notes(data: bytes) -> bytes | None:
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        if desc_at + descsz > len(data):
            return None
        if kind == _NT_GNU_BUILD_ID and data[name_at : name_at + namesz].rstrip(b"\0") == b"GNU":
            return data[desc_at : desc_at + descsz] or None
        pos = desc_at + ((descsz + 3) & ~3)
    return None


def _parse_debuglink(data: bytes) -> tuple[str, int] | None:
    end = data.find(b"\0")
    if end <= 0:
        return None
    crc_at = (end + 4) & ~3
    if crc_at + 4 > len(data):
        return None
    (crc,) = struct.unpack_from("<I", data, crc_at)
    return data[:end].decode("utf-8", "surrogateescape"), crc


@dataclass(frozen=True)
class SymbolTable:
    """Function symbols sorted by address; ``names`` are raw (mangled) strings."""

    starts: np.ndarray  # uint64 vaddr
    ends: np.ndarray  # uint64, exclusive; zero-size symbols extend to the next symbol
    names: tuple[str, ...]
    # Source file from the STT_FILE symbol before a local symbol, as binutils reports it when
    # there is no DWARF ("crtstuff.c:?"); None when unknown.
    files: tuple[str | None, ...] = ()
    # Every name of an address that has several (C++ D1/D2 destructors, ICF-folded functions).
    aliases: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # How far each symbol claims addresses: its end, stretched over alignment padding up to the next
    # symbol but never past its own section (addr2line names padding after the symbol before it).
    reach: np.ndarray | None = None
    # Starts of the rows no symbol names, only an .eh_frame FDE: their names are ``sub_<start>`` (IDA's
    # convention), which a profile shows so one function's addresses group together, but DWARF's name and
    # a debug file's .symtab take precedence, and addr2line prints ``??`` there as binutils does.
    unnamed: frozenset[int] = frozenset()

    @classmethod
    def empty(cls) -> SymbolTable:
        return cls(array("Q"), array("Q"), (), (), {}, array("Q"))

    def file_of(self, index: int) -> str | None:
        return self.files[index] if index < len(self.files) else None

    def is_unnamed(self, index: int) -> bool:
        """True for a ``sub_<start>`` row: a function only .eh_frame knows of."""
        return bool(self.unnamed) and int(self.starts[index]) in self.unnamed

    @classmethod
    def from_image(cls, image: ElfImage) -> SymbolTable:
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
        fde_ends = image.function_bounds if not image.has_symtab else None
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
        unnamed = _unnamed_functions(image.function_bounds, starts, reach)
        if unnamed:
            rows_out = sorted(rows_out + unnamed, key=lambda row: row[0])
        return cls(array("Q", [r[0] for r in rows_out]), array("Q", [r[1] for r in rows_out]),
                   tuple(r[3] for r in rows_out), tuple(r[4] for r in rows_out),
                   {addr: tuple(group) for addr, group in aliases.items() if len(group) > 1},
                   array("Q", [r[2] for r in rows_out]), frozenset(r[0] for r in unnamed))

    def lookup_one(self, vaddr: int) -> tuple[int, int]:
        """Scalar lookup for small batches that should not pay for importing numpy."""
        idx = bisect.bisect_right(self.starts, vaddr) - 1
        if idx < 0:
            return -1, 0
        reach = self.reach if self.reach is not None else self.ends
        if vaddr < reach[idx]:
            return idx, vaddr - int(self.starts[idx])
        return -1, 0

    def lookup(self, vaddrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the symbol covering each address (or -1), and the offset into it."""
        import numpy as np

        vaddrs = np.asarray(vaddrs, dtype=np.uint64)
        if len(self.starts) == 0:
            return np.full(vaddrs.shape, -1, np.int64), np.zeros(vaddrs.shape, np.uint64)
        starts = np.asarray(self.starts, dtype=np.uint64)
        idx = np.searchsorted(starts, vaddrs, side="right").astype(np.int64) - 1
        safe = np.maximum(idx, 0)
        reach = np.asarray(self.reach if self.reach is not None else self.ends, dtype=np.uint64)
        ok = (idx >= 0) & (vaddrs < reach[safe])
        idx = np.where(ok, idx, -1)
        return idx, np.where(ok, vaddrs - starts[safe], 0)


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


@functools.lru_cache(maxsize=64)
def _image_cached(path: str, size: int, mtime_ns: int) -> ElfImage:
    return ElfImage(path)


def open_image(path: str) -> ElfImage:
    """An ElfImage, re-read only when the file changed. Raises ElfError."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ElfError(f"{path}: {exc.strerror or exc}") from exc
    return _image_cached(path, st.st_size, st.st_mtime_ns)


def _image_or_error(path: str) -> ElfImage:
    try:
        return open_image(path)
    except ElfError as exc:
        raise HwprofError(str(exc)) from exc


def read_build_id(path: str) -> bytes | None:
    """The .note.gnu.build-id of an ELF file; None when it has none or cannot be read."""
    try:
        return open_image(path).build_id
    except ElfError:
        return None


def file_offset_to_vaddr(path: str, off: FileOffset) -> Address:

    vaddr = _image_or_error(path).offset_to_vaddr_one(off)
    if vaddr is None:
        raise HwprofError(f"{path}: file offset {off:#x} is not inside any loadable segment")
    return vaddr


def vaddr_to_file_offset(path: str, vaddr: Address) -> FileOffset:

    offset = _image_or_error(path).vaddr_to_offset_one(vaddr)
    if offset is None:
        raise HwprofError(f"{path}: address {vaddr:#x} is not inside any loadable segment")
    return offset


def symbol_file_offset(path: str, symbol: str) -> FileOffset:
    """File offset of a function symbol, for uprobes (the PT_LOAD rule, as perf probe computes it).

    Accepts the mangled name, the full demangled name, or the demangled name without its parameter
    list when that is unambiguous.
    """
    from hwprof.symbolize.demangle import demangle

    image = _image_or_error(path)
    table = image.symbols
    if not table.names:
        raise HwprofError(f"{path}: has no symbol table (stripped?); give an address instead")
    matches = [i for i, name in enumerate(table.names) if name == symbol]
    demangled = [demangle(name) for name in table.names]
    if not matches:
        matches = [i for i, name in enumerate(demangled) if name == symbol]
    if not matches:
        matches = [i for i, name in enumerate(demangled) if name.split("(", 1)[0] == symbol]
    if not matches:
        # An alias (libc's nanosleep for __nanosleep): the table names each address once, so look at the rest.
        alias_of = {name: addr for addr, group in table.aliases.items() for name in group}
        if symbol in alias_of:
            return vaddr_to_file_offset(path, alias_of[symbol])
    if len(matches) > 1:
        # foo.cold / foo.part.0 are pieces of foo, not candidates of their own.
        whole = [i for i in matches if "." not in table.names[i]]
        matches = whole or matches
    if len(matches) > 1:
        alternatives = ", ".join(sorted({table.names[i] for i in matches})[:5])
        raise HwprofError(f"{path}: {symbol!r} is ambiguous; give the mangled name, one of: {alternatives}")
    if not matches:
        aliases = {name for group in table.aliases.values() for name in group}
        pool = sorted(set(table.names) | aliases | set(demangled) | {name.split("(", 1)[0] for name in demangled})
        import difflib

        close = difflib.get_close_matches(symbol, pool, n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise HwprofError(f"{path}: no function symbol {symbol!r}{hint}")
    return vaddr_to_file_offset(path, int(table.starts[matches[0]]))
