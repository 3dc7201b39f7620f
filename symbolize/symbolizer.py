"""The Symbolizer: file offsets, kernel addresses and JIT addresses to named inline chains.

It never raises for bad input files: a module it cannot read gives frames with function None
(callers print module+0xoffset) and one warning per module on the "hwprof.symbolize" logger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwprof.symbolize.demangle import demangle as demangle_name
from hwprof.symbolize.frame import SymbolizedFrame, make_frame, unknown_frame

from hwprof.units import Pid

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("hwprof.symbolize")

Chain = tuple[SymbolizedFrame, ...]
JIT_MODULE = "[jit]"
KERNEL_CHAIN_CACHE = 1 << 16  # kernel addresses whose chains a symbolizer keeps (a few MB)


@dataclass
class _Module:
    name: str
    segments_image: object | None  # ElfImage whose PT_LOADs map offsets to addresses
    index: object | None  # ModuleIndex


class Symbolizer:
    def __init__(self, debug_dirs: Iterable[str] = (), symfs: str | None = None, debuginfod: bool = True,
                 demangle: bool = True, cache_dir: str | None = None, vmlinux: str | None = None,
                 kallsyms: str = "/proc/kallsyms", overlap_index_builds: bool = True) -> None:
        """`overlap_index_builds`: build a new binary's DWARF index on a thread beside its symbol table (less wall
        time), or after it (False: a lower peak, e.g. node: the SymCache build's ~60 MB and the symbol table's
        ~70 MB of transient arrays are not held at once; what a memory-capped hwprof agent wants)."""
        from hwprof.symbolize.debugfile import DebugSearch
        from hwprof.symbolize.module import default_cache_dir

        self.search = DebugSearch(tuple(debug_dirs), symfs, debuginfod)
        self.demangle = demangle
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.vmlinux = vmlinux
        self.kallsyms = kallsyms
        self.overlap_index_builds = overlap_index_builds
        self._modules: dict[tuple[str, bytes | None], _Module] = {}
        self._by_build_id: dict[bytes, _Module] = {}  # one index for copies of one binary at several paths
        self._kernel = None
        self._perf_maps: dict[str, object] = {}
        self._kernel_chains: dict[int, Chain] = {}
        self._unwind_tables: dict[tuple[str, bytes | None], tuple[tuple[int, int, int], object]] = {}
        self._warned: set[str] = set()
        self.index_cache_hits = 0
        self.index_builds = 0

    # ---- user code -------------------------------------------------------------------------
    def symbolize_offsets(self, path: str, file_offsets: np.ndarray, build_id: bytes | None = None) -> list[Chain]:
        """Inline chain per file offset of ``path`` (what MMAP2 records and /proc/PID/maps give)."""
        return self._bulk(path, file_offsets, build_id, by_offset=True)

    def symbolize_vaddrs(self, path: str, vaddrs: np.ndarray | list[int],
                         build_id: bytes | None = None) -> list[Chain]:
        """Inline chain per link-time address of ``path`` (what addr2line takes).

        A plain list takes a numpy-free path (bisection per address): a short command-line run
        then never pays numpy's import, which costs more than symbolizing ten thousand addresses.
        """
        if isinstance(vaddrs, list):
            return self._symbolize_vaddr_list(path, vaddrs, build_id)
        return self._bulk(path, vaddrs, build_id, by_offset=False)

    def _bulk(self, path: str, values, build_id: bytes | None, by_offset: bool) -> list[Chain]:
        """Symbolize each distinct value once (file offsets or link-time addresses), then fan out."""
        import numpy as np

        values = np.asarray(values, dtype=np.uint64).ravel()
        if len(values) == 0:
            return []
        unique, inverse = np.unique(values, return_inverse=True)
        module = self._module(path, build_id)
        image = module.segments_image
        if image is None or module.index is None:
            chains = [(unknown_frame(path, v),) for v in unique.tolist()]
        elif by_offset:
            vaddrs, found = image.offset_to_vaddr(unique)
            chains = self._chains(module, unique, vaddrs, found)
        else:
            offsets, found = image.vaddr_to_offset(unique)
            chains = self._chains(module, offsets, unique, found)
        return [chains[i] for i in inverse.tolist()]

    def text_lines(self, path: str, vaddrs: list[int], build_id: bytes | None = None) -> list[tuple]:
        """For text output (addr2line): per link-time address, its inline chain as
        (function, file, line) tuples, innermost first; identical chains are the same object."""
        module = self._module(path, build_id)
        image = module.segments_image
        unknown = ((None, None, None),)
        if image is None or module.index is None:
            return [unknown] * len(vaddrs)
        rename = demangle_name if self.demangle else None
        inside = [image.vaddr_to_offset_one(a) is not None for a in vaddrs]
        known = module.index.text_scalar([a for a, ok in zip(vaddrs, inside, strict=True) if ok], rename)
        it = iter(known)
        return [next(it) if ok else unknown for ok in inside]

    def _symbolize_vaddr_list(self, path: str, vaddrs: list[int], build_id: bytes | None,
                              make=make_frame) -> list[Chain]:
        unique = sorted(set(vaddrs))
        module = self._module(path, build_id)
        image = module.segments_image
        by_addr: dict[int, Chain] = {}
        if image is None or module.index is None:
            by_addr = {a: (unknown_frame(path, a),) for a in unique}
        else:
            rename = demangle_name if self.demangle else None
            known = [(a, off) for a in unique if (off := image.vaddr_to_offset_one(a)) is not None]
            chains = module.index.frames_scalar([a for a, _ in known], [off for _, off in known], module.name, rename,
                                                make)
            by_addr = dict(zip((a for a, _ in known), chains, strict=True))
            for a in unique:
                if a not in by_addr:
                    by_addr[a] = (unknown_frame(module.name, a),)
        return [by_addr[a] for a in vaddrs]

    def _chains(self, module: _Module, offsets: np.ndarray, vaddrs: np.ndarray, found: np.ndarray) -> list[Chain]:
        rename = demangle_name if self.demangle else None
        if found.all():
            return module.index.frames(vaddrs, offsets.tolist(), module.name, rename)
        resolved = iter(module.index.frames(vaddrs[found], offsets[found].tolist(), module.name, rename))
        return [next(resolved) if ok else (unknown_frame(module.name, off),)
                for off, ok in zip(offsets.tolist(), found.tolist(), strict=True)]

    def _warn(self, module: str, reasons: list[str]) -> None:
        if reasons and module not in self._warned:
            self._warned.add(module)
            log.warning("%s: %s", module, "; ".join(reasons))

    def _module(self, path: str, build_id: bytes | None) -> _Module:
        key = (path, build_id)
        module = self._modules.get(key)
        if module is None:
            reasons: list[str] = []
            module = self._load_module(path, build_id, reasons)
            self._warn(path, reasons)
            self._modules[key] = module
        return module

    def _load_module(self, path: str, build_id: bytes | None, reasons: list[str]) -> _Module:
        from hwprof.symbolize.debugfile import find_debug_file
        from hwprof.symbolize.dwarf_index import DwarfIndexError
        from hwprof.symbolize.elf import ElfError, open_image
        from hwprof.symbolize.module import ModuleIndex, load_or_build_dwarf, load_or_build_symbols

        real = path
        if path == "[vdso]":
            from hwprof.symbolize.vdso import vdso_image_path

            real = vdso_image_path(self.cache_dir)
            if real is None:
                reasons.append("cannot read this kernel's vdso image")
                return _Module(path, None, None)
        elif path.startswith("[") or path.startswith("//anon") or not path:
            reasons.append("anonymous mapping, no file to read symbols from")
            return _Module(path, None, None)
        else:
            real = self.search.rooted(path)
        image = None
        try:
            image = open_image(real)
        except ElfError as exc:
            reasons.append(str(exc))
        if image is not None and build_id and image.build_id and image.build_id != build_id:
            reasons.append(
                f"build-id {image.build_id.hex()} differs from the recorded {build_id.hex()} "
                "(file changed since capture); not using it"
            )
            image = None
        if image is not None and image.build_id and image.build_id in self._by_build_id:
            # The same binary at another path (a tool vendored into several virtualenvs): the same symbols.
            twin = self._by_build_id[image.build_id]
            return _Module(path, twin.segments_image, twin.index)
        wanted_id = build_id or (image.build_id if image is not None else None)
        if image is None and not wanted_id:
            return _Module(path, None, None)
        debug_file = find_debug_file(real, image, wanted_id, self.search, reasons.append)
        debug_image = None
        dwarf = None
        dwarf_job = None
        if debug_file is not None:
            try:
                debug_image = image if debug_file == real else open_image(debug_file)
            except ElfError as exc:
                reasons.append(str(exc))
            if debug_image is not None and debug_image.has_dwarf:
                # The DWARF index builds in Rust with the GIL released: let it run beside the
                # symbol-table work below instead of before it (unless peak memory matters more).
                label = os.path.basename(path)
                job = _Background if self.overlap_index_builds else _Deferred
                dwarf_job = job(load_or_build_dwarf, real, debug_file, wanted_id, self.cache_dir, label)
        elif image is not None and not image.has_symtab:
            reasons.append("no debug info found (no DWARF, no .symtab); only exported names")
        segments_image = image if image is not None and image.segments else debug_image
        if image is None and debug_image is not None and debug_image.segments:
            reasons.append(f"{path} itself is unavailable; mapping its file offsets through {debug_file} "
                           "assuming the linker's usual layout (file offset = address - base)")
            segments_image = _assumed_layout(debug_image)
        if segments_image is None or not segments_image.segments:
            if dwarf_job is not None:
                dwarf_job.result()
            if image is None and debug_image is None:
                return _Module(path, None, None)
            reasons.append("no loadable segments")
            return _Module(path, None, None)
        try:
            symbols = load_or_build_symbols(real, image, debug_file,
                                            debug_image if debug_image is not image else None, wanted_id,
                                            self.cache_dir)
        except Exception as exc:  # noqa: BLE001 -- one unreadable binary must not fail the samples of every other
            from hwprof.symbolize.elf import SymbolTable

            reasons.append(f"its symbol table could not be read ({type(exc).__name__}: {exc}); no names")
            symbols = SymbolTable.empty()
        if dwarf_job is not None:
            try:
                dwarf, cached = dwarf_job.result()
                if cached:
                    self.index_cache_hits += 1
                else:
                    self.index_builds += 1
            except DwarfIndexError as exc:
                reasons.append(f"DWARF unusable, names only ({exc})")
        bias_source = debug_image if debug_image is not None and debug_image.segments else segments_image
        index = ModuleIndex(symbols, dwarf, bias_source.segments[0].vaddr if bias_source.segments else 0)
        if dwarf is None and len(index.symbols.starts) == 0:
            reasons.append("no symbols at all")
        module = _Module(path, segments_image, index)
        if image is not None and image.build_id:
            self._by_build_id[image.build_id] = module
        return module

    # ---- kernel ----------------------------------------------------------------------------
    def kernel_symbols(self):
        from hwprof.symbolize.kernel import KernelSymbols

        if self._kernel is None:
            try:
                self._kernel = KernelSymbols.load(self.kallsyms)
            except Exception as exc:  # HwprofError for unreadable files; degrade like any module
                log.warning("[kernel.kallsyms]: %s", exc)
                self._kernel = KernelSymbols.parse("")
            if self._kernel.hidden:
                log.warning("[kernel.kallsyms]: %s", self._kernel.hidden_note)
        return self._kernel

    def symbolize_kernel(self, addrs: np.ndarray) -> list[Chain]:
        import numpy as np
        from hwprof.symbolize.kernel import KERNEL_MODULE

        addrs = np.asarray(addrs, dtype=np.uint64).ravel()
        if len(addrs) == 0:
            return []
        unique, inverse = np.unique(addrs, return_inverse=True)
        kernel = self.kernel_symbols()
        known = self._kernel_chains
        wanted = unique.tolist()
        new = [a for a in wanted if a not in known]
        if new and len(known) + len(new) > KERNEL_CHAIN_CACHE:
            known.clear()  # bounded: start over (this call's addresses are all looked up again)
            new = wanted
        if new:
            # A long-lived symbolizer (hwprof agent) meets the same kernel paths every window: each address is
            # looked up (and its name decoded from the packed table) once.
            new_addrs = np.array(new, dtype=np.uint64)
            looked = kernel.lookup(new_addrs)
            vmlinux_chains = self._vmlinux_chains(new_addrs, looked) if self.vmlinux else None
            for j, (addr, (name, off, module)) in enumerate(zip(new, looked, strict=True)):
                if vmlinux_chains is not None and vmlinux_chains[j] is not None:
                    known[addr] = vmlinux_chains[j]
                elif name is None:
                    known[addr] = (unknown_frame(KERNEL_MODULE, addr),)
                else:
                    known[addr] = (SymbolizedFrame(name, None, None, False, module, addr, off),)
        chains = [known[a] for a in wanted]
        return [chains[i] for i in inverse.tolist()]

    def _vmlinux_chains(self, addrs: np.ndarray, looked) -> list[Chain | None]:
        """File and line for core-kernel addresses from a vmlinux with DWARF, undoing KASLR's shift."""
        import numpy as np
        from hwprof.symbolize.elf import ElfError, open_image
        from hwprof.symbolize.kernel import KERNEL_MODULE

        out: list[Chain | None] = [None] * len(addrs)
        kernel = self.kernel_symbols()
        try:
            image = open_image(self.vmlinux)
        except ElfError as exc:
            self._warn(self.vmlinux, [str(exc)])
            return out
        runtime_stext = kernel.address_of("_stext")
        link_stext = None
        names = image.symbols.names
        if "_stext" in names:
            link_stext = int(image.symbols.starts[names.index("_stext")])
        if runtime_stext is None or link_stext is None:
            self._warn(self.vmlinux, ["cannot relate vmlinux to the running kernel (no _stext)"])
            return out
        shift = runtime_stext - link_stext
        core = [i for i, (_n, _o, module) in enumerate(looked) if module == KERNEL_MODULE]
        if not core:
            return out
        link_addrs = np.array([int(addrs[i]) - shift for i in core], dtype=np.uint64)
        offsets, found = image.vaddr_to_offset(link_addrs)
        module = self._module(self.vmlinux, None)
        if module.index is None:
            return out
        chains = self._chains(module, link_addrs, link_addrs, found)
        for i, chain in zip(core, chains, strict=True):
            if chain[-1].function is not None:
                out[i] = tuple(
                    SymbolizedFrame(f.function, f.file, f.line, f.inlined, KERNEL_MODULE, int(addrs[i]),
                                    f.symbol_offset)
                    for f in chain
                )
        return out

    # ---- unwind tables (for --call-graph dwarf) -------------------------------------------
    def unwind_table(self, path: str, build_id: bytes | None = None):
        """The binary's CFI rows (hwprof.unwind.table.UnwindTable), found and cached like its symbols."""
        from hwprof.symbolize.cfi import load_or_build_table

        key = (path, build_id)
        identity = (0, 0, 0) if path == "[vdso]" else _file_identity(self.search.rooted(path))  # vdso: this kernel's
        kept = self._unwind_tables.get(key)
        if kept is not None and kept[0] == identity:
            return kept[1]  # a long-lived symbolizer (hwprof agent) unwinds the same libraries every window
        table = load_or_build_table(path, build_id, self.cache_dir, self.search)
        if table.notes:
            self._warn(f"{path} (unwind)", list(table.notes))
        if identity is not None:
            self._unwind_tables[key] = (identity, table)
        return table

    def jit_unwind_table(self, perf_map_path: str | None, binaries: list[str]):
        """A process's JIT code for the unwinder (hwprof.unwind.table.JitUnwindTable): rows from its jitdump's
        unwinding info where the JIT wrote some, else from the code's stack effect (CPython's perf trampolines,
        named in its perf map); None without a JIT map."""
        from hwprof.symbolize.jit import PerfMap
        from hwprof.symbolize.jit_unwind import JitEntry, jit_table
        from hwprof.symbolize.jitdump import is_jitdump, parse_jitdump

        if not perf_map_path:
            return None
        try:
            with open(perf_map_path, "rb") as f:
                data = f.read()
        except OSError:
            return None  # symbolize_jit warns about a missing map
        notes: list[str] = []
        if is_jitdump(data):
            dump = parse_jitdump(data, perf_map_path)
            notes = dump.notes
            entries = [JitEntry(e.start, e.size, e.name, e.code, e.unwinding.eh_frame if e.unwinding else None)
                       for e in dump.entries]
        else:
            perf_map = PerfMap.parse(data)
            entries = [JitEntry(int(s), int(e - s), n) for s, e, n in zip(perf_map.starts.tolist(),
                                                                         perf_map.ends.tolist(), perf_map.names,
                                                                         strict=True)]
        found = jit_table(entries, [self.search.rooted(b) for b in binaries], perf_map_path, notes)
        if found is None and notes:
            self._warn(f"{perf_map_path} (unwind)", notes)
        return found

    # ---- JIT -------------------------------------------------------------------------------
    def symbolize_jit(self, pid: Pid, addrs: np.ndarray, perf_map_path: str | None = None) -> list[Chain]:
        import numpy as np
        from hwprof.symbolize.jit import PerfMap

        addrs = np.asarray(addrs, dtype=np.uint64).ravel()
        path = perf_map_path or f"/tmp/perf-{pid}.map"
        perf_map = self._perf_maps.get(path)
        if perf_map is None:
            try:
                perf_map = PerfMap.load(path)
            except Exception as exc:  # HwprofError: missing or unreadable map
                self._warn(JIT_MODULE, [str(exc)])
                perf_map = PerfMap.parse(b"")
            self._perf_maps[path] = perf_map
        out: list[Chain] = []
        for addr, (name, off) in zip(addrs.tolist(), perf_map.lookup(addrs), strict=True):
            if name is None:
                out.append((unknown_frame(JIT_MODULE, addr),))
            else:
                out.append((SymbolizedFrame(name, None, None, False, JIT_MODULE, addr, off),))
        return out


class _Background:
    """Run one call on a thread; result() joins and returns its value or raises its exception."""

    def __init__(self, func, *args) -> None:
        import threading

        self._value = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func, args), name="hwprof-index", daemon=True)
        self._thread.start()

    def _run(self, func, args) -> None:
        try:
            self._value = func(*args)
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Deferred:
    """_Background's interface, but the call runs in result(): after the work between start and result()."""

    def __init__(self, func, *args) -> None:
        self._func, self._args = func, args

    def result(self):
        return self._func(*self._args)


def _assumed_layout(debug_image):
    """A separate debug file keeps the program headers but zeroes their file offsets. The binary
    normally placed each segment at file offset = vaddr - (first segment's vaddr), which holds for
    code segments of GNU ld and lld output; use that to map recorded offsets when the binary is gone."""
    import copy
    from dataclasses import replace

    base = debug_image.segments[0].vaddr
    view = copy.copy(debug_image)
    view.segments = tuple(replace(seg, offset=seg.vaddr - base, filesz=seg.memsz) for seg in debug_image.segments)
    view.__dict__.pop("_vaddr_spans", None)
    return view


def _file_identity(path: str) -> tuple[int, int, int] | None:
    """(inode, size, mtime): a file replaced at the same path (an upgrade) is not the one a table was built from."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
