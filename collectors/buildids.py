"""Build-ids of the files a capture saw mapped, and of the running kernel, for perf.data's BUILD_ID feature.

They let a recording be symbolized later on another machine (or after a package upgrade) by matching each
binary to its debug info by content, not by path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from hwprof.units import Pid

NT_GNU_BUILD_ID = 3
PT_NOTE = 4


def file_build_id(path: str) -> bytes | None:
    """The GNU build-id note of an ELF file, None when the file is gone, not ELF, or has none.

    Reads only the ELF and program headers and the PT_NOTE segments (a few KiB): a system-wide capture maps
    hundreds of files and this runs once per file at the end of every capture, so a full ELF parse is too slow.
    """
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                return None
            is64 = ident[4] == 2
            endian = "<" if ident[5] == 1 else ">"
            if is64:
                phoff, = struct.unpack_from(endian + "Q", ident, 32)
                phentsize, phnum = struct.unpack_from(endian + "HH", ident, 54)
            else:
                phoff, = struct.unpack_from(endian + "I", ident, 28)
                phentsize, phnum = struct.unpack_from(endian + "HH", ident, 42)
            if not phnum or phnum > 4096:
                return None
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                base = i * phentsize
                if len(table) < base + phentsize:
                    return None
                ptype, = struct.unpack_from(endian + "I", table, base)
                if ptype != PT_NOTE:
                    continue
                if is64:
                    offset, = struct.unpack_from(endian + "Q", table, base + 8)
                    size, = struct.unpack_from(endian + "Q", table, base + 32)
                else:
                    offset, = struct.unpack_from(endian + "I", table, base + 4)
                    size, = struct.unpack_from(endian + "I", table, base + 16)
                f.seek(offset)
                found = parse_notes(f.read(min(size, 1 << 16)), endian)
                if found:
                    return found
    except (OSError, struct.error):
        return None
    return None


def parse_notes(raw: bytes, endian: str = "<") -> bytes | None:
    """The GNU build-id in a raw ELF notes blob (as /sys/kernel/notes holds for the running kernel)."""
    offset = 0
    while offset + 12 <= len(raw):
        namesz, descsz, ntype = struct.unpack_from(endian + "III", raw, offset)
        name_start = offset + 12
        desc_start = name_start + ((namesz + 3) & ~3)
        end = desc_start + ((descsz + 3) & ~3)
        if end > len(raw):
            return None
        if ntype == NT_GNU_BUILD_ID and raw[name_start:name_start + namesz].rstrip(b"\0") == b"GNU":
            return raw[desc_start:desc_start + descsz]
        offset = end
    return None


def kernel_build_id() -> bytes | None:
    try:
        with open("/sys/kernel/notes", "rb") as f:
            return parse_notes(f.read())
    except OSError:
        return None


def collect(paths: Iterable[tuple[Pid, str]]) -> list[tuple[Pid, str, bytes]]:
    """(pid, path, build-id) for each distinct readable ELF file, the first pid that mapped it."""
    seen: set[str] = set()
    out = []
    for pid, path in paths:
        if path in seen or not path.startswith("/"):
            continue
        seen.add(path)
        build_id = file_build_id(path)
        if build_id:
            out.append((pid, path, build_id))
    return out
