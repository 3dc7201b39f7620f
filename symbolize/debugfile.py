"""Finding the file that holds a binary's DWARF, the way gdb and perf look for it.

Order: the binary itself; build-id under each debug directory (``.build-id/xx/rest.debug``);
``.gnu_debuglink`` next to the binary, in its ``.debug/`` folder and under each debug directory,
checked against the link's CRC; finally debuginfod. Every candidate must carry the binary's
build-id: a mismatch is rejected with a warning rather than giving wrong lines.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass

from hwprof.symbolize.elf import ElfError, ElfImage, open_image

log = logging.getLogger("hwprof.symbolize")

SYSTEM_DEBUG_DIR = "/usr/lib/debug"


@dataclass(frozen=True)
class DebugSearch:
    debug_dirs: tuple[str, ...] = ()
    symfs: str | None = None
    debuginfod: bool = True

    def rooted(self, path: str) -> str:
        """A path as seen inside --symfs (a container's root filesystem)."""
        if not self.symfs:
            return path
        return os.path.join(self.symfs, path.lstrip("/"))

    def directories(self) -> list[str]:
        dirs = [os.path.abspath(d) for d in self.debug_dirs]
        if self.symfs:
            dirs.append(self.rooted(SYSTEM_DEBUG_DIR))
        dirs.append(SYSTEM_DEBUG_DIR)
        seen: list[str] = []
        for d in dirs:
            if d not in seen:
                seen.append(d)
        return seen


def file_crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc & 0xFFFFFFFF


def find_debug_file(binary_path: str, image: ElfImage | None, build_id: bytes | None,
                    search: DebugSearch, warn) -> str | None:
    """Path of the file to read DWARF from, or None. ``warn`` gets one line per rejected candidate."""
    if image is not None and image.has_dwarf:
        return binary_path
    build_id = build_id or (image.build_id if image is not None else None)
    candidates: list[tuple[str, int | None]] = []
    if build_id and len(build_id) >= 2:
        hex_id = build_id.hex()
        for d in search.directories():
            candidates.append((os.path.join(d, ".build-id", hex_id[:2], hex_id[2:] + ".debug"), None))
    if image is not None and image.debuglink is not None:
        name, crc = image.debuglink
        here = os.path.dirname(binary_path)
        original_dir = os.path.dirname(binary_path[len(search.symfs.rstrip("/")):]) if search.symfs else here
        candidates.append((os.path.join(here, name), crc))
        candidates.append((os.path.join(here, ".debug", name), crc))
        for d in search.directories():
            candidates.append((os.path.join(d, original_dir.lstrip("/"), name), crc))
            candidates.append((os.path.join(d, name), crc))
    tried: set[str] = set()
    for path, crc in candidates:
        if path in tried or not os.path.isfile(path):
            continue
        tried.add(path)
        if os.path.realpath(path) == os.path.realpath(binary_path):
            continue
        if _acceptable(path, build_id, crc, warn):
            return path
    if build_id and search.debuginfod:
        from hwprof.symbolize.debuginfod import fetch_debuginfo, server_urls

        if server_urls():
            path, why = fetch_debuginfo(build_id)
            if path is None:
                warn(f"debuginfod has no debug info for build-id {build_id.hex()}: {why}")
            elif _acceptable(path, build_id, None, warn):
                return path
    return None


def _acceptable(path: str, build_id: bytes | None, crc: int | None, warn) -> bool:
    try:
        candidate = open_image(path)
    except ElfError as exc:
        warn(f"ignoring debug file {exc}")
        return False
    if build_id is not None and candidate.build_id is not None and candidate.build_id != build_id:
        warn(f"rejecting debug file {path}: build-id {candidate.build_id.hex()} does not match {build_id.hex()}")
        return False
    if crc is not None:
        try:
            actual = file_crc32(path)
        except OSError as exc:
            warn(f"ignoring debug file {path}: {exc.strerror}")
            return False
        if actual != crc:
            warn(f"rejecting debug file {path}: CRC {actual:#010x} does not match .gnu_debuglink's {crc:#010x}")
            return False
    if not candidate.has_dwarf and not candidate.has_symtab:
        warn(f"ignoring debug file {path}: it has neither DWARF nor a symbol table")
        return False
    return True
