"""jitdump files (perf's tools/perf/Documentation/jitdump-specification.txt): what a JIT says about its code.

A JIT that supports perf writes /tmp/jit-PID.dump (CPython 3.13 `-X perf_jit`, Node `--perf-prof`, the JVM's perf
agents) and maps it executable once, so the capture sees an MMAP record naming it. Each CODE_LOAD record carries
the code's address, size, name and the code bytes themselves; CODE_MOVE relocates code. A CODE_UNWINDING_INFO
record (Node --perf-prof-unwinding-info, the JVM agents, CPython 3.13 for its trampolines) describes the code of the
NEXT CODE_LOAD: its .eh_frame followed by an .eh_frame_hdr, laid out as perf's genelf.c places them, right after the
code rounded up to 8 bytes (pc-relative pointers in it count on that). hwprof reads the file directly (no
`perf inject --jit` step): names for the symbolizer, code bytes and CFI for the unwinder.

A file still being written may end in a partial record: everything before it is used, and the cut is noted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

JITDUMP_MAGIC = 0x4A695444
_HEADER = struct.Struct("<IIIIIIQQ")   # magic, version, total_size, elf_mach, pad1, pid, timestamp, flags
_PREFIX = struct.Struct("<IIQ")        # id, total_size, timestamp
_LOAD = struct.Struct("<IIQQQQ")       # pid, tid, vma, code_addr, code_size, code_index
_MOVE = struct.Struct("<IIQQQQQ")      # pid, tid, vma, old_code_addr, new_code_addr, code_size, code_index
_UNWINDING = struct.Struct("<QQQ")     # unwinding_size, eh_frame_hdr_size, mapped_size (then the data)
CODE_LOAD, CODE_MOVE, CODE_DEBUG_INFO, CODE_CLOSE, CODE_UNWINDING_INFO = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class JitUnwinding:
    """A CODE_UNWINDING_INFO record's data, split as genelf.c splits it."""

    eh_frame: bytes
    eh_frame_hdr: bytes
    mapped_size: int


@dataclass(frozen=True)
class JitCode:
    start: int
    size: int
    name: str
    code: bytes
    timestamp: int
    unwinding: JitUnwinding | None = None  # from the CODE_UNWINDING_INFO record just before its CODE_LOAD


@dataclass
class JitDump:
    pid: int
    entries: list[JitCode] = field(default_factory=list)
    unwinding_records: int = 0   # CODE_UNWINDING_INFO records read whole
    unwinding_used: int = 0      # ... of which a CODE_LOAD followed (the code they describe)
    notes: list[str] = field(default_factory=list)


def is_jitdump(data: bytes) -> bool:
    return len(data) >= 4 and struct.unpack_from("<I", data)[0] == JITDUMP_MAGIC


def parse_jitdump(data: bytes, path: str = "jitdump") -> JitDump:
    """Raises ValueError when the data is not a little-endian jitdump at all."""
    if len(data) < _HEADER.size or not is_jitdump(data):
        raise ValueError(f"{path}: not a jitdump file (or a big-endian one)")
    _magic, _version, header_size, _mach, _pad, pid, _ts, _flags = _HEADER.unpack_from(data)
    out = JitDump(pid)
    by_index: dict[int, JitCode] = {}
    pending: JitUnwinding | None = None
    damaged: list[int] = []
    unused = 0
    pos = max(header_size, _HEADER.size)
    while pos + _PREFIX.size <= len(data):
        rid, size, timestamp = _PREFIX.unpack_from(data, pos)
        if size < _PREFIX.size or pos + size > len(data):
            break
        body = pos + _PREFIX.size
        if rid == CODE_LOAD and size >= _PREFIX.size + _LOAD.size:
            _pid, _tid, _vma, addr, code_size, index = _LOAD.unpack_from(data, body)
            name_at = body + _LOAD.size
            end = data.find(b"\0", name_at, pos + size)
            if end >= 0 and end + 1 + code_size <= pos + size:
                name = data[name_at:end].decode("utf-8", "replace")
                entry = JitCode(addr, code_size, name, bytes(data[end + 1:end + 1 + code_size]), timestamp, pending)
                out.entries.append(entry)
                by_index[index] = entry
                out.unwinding_used += pending is not None
                pending = None
        elif rid == CODE_MOVE and size >= _PREFIX.size + _MOVE.size:
            _pid, _tid, _vma, _old, new, code_size, index = _MOVE.unpack_from(data, body)
            moved = by_index.get(index)
            if moved is not None:
                entry = JitCode(new, code_size, moved.name, moved.code, timestamp, moved.unwinding)
                out.entries.append(entry)
                by_index[index] = entry
        elif rid == CODE_UNWINDING_INFO:
            unwinding = _unwinding(data, body, pos + size)
            if unwinding is None:
                damaged.append(pos)
            else:
                unused += pending is not None
                pending = unwinding
                out.unwinding_records += 1
        pos += size
    if damaged:
        out.notes.append(f"{path}: {len(damaged)} damaged unwinding-info records (sizes that do not fit the record; "
                         f"first at byte {damaged[0]}) ignored: their code is unwound without them")
    if unused or pending is not None:
        out.notes.append(f"{path}: {unused + (pending is not None)} unwinding-info records not followed by the "
                         "code-load record they describe; ignored")
    if pos < len(data):
        out.notes.append(f"{path}: {len(data) - pos} bytes at the end are not a whole record (the JIT was still "
                         "writing it); ignored")
    return out


def _unwinding(data: bytes, body: int, end: int) -> JitUnwinding | None:
    """The record's .eh_frame and .eh_frame_hdr, or None when its sizes do not fit the record."""
    if body + _UNWINDING.size > end:
        return None
    unwinding_size, hdr_size, mapped_size = _UNWINDING.unpack_from(data, body)
    at = body + _UNWINDING.size
    if unwinding_size > end - at or hdr_size > unwinding_size:
        return None  # an .eh_frame_hdr alone (V8's records for code it has no CFI for) is an empty .eh_frame
    split = at + unwinding_size - hdr_size
    return JitUnwinding(bytes(data[at:split]), bytes(data[split:at + unwinding_size]), mapped_size)
