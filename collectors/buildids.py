"""Build-ids of the files a capture saw mapped, and of the running kernel, for perf.data's BUILD_ID feature.

They let a recording be symbolized later on another machine (or after a package upgrade) by matching each
binary to its debug info by content, not by path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from hwprof.units import Pid

NT_GNU_BUILD_ID = 3


def file_build_id(path: str) -> bytes | None:
    """The GNU build-id note of an ELF file, None when the file is gone, not ELF, or has none."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for segment in elf.iter_segments():
                if segment.header.p_type != "PT_NOTE":
                    continue
                for note in segment.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                        return bytes.fromhex(note["n_desc"])
    except (OSError, ELFError, ValueError, struct.error):
        return None
    return None


def parse_notes(raw: bytes) -> bytes | None:
    """The GNU build-id in a raw ELF notes blob (as /sys/kernel/notes holds for the running kernel)."""
    offset = 0
    while offset + 12 <= len(raw):
        namesz, descsz, ntype = struct.unpack_from("<III", raw, offset)
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
