"""Probe specs as a user writes them (`-u BIN:func+4`, `-K vfs_read`, `-t sched:sched_switch`) and where they point.

Why resolve here and not in the kernel: a uprobe is (inode, file offset), so a symbol must become a file offset
(the PT_LOAD rule, shared with the symbolizer through hwprof.symbolize.elf), and a bare library name must become
the file the target process actually maps. Errors name the closest alternatives, so a typo costs one retry.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache
from pathlib import Path

from hwprof.errors import HwprofError
from hwprof.system import procfs
from hwprof.units import FileOffset, Pid


class ProbeKind(Enum):
    UPROBE = "uprobe"
    URETPROBE = "uretprobe"
    KPROBE = "kprobe"
    KRETPROBE = "kretprobe"
    TRACEPOINT = "tracepoint"

    @property
    def is_return(self) -> bool:
        return self in (ProbeKind.URETPROBE, ProbeKind.KRETPROBE)

    @property
    def is_user(self) -> bool:
        return self in (ProbeKind.UPROBE, ProbeKind.URETPROBE)

    @property
    def is_kernel_function(self) -> bool:
        return self in (ProbeKind.KPROBE, ProbeKind.KRETPROBE)

    def returning(self) -> ProbeKind:
        return {ProbeKind.UPROBE: ProbeKind.URETPROBE, ProbeKind.KPROBE: ProbeKind.KRETPROBE}.get(self, self)


@dataclass(frozen=True)
class ProbeSpec:
    """A probe as written: `kind`, the location text and any fetch-args (tracefs syntax)."""

    kind: ProbeKind
    text: str                 # exactly what the user typed, for messages
    target: str               # BINARY or LIB (uprobes), KSYM (kprobes), SUBSYS (tracepoints)
    symbol: str = ""          # function symbol, or tracepoint event name; "" with an address
    offset: int = 0           # +OFF after the symbol
    address: int | None = None  # BINARY:0xADDR (an ELF virtual address, as perf probe and bpftrace take it)
    fetch_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """A resolved probe, ready to open: for uprobes a real file and a file offset."""

    spec: ProbeSpec
    kind: ProbeKind
    label: str                # how output names it: uprobe:/path:func, kretprobe:vfs_read, tracepoint:sys:ev
    path: str = ""            # uprobes: the ELF file (real path)
    file_offset: FileOffset = 0
    symbol: str = ""          # kprobes: kernel symbol (MOD:SYM allowed); tracepoints: "subsys:event"
    offset: int = 0           # kprobes: offset into the symbol

    def returning(self) -> Probe:
        """The return probe on the same function (for --latency)."""
        kind = self.kind.returning()
        label = f"{kind.value}:{self.label.split(':', 1)[1]}"
        return replace(self, kind=kind, label=label, spec=replace(self.spec, kind=kind, fetch_args=()))


_OFFSET = re.compile(r"^(?P<base>.+?)\+(?P<off>0x[0-9a-fA-F]+|\d+)$")


def _split_location(text: str) -> tuple[str, tuple[str, ...]]:
    """The location, then fetch-args: split at whitespace outside parentheses (demangled names hold spaces)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth = max(0, depth - 1)
        elif ch.isspace() and depth == 0:
            return text[:i], tuple(text[i:].split())
    return text, ()


def parse_spec(kind: ProbeKind, text: str) -> ProbeSpec:
    """Parse `-u/-r/-k/-K/-t` arguments; `%return` turns an entry probe into a return probe."""
    raw = text.strip()
    if not raw:
        raise HwprofError(f"empty {kind.value} spec")
    location, fetch_args = _split_location(raw)
    if location.endswith("%return"):
        location = location[: -len("%return")]
        kind = kind.returning()
        if kind == ProbeKind.TRACEPOINT:
            raise HwprofError(f"'%return' makes no sense on tracepoint {raw!r}")
    if kind == ProbeKind.TRACEPOINT:
        subsys, sep, event = location.partition(":")
        if not sep or not subsys or not event or ":" in event:
            raise HwprofError(f"tracepoint {raw!r} must be SUBSYS:EVENT, e.g. syscalls:sys_enter_write")
        return ProbeSpec(kind, raw, subsys, event, fetch_args=fetch_args)
    if kind.is_kernel_function:
        symbol, offset = _symbol_and_offset(location, raw)
        if symbol.startswith("0x"):
            raise HwprofError(f"kprobe {raw!r}: give a kernel symbol name, not an address")
        return ProbeSpec(kind, raw, symbol, symbol, offset, fetch_args=fetch_args)
    # uprobes: BINARY:SYMBOL[+OFF] or BINARY:0xADDR; the ':' after the last '/' separates them
    colon = location.find(":", location.rfind("/") + 1)
    if colon <= 0 or colon == len(location) - 1:
        raise HwprofError(f"uprobe {raw!r} must be BINARY:SYMBOL[+OFF] or BINARY:0xADDR (or LIB:SYMBOL)")
    target, where = location[:colon], location[colon + 1:]
    if re.fullmatch(r"0x[0-9a-fA-F]+", where):
        return ProbeSpec(kind, raw, target, address=int(where, 16), fetch_args=fetch_args)
    symbol, offset = _symbol_and_offset(where, raw)
    return ProbeSpec(kind, raw, target, symbol, offset, fetch_args=fetch_args)


def _symbol_and_offset(where: str, raw: str) -> tuple[str, int]:
    match = _OFFSET.match(where)
    if match and not match["base"].endswith("operator"):
        return match["base"], int(match["off"], 0)
    if not where:
        raise HwprofError(f"probe {raw!r} names no symbol")
    return where, 0


# --- finding the binary -------------------------------------------------------------------------------

def _lib_name_matches(name: str, path: str) -> bool:
    """`c`, `libc`, `libc.so` and `libc.so.6` all name /lib/x86_64-linux-gnu/libc.so.6."""
    base = os.path.basename(path)
    if base == name:
        return True
    for candidate in (name, f"lib{name}"):
        if base.startswith(candidate + ".so") or base.startswith(candidate + "-") and ".so" in base:
            return True
    return False


def mapped_files(pid: Pid) -> list[str]:
    """Files mapped executable by a process, in map order ([] when it cannot be read)."""
    try:
        return procfs.mapped_files(procfs.read_maps(pid))
    except HwprofError:
        return []


@lru_cache(maxsize=1)
def _linker_cache() -> tuple[str, ...]:
    """Paths from `ldconfig -p` for this machine's ABI (x86-64 entries, or all where the tag is absent)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    paths = []
    for line in out.splitlines():
        if "=>" not in line:
            continue
        tags, path = line.split("=>", 1)
        if "x86-64" in tags or "," not in tags:
            paths.append(path.strip())
    return tuple(paths)


def find_binary(name: str, pids: tuple[Pid, ...] = ()) -> str:
    """A path for BINARY/LIB: a path as given, else what the targets map, else the linker cache, else $PATH."""
    if "/" in name:
        path = Path(name)
        if not path.exists():
            raise HwprofError(f"no such file: {name}")
        if not path.is_file():
            raise HwprofError(f"not a regular file: {name}")
        return os.path.realpath(path)
    for pid in pids:
        for path in mapped_files(pid):
            if _lib_name_matches(name, path):
                return os.path.realpath(path)
    for path in _linker_cache():
        if _lib_name_matches(name, path):
            return os.path.realpath(path)
    found = shutil.which(name)
    if found:
        return os.path.realpath(found)
    where = f"mapped by {', '.join(map(str, pids))}, " if pids else ""
    raise HwprofError(f"cannot find {name!r}: not a path, not {where}not in the linker cache, not on $PATH")


def _check_elf(path: str) -> None:
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise HwprofError(f"cannot read {path}: {exc.strerror}") from None
    if magic != b"\x7fELF":
        raise HwprofError(f"{path} is not an ELF file (a script? probe its interpreter instead)")


# --- kernel symbols ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _kallsyms() -> bytes:
    try:
        with open("/proc/kallsyms", "rb") as f:
            return f.read()
    except OSError:
        return b""


def kernel_functions() -> frozenset[str]:
    """Names of kernel text symbols (t/T in /proc/kallsyms), modules included."""
    names = set()
    for line in _kallsyms().decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in ("t", "T", "w", "W"):
            names.add(parts[2])
    return frozenset(names)


def _is_kernel_function(name: str) -> bool:
    """A byte search, not a parse: the full table is only built to suggest names (slow under emulation)."""
    data = _kallsyms()
    needle = f" {name}".encode()
    start = 0
    while (at := data.find(needle, start)) >= 0:
        end = at + len(needle)
        if end == len(data) or data[end:end + 1] in (b"\n", b"\t"):
            kind = data[at - 1:at]
            if kind in (b"t", b"T", b"w", b"W"):
                return True
        start = end
    return False


def check_kernel_symbol(symbol: str, raw: str) -> None:
    name = symbol.split(":", 1)[1] if ":" in symbol else symbol
    if not _kallsyms() or _is_kernel_function(name):
        return
    close = difflib.get_close_matches(name, kernel_functions(), n=5, cutoff=0.75)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    raise HwprofError(f"kprobe {raw!r}: no kernel function {name!r} in /proc/kallsyms{hint}")


# --- resolving ----------------------------------------------------------------------------------------

def resolve(spec: ProbeSpec, pids: tuple[Pid, ...] = ()) -> Probe:
    """Turn a spec into a Probe: find files, look up symbols, check that the thing exists."""
    if spec.kind == ProbeKind.TRACEPOINT:
        name = f"{spec.target}:{spec.symbol}"
        return Probe(spec, spec.kind, f"tracepoint:{name}", symbol=name)
    if spec.kind.is_kernel_function:
        check_kernel_symbol(spec.symbol, spec.text)
        where = spec.symbol + (f"+{spec.offset}" if spec.offset else "")
        return Probe(spec, spec.kind, f"{spec.kind.value}:{where}", symbol=spec.symbol, offset=spec.offset)
    from hwprof.symbolize.elf import symbol_file_offset, vaddr_to_file_offset

    path = find_binary(spec.target, pids)
    _check_elf(path)
    if spec.address is not None:
        offset = vaddr_to_file_offset(path, spec.address)
        where = f"{spec.address:#x}"
    else:
        offset = symbol_file_offset(path, spec.symbol) + spec.offset
        where = spec.symbol + (f"+{spec.offset}" if spec.offset else "")
    return Probe(spec, spec.kind, f"{spec.kind.value}:{path}:{where}", path=path, file_offset=offset)
