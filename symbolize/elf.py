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
    def function_bound_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of every function .eh_frame describes (one FDE each), sorted by start, read through the
        .eh_frame_hdr search table (symbol_build.function_bounds says which encodings)."""
        from hwprof.symbolize.symbol_build import function_bounds

        hdr, raw = self.sections.get(".eh_frame_hdr"), self.read_section(".eh_frame_hdr")
        frame, frames = self.sections.get(".eh_frame"), self.read_section(".eh_frame")
        if hdr is None or raw is None or frame is None or frames is None:
            return function_bounds(0, b"", 0, b"")
        return function_bounds(hdr.addr, raw, frame.addr, frames)

    @property
    def function_bounds(self) -> dict[int, int]:
        """{start: end} of every function .eh_frame describes."""
        starts, ends = self.function_bound_columns
        return dict(zip(starts.tolist(), ends.tolist(), strict=True))

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
        """The code symbols of .symtab and .dynsym, the PLT stubs and the functions only .eh_frame describes.

        - A code symbol: STT_FUNC or STT_GNU_IFUNC, or STT_NOTYPE in an executable section, defined (not
          SHN_UNDEF, not a special section index), at a non-zero address, named, not a mapping symbol ("$x");
          a .symver suffix ("pow@@GLIBC_2.29") is not part of the name.
        - Its source file: the STT_FILE before it, as binutils reports it when there is no DWARF ("crtstuff.c:?").
        - PLT stubs are ``sym@plt``, named through the relocation of the GOT slot their jump reads (objdump's rule).
        - Aliases at one address: a function over a label, global over weak over local, sized, fewest leading
          underscores (as perf does), not a C++ complete-object C1/D1 (it aliases the C2/D2 DWARF describes), then
          the first in table order (as binutils does); every other distinct name is kept in ``aliases``.
        - Extents and the ``sub_<start>`` rows: symbol_build._extents and _unnamed_functions.

        Built with numpy column operations (symbol_build): node has 185k symbols, and per-symbol Python made the
        first sight of a large binary cost seconds.
        """
        from hwprof.symbolize.symbol_build import build_symbol_table

        return build_symbol_table(image)

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
