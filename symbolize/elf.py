"""ELF facts the symbolizer and the probe code need: load segments, build-id, debuglink, symbols, PLT.

pyelftools parses the headers; the symbol tables are read straight into numpy arrays because a
large library has tens of thousands of symbols and per-symbol Python objects cost seconds.
"""

from __future__ import annotations

import difflib
import functools
import os
import struct
from dataclasses import dataclass

import numpy as np

from hwprof.errors import HwprofError
from hwprof.units import Address, FileOffset

_SYM_DTYPE = np.dtype(
    [("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"), ("size", "<u8")]
)
_STT_NOTYPE, _STT_FUNC, _STT_GNU_IFUNC = 0, 2, 10
_STB_LOCAL, _STB_GLOBAL, _STB_WEAK = 0, 1, 2
_SHF_EXECINSTR = 0x4
_SHN_UNDEF, _SHN_LORESERVE = 0, 0xFF00
# gcc aligns functions to at most 64 bytes: an address this close past a symbol's end is its padding,
# and addr2line names such addresses after the symbol before them too.
_PADDING_SLACK = 64


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


class ElfImage:
    """The parts of one ELF file that symbolization needs, read once."""

    def __init__(self, path: str) -> None:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = path
        try:
            with open(path, "rb") as stream:
                elf = ELFFile(stream)
                if elf.elfclass != 64 or not elf.little_endian:
                    raise ElfError(f"{path}: only 64-bit little-endian ELF is supported")
                self.elf_type = elf["e_type"]
                self.machine = elf["e_machine"]
                self.segments = tuple(
                    LoadSegment(
                        seg["p_offset"], seg["p_vaddr"], seg["p_filesz"], seg["p_memsz"], bool(seg["p_flags"] & 1)
                    )
                    for seg in elf.iter_segments()
                    if seg["p_type"] == "PT_LOAD"
                )
                self.sections: dict[str, SectionInfo] = {}
                self._section_list: list[SectionInfo] = []
                for sec in elf.iter_sections():
                    info = SectionInfo(
                        sec.name,
                        sec["sh_addr"],
                        sec["sh_offset"],
                        sec["sh_size"],
                        sec["sh_flags"],
                        sec["sh_entsize"],
                        sec["sh_type"],
                    )
                    self.sections.setdefault(sec.name, info)
                    self._section_list.append(info)
                self.build_id = _build_id_of(elf)
                self.debuglink = _debuglink_of(elf)
        except (ELFError, OSError, ValueError, struct.error, KeyError, AttributeError, IndexError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise ElfError(f"{path}: no such file") from exc
            raise ElfError(f"{path}: not a readable ELF file ({exc})") from exc

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
        offsets = np.asarray(offsets, dtype=np.uint64)
        vaddrs = np.zeros_like(offsets)
        found = np.zeros(offsets.shape, dtype=bool)
        for seg in self.segments:
            inside = (offsets >= seg.offset) & (offsets < seg.offset + max(seg.filesz, 1)) & ~found
            vaddrs[inside] = offsets[inside] - np.uint64(seg.offset) + np.uint64(seg.vaddr)
            found |= inside
        return vaddrs, found

    def vaddr_to_offset(self, vaddrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vaddrs = np.asarray(vaddrs, dtype=np.uint64)
        offsets = np.zeros_like(vaddrs)
        found = np.zeros(vaddrs.shape, dtype=bool)
        for seg in self.segments:
            inside = (vaddrs >= seg.vaddr) & (vaddrs < seg.vaddr + max(seg.memsz, 1)) & ~found
            offsets[inside] = vaddrs[inside] - np.uint64(seg.vaddr) + np.uint64(seg.offset)
            found |= inside
        return offsets, found

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
    def symbols(self) -> SymbolTable:
        return SymbolTable.from_image(self)


def _build_id_of(elf) -> bytes | None:
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_NOTE":
            continue
        for note in sec.iter_notes():
            if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                return bytes.fromhex(note["n_desc"])
    return None


def _debuglink_of(elf) -> tuple[str, int] | None:
    sec = elf.get_section_by_name(".gnu_debuglink")
    if sec is None:
        return None
    data = sec.data()
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

    @classmethod
    def empty(cls) -> SymbolTable:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64), ())

    @classmethod
    def from_image(cls, image: ElfImage) -> SymbolTable:
        rows: list[tuple[int, int, int, str]] = []  # (addr, size, preference, name)
        exec_sections = {i for i, sec in enumerate(image._section_list) if sec.flags & _SHF_EXECINSTR}
        for table, strtab in ((".symtab", ".strtab"), (".dynsym", ".dynstr")):
            raw = image.read_section(table)
            strings = image.read_section(strtab)
            if raw is None or strings is None:
                continue
            syms = np.frombuffer(raw, dtype=_SYM_DTYPE, count=len(raw) // _SYM_DTYPE.itemsize)
            kind = syms["info"] & 0xF
            shndx = syms["shndx"].astype(np.int64)
            is_code = (kind == _STT_FUNC) | (kind == _STT_GNU_IFUNC)
            in_exec = np.isin(shndx, np.fromiter(exec_sections, dtype=np.int64, count=len(exec_sections)))
            keep = (is_code | ((kind == _STT_NOTYPE) & in_exec)) & (shndx != _SHN_UNDEF)
            keep &= (shndx < _SHN_LORESERVE) & (syms["value"] != 0) & (syms["name"] != 0)
            for rec in syms[keep]:
                start = int(rec["name"])
                end = strings.find(b"\0", start)
                name = strings[start : end if end >= 0 else len(strings)].decode("utf-8", "surrogateescape")
                if not name or name.startswith("$"):
                    continue
                k, b = int(rec["info"]) & 0xF, int(rec["info"]) >> 4
                pref = (2 if k in (_STT_FUNC, _STT_GNU_IFUNC) else 0) + {_STB_GLOBAL: 2, _STB_WEAK: 1}.get(b, 0)
                rows.append((int(rec["value"]), int(rec["size"]), pref, name))
        rows.extend(_plt_symbols(image))
        if not rows:
            return cls.empty()
        # Aliases at one address: keep the one perf would choose (function, global, sized, fewest underscores).
        rows.sort(key=lambda r: (r[0], -r[2], r[1] == 0, _underscores(r[3]), -len(r[3])))
        starts, sizes, names = [], [], []
        last = None
        for addr, size, _pref, name in rows:
            if addr == last:
                continue
            last = addr
            starts.append(addr)
            sizes.append(size)
            names.append(name)
        start_arr = np.array(starts, dtype=np.uint64)
        size_arr = np.array(sizes, dtype=np.uint64)
        nxt = np.append(start_arr[1:], np.uint64(2**64 - 1))
        ends = np.where(size_arr > 0, start_arr + size_arr, nxt)
        return cls(start_arr, ends, tuple(names))

    def lookup(self, vaddrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the symbol covering each address (or -1), and the offset into it."""
        vaddrs = np.asarray(vaddrs, dtype=np.uint64)
        if len(self.starts) == 0:
            return np.full(vaddrs.shape, -1, np.int64), np.zeros(vaddrs.shape, np.uint64)
        idx = np.searchsorted(self.starts, vaddrs, side="right").astype(np.int64) - 1
        safe = np.maximum(idx, 0)
        nxt = np.append(self.starts[1:], np.uint64(2**64 - 1))[safe]
        end = self.ends[safe]
        slack_end = np.minimum(nxt, end + np.uint64(_PADDING_SLACK))
        ok = (idx >= 0) & ((vaddrs < end) | (vaddrs < slack_end))
        idx = np.where(ok, idx, -1)
        return idx, np.where(ok, vaddrs - self.starts[safe], 0)


def _underscores(name: str) -> int:
    return len(name) - len(name.lstrip("_"))


def _plt_symbols(image: ElfImage) -> list[tuple[int, int, int, str]]:
    """Name PLT stubs ``sym@plt`` by decoding each stub's ``jmp *GOT(%rip)`` as objdump does."""
    got_names: dict[int, str] = {}
    dynsym = image.read_section(".dynsym")
    dynstr = image.read_section(".dynstr")
    if dynsym is None or dynstr is None:
        return []
    syms = np.frombuffer(dynsym, dtype=_SYM_DTYPE, count=len(dynsym) // _SYM_DTYPE.itemsize)
    rela_dtype = np.dtype([("offset", "<u8"), ("info", "<u8"), ("addend", "<i8")])
    for rela_name in (".rela.plt", ".rela.dyn"):
        raw = image.read_section(rela_name)
        if raw is None:
            continue
        for rel in np.frombuffer(raw, dtype=rela_dtype, count=len(raw) // rela_dtype.itemsize):
            sym_index = int(rel["info"]) >> 32
            if sym_index == 0 or sym_index >= len(syms):
                continue
            start = int(syms[sym_index]["name"])
            end = dynstr.find(b"\0", start)
            name = dynstr[start:end].decode("utf-8", "surrogateescape")
            if name:
                got_names[int(rel["offset"])] = name
    out: list[tuple[int, int, int, str]] = []
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
                out.append((sec.addr + entry, step, 1, f"{name}@plt"))
    return out


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
    image = _image_or_error(path)
    vaddrs, found = image.offset_to_vaddr(np.array([off], dtype=np.uint64))
    if not found[0]:
        raise HwprofError(f"{path}: file offset {off:#x} is not inside any loadable segment")
    return int(vaddrs[0])


def vaddr_to_file_offset(path: str, vaddr: Address) -> FileOffset:
    image = _image_or_error(path)
    offsets, found = image.vaddr_to_offset(np.array([vaddr], dtype=np.uint64))
    if not found[0]:
        raise HwprofError(f"{path}: address {vaddr:#x} is not inside any loadable segment")
    return int(offsets[0])


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
    if len(matches) > 1:
        alternatives = ", ".join(sorted({table.names[i] for i in matches})[:5])
        raise HwprofError(f"{path}: {symbol!r} is ambiguous; give the mangled name, one of: {alternatives}")
    if not matches:
        pool = sorted(set(table.names) | set(demangled))
        close = difflib.get_close_matches(symbol, pool, n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise HwprofError(f"{path}: no function symbol {symbol!r}{hint}")
    return vaddr_to_file_offset(path, int(table.starts[matches[0]]))
