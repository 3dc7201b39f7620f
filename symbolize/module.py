"""One binary's lookup index: ELF symbols joined with DWARF inline chains, cached on disk.

DWARF gives file, line and the inline chain; the ELF symbol table names what DWARF lacks
(assembly, stripped objects, PLT stubs) and gives symbol offsets. The expensive part -- the DWARF
index -- is stored under the cache directory keyed by the binary's and the debug file's identity: build-id and size
when they carry one (copies of one library at other paths share the entry), else path, size and mtime, so any change
to either rebuilds it.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import mmap
import os
import re
from array import array
from typing import TYPE_CHECKING

from hwprof.symbolize.dwarf_index import DwarfIndex, DwarfIndexError, Location, build_symcache
from hwprof.symbolize.elf import _CXX_COMPLETE_OBJECT, ElfImage, SymbolTable
from hwprof.symbolize.frame import SymbolizedFrame, make_frame
from hwprof.symbolize.packed import NO_STRING, IndexedStrings, PackedStrings

if TYPE_CHECKING:
    import numpy as np

Chain = tuple[SymbolizedFrame, ...]

log = logging.getLogger("hwprof.symbolize")

# GCC's names for the parts and clones of a function: DWARF names the function without them.
_CLONE_SUFFIX = re.compile(r"(\.(cold|part|isra|constprop|lto_priv|localalias|llvm|clone|str)(\.\d+)?)+$")
_CACHE_VERSION = "2"
_SYMBOLS_MAGIC = b"HWSYMS06"  # 04: sub_<start> rows for functions only .eh_frame describes; 06: packed names


def _same(name: str | None) -> str | None:
    return name


@functools.cache
def _demangling(rename):
    def fix(name: str | None) -> str | None:
        if name is None or name[:2] not in ("_Z", "_R"):
            return name
        return rename(name)

    return fix


def strip_clone_suffix(name: str) -> str:
    return _CLONE_SUFFIX.sub("", name)


def default_cache_dir() -> str:
    explicit = os.environ.get("HWPROF_CACHE_DIR")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "hwprof")


def _identity(path: str, build_id: bytes | None) -> str:
    """What a cache entry made from this file is keyed by. A file carrying `build_id`: the build-id and its size, so
    every copy of one binary (each virtualenv's numpy, a container's libc) shares one entry, while a stripped and an
    unstripped file of one build-id (different sizes) do not. Any other file: its real path, size and mtime."""
    from hwprof.symbolize.elf import read_build_id

    st = os.stat(path)
    if build_id and read_build_id(path) == build_id:
        return f"build-id:{build_id.hex()}:{st.st_size}"
    return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"


def cache_path(cache_dir: str, build_id: bytes | None, binary: str, debug_file: str | None,
               suffix: str = ".symc") -> str:
    """The cache file for what is built from `binary` and its `debug_file` (see _identity for the key)."""
    binary_id = _identity(binary, build_id) if os.path.exists(binary) else binary
    debug_id = _identity(debug_file, build_id) if debug_file else "-"
    digest = hashlib.sha1(f"{_CACHE_VERSION}|{binary_id}|{debug_id}".encode()).hexdigest()[:16]
    stem = build_id.hex() if build_id else "nobuildid"
    return os.path.join(cache_dir, "symbolize", f"{stem}-{digest}{suffix}")


def load_or_build_symbols(binary: str, image: ElfImage | None, debug_file: str | None,
                          debug_image: ElfImage | None, build_id: bytes | None,
                          cache_dir: str | None) -> SymbolTable:
    """The merged ELF symbol table, from the cache when present (no numpy needed to load it)."""
    path = cache_path(cache_dir, build_id, binary, debug_file, ".syms") if cache_dir else None
    if path is not None:
        try:
            return _decode_symbols(map_file(path))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("ignoring unreadable symbol cache %s: %s", path, exc)
    encoded = _encode_symbols(_merge_symbols(image, debug_image))
    if path is not None:
        _write_atomically(path, encoded)
    for parsed in (image, debug_image):
        if parsed is not None:
            # The parse's tuples of names and the .eh_frame bounds go; the packed table below is what stays (a
            # long-lived symbolizer keeps the images, hwprof agent for days).
            parsed.__dict__.pop("symbols", None)
            parsed.__dict__.pop("function_bound_columns", None)
    if path is not None:
        try:
            return _decode_symbols(map_file(path))  # only the pages lookups touch stay resident
        except (OSError, ValueError):
            pass  # not written (a read-only cache directory): the bytes themselves
    return _decode_symbols(encoded)


def _encode_symbols(table: SymbolTable) -> bytes:
    """The cache form of a symbol table: the three address columns, the names packed (PackedStrings: start and end
    columns, one UTF-8 buffer at the end), each row's source file as an index into the distinct files, JSON."""
    import json

    import numpy as np

    count = len(table.starts)
    reach = table.reach if table.reach is not None else table.ends
    names = table.names if isinstance(table.names, PackedStrings) else PackedStrings.pack(list(table.names))
    if isinstance(table.files, IndexedStrings) and len(table.files) == count:  # a freshly built table's column
        distinct, file_index = list(table.files.distinct), table.files.index_column
    else:
        files = list(table.files) if table.files else [None] * count
        first_row: dict[str, int] = {}
        file_index = [NO_STRING if f is None else first_row.setdefault(f, len(first_row)) for f in files]
        distinct = list(first_row)
    aliases = [[addr, list(group)] for addr, group in table.aliases.items()]
    meta = json.dumps({"files": distinct, "aliases": aliases, "unnamed": sorted(table.unnamed)},
                      ensure_ascii=False).encode("utf-8", "surrogateescape")
    parts = [_SYMBOLS_MAGIC, count.to_bytes(8, "little")]
    for column in (table.starts, table.ends, reach, names.starts, names.ends):
        parts.append(np.asarray(column, dtype="<u8").tobytes())
    index_bytes = np.asarray(file_index, dtype="<u4").tobytes()
    parts += [index_bytes, b"\0" * (-len(index_bytes) % 8), len(meta).to_bytes(8, "little"), meta, bytes(names.data)]
    return b"".join(parts)


def _decode_symbols(data: bytes | mmap.mmap) -> SymbolTable:
    """A cached table whose columns and names stay in `data` (a mapped file: only what lookups touch is read)."""
    import json

    view = memoryview(data)
    if bytes(view[:8]) != _SYMBOLS_MAGIC:
        raise ValueError("not a symbol cache")
    count = int.from_bytes(view[8:16], "little")
    at = 16

    def column(width: int, n: int, code: str) -> memoryview:
        nonlocal at
        part = view[at:at + width * n]
        if len(part) != width * n:
            raise ValueError("truncated symbol cache")
        at += width * n + (-(width * n) % 8)
        return part.cast(code)

    starts, ends, reach, name_starts, name_ends = (column(8, count, "Q") for _ in range(5))
    file_index = column(4, count, "I")
    meta_size = int.from_bytes(view[at:at + 8], "little")
    meta = json.loads(str(view[at + 8:at + 8 + meta_size], "utf-8", "surrogateescape"))
    blob = view[at + 8 + meta_size:]
    if count and (name_ends[count - 1] > len(blob) or name_starts[0] > name_ends[0]):
        raise ValueError("inconsistent symbol cache")
    files = IndexedStrings(tuple(meta["files"]), file_index)
    if any(k != NO_STRING and k >= len(files.distinct) for k in set(file_index)):
        raise ValueError("inconsistent symbol cache")
    aliases = {addr: tuple(group) for addr, group in meta["aliases"]}
    return SymbolTable(starts, ends, PackedStrings(blob, name_starts, name_ends), files, aliases, reach,
                       frozenset(meta["unnamed"]))


def load_or_build_dwarf(binary: str, debug_file: str, build_id: bytes | None, cache_dir: str | None,
                        label: str) -> tuple[DwarfIndex, bool]:
    """The DWARF index of ``debug_file``, from the cache when present; (index, was_cached)."""
    path = cache_path(cache_dir, build_id, binary, debug_file) if cache_dir else None
    if path is not None:
        try:
            return DwarfIndex(map_file(path)), True
        except FileNotFoundError:
            pass
        except (OSError, ValueError, DwarfIndexError) as exc:
            log.debug("ignoring unreadable index cache %s: %s", path, exc)
    from hwprof.symbolize.progress import Progress

    with Progress(label):
        data = build_symcache(debug_file)
    index = DwarfIndex(data)
    if path is not None:
        _write_atomically(path, data)
    return index, False


def map_file(path: str) -> mmap.mmap:
    """A cache file mapped read-only instead of read: lookups touch a few of its pages, so a long-lived symbolizer
    (hwprof agent) holds only those in memory, and the kernel may drop them again (a browser's index is 30 MB).
    The cache is written atomically (rename), so a mapped file never changes under the mapping."""
    with open(path, "rb") as stream:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_RANDOM)  # lookups jump around: no read-ahead around each page they touch
    return mapped


def _write_atomically(path: str, data: bytes) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot write index cache %s: %s", path, exc)


class ModuleIndex:
    """Bulk address -> inline chain for one binary (addresses are the binary's own vaddrs)."""

    def __init__(self, symbols: SymbolTable, dwarf: DwarfIndex | None, dwarf_bias: int) -> None:
        self.symbols = symbols
        self.dwarf = dwarf
        self._bias = dwarf_bias

    def frames(self, vaddrs: np.ndarray, offsets: list[int], module: str, rename=None) -> list[Chain]:
        """One chain of SymbolizedFrames per address, innermost first; ``offsets`` are the file
        offsets reported as module_offset; ``rename`` (a demangler) is applied to every name."""
        import numpy as np

        vaddrs = np.asarray(vaddrs, dtype=np.uint64)
        sym_idx, sym_off = self.symbols.lookup(vaddrs)
        if self.dwarf is not None:
            rel = np.where(vaddrs >= np.uint64(self._bias), vaddrs - np.uint64(self._bias), np.uint64(2**64 - 1))
            chains = self.dwarf.lookup(rel)
        else:
            chains = [()] * len(vaddrs)
        names = self.symbols.names
        outer_memo: dict = {}
        assemble = self._assemble
        return [
            assemble(chain, sidx, soff, names[sidx] if sidx >= 0 else None, off, vaddr, module, rename, outer_memo)
            for chain, sidx, soff, off, vaddr in zip(
                chains, sym_idx.tolist(), sym_off.tolist(), offsets, vaddrs.tolist(), strict=True
            )
        ]

    def frames_scalar(self, vaddrs: list[int], offsets: list[int], module: str, rename=None,
                      make=make_frame) -> list[Chain]:
        """``frames`` for a plain list without numpy: bisection per address, same answers."""
        symbols = self.symbols
        names = symbols.names
        bias = self._bias
        dwarf = self.dwarf
        chains = (dwarf.lookup_scalar([v - bias if v >= bias else -1 for v in vaddrs]) if dwarf is not None
                  else [()] * len(vaddrs))
        out: list[Chain] = []
        outer_memo: dict = {}
        for chain, off, vaddr in zip(chains, offsets, vaddrs, strict=True):
            sidx, soff = symbols.lookup_one(vaddr)
            out.append(self._assemble(chain, sidx, soff, names[sidx] if sidx >= 0 else None, off, vaddr,
                                      module, rename, outer_memo, make))
        return out

    def text_scalar(self, vaddrs: list[int], rename=None) -> list[tuple[tuple[str | None, str | None, int], ...]]:
        """Per address, the inline chain as (function, file, line) tuples -- what text output
        prints. Chains are shared between addresses with the same DWARF location and symbol, so a
        formatter can render each distinct chain once."""
        symbols = self.symbols
        names = symbols.names
        bias = self._bias
        dwarf = self.dwarf
        fix = _demangling(rename) if rename is not None else _same
        chains = (dwarf.lookup_scalar([v - bias if v >= bias else -1 for v in vaddrs]) if dwarf is not None
                  else [()] * len(vaddrs))
        memo: dict[tuple[int, int], tuple] = {}
        out = []
        lookup_one = symbols.lookup_one
        for chain, vaddr in zip(chains, vaddrs, strict=True):
            sidx = lookup_one(vaddr)[0]
            key = (id(chain), sidx)
            text = memo.get(key)
            if text is None:
                # addr2line is binutils' drop-in: a function only .eh_frame knows of is "??" there too.
                elf_name = names[sidx] if sidx >= 0 and not symbols.is_unnamed(sidx) else None
                if not chain:
                    text = ((fix(elf_name), symbols.file_of(sidx) if sidx >= 0 else None, None),)
                else:
                    outer = chain[-1]
                    file = outer.file
                    if file is None and sidx >= 0:
                        file = symbols.file_of(sidx)
                    last = (fix(self._outer_name(outer, elf_name, sidx, dwarf_alias=True)), file, outer.line)
                    text = (*[(fix(loc[0]), loc[1], loc[2]) for loc in chain[:-1]], last)
                memo[key] = text
            out.append(text)
        return out

    def _assemble(self, chain, sidx: int, soff: int, elf_name: str | None, off: int, vaddr: int, module: str,
                  rename, outer_memo: dict, make=make_frame) -> Chain:
        if rename is not None:
            fix = _demangling(rename)
        else:
            fix = _same
        if not chain:
            file = self.symbols.file_of(sidx) if sidx >= 0 else None
            return (make(fix(elf_name), file, None, False, module, off, soff if sidx >= 0 else None),)
        outer = chain[-1]
        key = (outer.function, outer.entry, outer.has_source, elf_name, sidx)
        name = outer_memo.get(key, False)
        if name is False:
            name = outer_memo[key] = fix(self._outer_name(outer, elf_name, sidx))
        offset = soff if sidx >= 0 else None
        if offset is None and outer.entry is not None and vaddr - self._bias >= outer.entry:
            offset = vaddr - self._bias - outer.entry
        file = outer.file
        if file is None and sidx >= 0:
            file = self.symbols.file_of(sidx)
        last = make(name, file, outer.line, False, module, off, offset)
        if len(chain) == 1:
            return (last,)
        return (*[make(fix(loc[0]), loc[1], loc[2], True, module, off, None) for loc in chain[:-1]], last)

    def _outer_name(self, outer: Location, elf_name: str | None, sidx: int, dwarf_alias: bool = False) -> str | None:
        """The real function's name: the ELF symbol covering the address when there is one.

        That is what perf and llvm-symbolizer print for the outermost frame (addr2line too, for
        the first address it sees in a function): split-off parts (``main.cold``) and clones
        (``.constprop.0``) are named as the code actually is. It also sidesteps SymCache sometimes
        labelling a hot/cold-split function with a neighbouring symbol's name. Code without a
        symbol gets DWARF's name, clone suffixes undone the same way.

        Of several ELF names for one address, profiles get the table's first choice, perf's: the public
        global name (`malloc`, `__strcoll_l`, `pow`, not `__GI___libc_malloc` or `__pow`). `hwprof addr2line`
        (dwarf_alias) prints the alias DWARF uses, as binutils' addr2line does.
        """
        if elf_name is not None and outer.function is not None and self.symbols.is_unnamed(sidx):
            elf_name = None  # DWARF names what only .eh_frame's sub_<start> would
        if elf_name is not None:
            aliases = self.symbols.aliases.get(int(self.symbols.starts[sidx])) if self.symbols.aliases else None
            if dwarf_alias and aliases and outer.function is not None:
                dwarf_name = strip_clone_suffix(outer.function)
                # GCC's DWARF describes the base-object C2/D2 variant; a C1/D1 there is SymCache's relabelling.
                if dwarf_name in aliases and not _CXX_COMPLETE_OBJECT.search(dwarf_name):
                    return dwarf_name  # of several names for this code, the one DWARF uses
            return elf_name
        name = outer.function
        if name is None or not outer.has_source:
            return name
        base = strip_clone_suffix(name)
        if base != name and outer.entry is not None:
            entry_name = self._name_at(outer.entry + self._bias)
            if entry_name is not None and strip_clone_suffix(entry_name) != base:
                return strip_clone_suffix(entry_name)
        return base

    def _name_at(self, vaddr: int) -> str | None:
        starts = self.symbols.starts
        i = bisect.bisect_left(starts, vaddr)
        if i < len(starts) and int(starts[i]) == vaddr:
            return self.symbols.names[i]
        return None


def _merge_symbols(image: ElfImage | None, debug_image: ElfImage | None) -> SymbolTable:
    """The binary's symbols, or the debug file's when the binary was stripped (plus its PLT/dynsym)."""
    from hwprof.symbolize.elf import ElfError

    tables = []
    for img in (image, debug_image):
        if img is None:
            continue
        try:
            tables.append(img.symbols)
        except (ElfError, OSError, ValueError) as exc:
            log.debug("cannot read symbols of %s: %s", img.path, exc)
    tables = [t for t in tables if len(t.starts)]
    if not tables:
        return SymbolTable.empty()
    if len(tables) == 1 or (image is not None and image.has_symtab):
        return tables[0]
    aliases = {addr: group for t in tables for addr, group in t.aliases.items()}
    rows = {}
    # The debug file's .symtab is the richer one; it comes last, so it wins where both name an address,
    # and where it has a .symtab, the binary's sub_<start> stand-ins for unnamed functions are not needed.
    debug_names_all = debug_image is not None and debug_image.has_symtab
    for t in tables:
        reach = t.reach if t.reach is not None else t.ends
        files = t.files or (None,) * len(t.names)
        for row in zip(t.starts, t.ends, reach, t.names, files, strict=True):
            if debug_names_all and t is not tables[-1] and int(row[0]) in t.unnamed:
                continue
            rows[int(row[0])] = row
    ordered = [rows[addr] for addr in sorted(rows)]
    unnamed = frozenset(addr for t in tables for addr in t.unnamed if addr in rows and rows[addr][3] == f"sub_{addr:x}")
    return SymbolTable(array("Q", [int(r[0]) for r in ordered]), array("Q", [int(r[1]) for r in ordered]),
                       tuple(r[3] for r in ordered), tuple(r[4] for r in ordered), aliases,
                       array("Q", [int(r[2]) for r in ordered]), unnamed)
