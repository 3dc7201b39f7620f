"""/proc/PID/maps: which file, at which file offset, a runtime address of a live process is."""

from __future__ import annotations

from dataclasses import dataclass

from hwprof.errors import HwprofError
from hwprof.units import Address, FileOffset, Pid


@dataclass(frozen=True)
class Mapping:
    start: Address
    end: Address
    offset: FileOffset
    path: str
    executable: bool

    def file_offset(self, addr: Address) -> FileOffset:
        return addr - self.start + self.offset


def read_maps(pid: Pid) -> list[Mapping]:
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as stream:
            text = stream.read()
    except FileNotFoundError as exc:
        raise HwprofError(f"no process with pid {pid}") from exc
    except PermissionError as exc:
        raise HwprofError(f"cannot read /proc/{pid}/maps: permission denied") from exc
    return parse_maps(text)


def parse_maps(text: str) -> list[Mapping]:
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        span, perms, offset = parts[0], parts[1], parts[2]
        low, _, high = span.partition("-")
        path = parts[5].strip() if len(parts) > 5 else ""
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        out.append(Mapping(int(low, 16), int(high, 16), int(offset, 16), path, "x" in perms))
    return out


def find_mapping(maps: list[Mapping], addr: Address) -> Mapping | None:
    for mapping in maps:
        if mapping.start <= addr < mapping.end:
            return mapping
    return None
