"""jitdump files (perf's tools/perf/Documentation/jitdump-specification.txt): what a JIT says about its code.

A JIT that supports perf writes /tmp/jit-PID.dump (CPython 3.13 `-X perf_jit`, Node `--perf-prof`, the JVM's perf
agents) and maps it executable once, so the capture sees an MMAP record naming it. Each CODE_LOAD record carries
the code's address, size, name and the code bytes themselves; CODE_MOVE relocates code. hwprof reads the file
directly (no `perf inject --jit` step): names for the symbolizer, code bytes for the unwinder.

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
CODE_LOAD, CODE_MOVE, CODE_DEBUG_INFO, CODE_CLOSE, CODE_UNWINDING_INFO = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class JitCode:
    start: int
    size: int
    name: str
    code: bytes
    timestamp: int


@dataclass
class JitDump:
    pid: int
    entries: list[JitCode] = field(default_factory=list)
    unwinding_records: int = 0
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
                entry = JitCode(addr, code_size, name, bytes(data[end + 1:end + 1 + code_size]), timestamp)
                out.entries.append(entry)
                by_index[index] = entry
        elif rid == CODE_MOVE and size >= _PREFIX.size + _MOVE.size:
            _pid, _tid, _vma, _old, new, code_size, index = _MOVE.unpack_from(data, body)
            moved = by_index.get(index)
            if moved is not None:
                entry = JitCode(new, code_size, moved.name, moved.code, timestamp)
                out.entries.append(entry)
                by_index[index] = entry
        elif rid == CODE_UNWINDING_INFO:
            out.unwinding_records += 1
        pos += size
    if pos < len(data):
        out.notes.append(f"{path}: {len(data) - pos} bytes at the end are not a whole record (the JIT was still "
                         "writing it); ignored")
    return out
