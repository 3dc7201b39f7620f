"""perf.data feature sections (tools/perf/util/header.c): encoders and decoders for the ones hwprof writes.

Why these: `perf report` reads files without any feature, but shows hostname/OS/cmdline in its header, needs
EVENT_DESC to name events, and BUILD_ID to match binaries to their debug info on another machine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from hwprof.perf.attr import PerfEventAttr

NAME_ALIGN = 64
BUILD_ID_SIZE = 20
MISC_BUILD_ID_SIZE = 1 << 15


class Feature(IntEnum):
    TRACING_DATA = 1
    BUILD_ID = 2
    HOSTNAME = 3
    OSRELEASE = 4
    VERSION = 5
    ARCH = 6
    NRCPUS = 7
    CPUDESC = 8
    CPUID = 9
    TOTAL_MEM = 10
    CMDLINE = 11
    EVENT_DESC = 12
    CPU_TOPOLOGY = 13
    NUMA_TOPOLOGY = 14
    BRANCH_STACK = 15
    PMU_MAPPINGS = 16
    GROUP_DESC = 17
    AUXTRACE = 18
    STAT = 19
    CACHE = 20
    SAMPLE_TIME = 21
    MEM_TOPOLOGY = 22
    CLOCKID = 23
    DIR_FORMAT = 24
    BPF_PROG_INFO = 25
    BPF_BTF = 26
    COMPRESSED = 27
    CPU_PMU_CAPS = 28
    CLOCK_DATA = 29
    HYBRID_TOPOLOGY = 30
    PMU_CAPS = 31


# --- strings ---------------------------------------------------------------------------------------------

def pack_string(text: str) -> bytes:
    """u32 length (NUL included, padded to 64) then the bytes: perf's do_write_string."""
    raw = text.encode() + b"\0"
    raw += b"\0" * (-len(raw) % NAME_ALIGN)
    return struct.pack("<I", len(raw)) + raw


def unpack_string(buf: bytes, offset: int = 0) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", buf, offset)
    if offset + 4 + length > len(buf):
        raise ValueError("string runs past its feature section")
    raw = buf[offset + 4: offset + 4 + length]
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace"), offset + 4 + length


def pack_string_list(items: list[str]) -> bytes:
    return struct.pack("<I", len(items)) + b"".join(pack_string(s) for s in items)


def unpack_string_list(buf: bytes) -> list[str]:
    (count,) = struct.unpack_from("<I", buf, 0)
    out, offset = [], 4
    for _ in range(count):
        text, offset = unpack_string(buf, offset)
        out.append(text)
    return out


# --- EVENT_DESC --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventDesc:
    attr: PerfEventAttr
    name: str
    ids: tuple[int, ...]


def pack_event_desc(events: list[EventDesc], attr_size: int) -> bytes:
    out = struct.pack("<II", len(events), attr_size)
    for event in events:
        raw = event.attr.copy()
        raw.size = attr_size
        out += raw.to_bytes(attr_size) + struct.pack("<I", len(event.ids)) + pack_string(event.name)
        out += struct.pack(f"<{len(event.ids)}Q", *event.ids)
    return out


def unpack_event_desc(buf: bytes) -> list[EventDesc]:
    count, attr_size = struct.unpack_from("<II", buf, 0)
    offset, out = 8, []
    for _ in range(count):
        attr = PerfEventAttr.from_bytes(buf[offset: offset + attr_size])
        offset += attr_size
        (nr_ids,) = struct.unpack_from("<I", buf, offset)
        name, offset = unpack_string(buf, offset + 4)
        ids = struct.unpack_from(f"<{nr_ids}Q", buf, offset)
        offset += 8 * nr_ids
        out.append(EventDesc(attr, name, tuple(ids)))
    return out


# --- BUILD_ID ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildIdEntry:
    pid: int
    build_id: bytes
    filename: str
    cpumode: int  # CpuMode.KERNEL for the kernel and modules, USER otherwise


def pack_build_ids(entries: list[BuildIdEntry]) -> bytes:
    out = b""
    for entry in entries:
        name = entry.filename.encode() + b"\0"
        name += b"\0" * (-len(name) % NAME_ALIGN)
        bid = entry.build_id[:BUILD_ID_SIZE]
        body = struct.pack("<i", entry.pid) + bid.ljust(BUILD_ID_SIZE, b"\0") + struct.pack("<BBH", len(bid), 0, 0)
        size = 8 + len(body) + len(name)
        out += struct.pack("<IHH", 0, entry.cpumode | MISC_BUILD_ID_SIZE, size) + body + name
    return out


def unpack_build_ids(buf: bytes) -> list[BuildIdEntry]:
    out, offset = [], 0
    while offset + 36 <= len(buf):
        _, misc, size = struct.unpack_from("<IHH", buf, offset)
        if size < 36 or offset + size > len(buf):
            break
        (pid,) = struct.unpack_from("<i", buf, offset + 8)
        bid_size = buf[offset + 32] if misc & MISC_BUILD_ID_SIZE else BUILD_ID_SIZE
        build_id = buf[offset + 12: offset + 12 + min(bid_size, BUILD_ID_SIZE)]
        name = buf[offset + 36: offset + size].split(b"\0", 1)[0].decode("utf-8", "replace")
        out.append(BuildIdEntry(pid, bytes(build_id), name, misc & 7))
        offset += size
    return out


# --- small fixed ones ------------------------------------------------------------------------------------

def pack_nrcpus(available: int, online: int) -> bytes:
    return struct.pack("<II", available, online)


def pack_u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def pack_sample_time(first: int, last: int) -> bytes:
    return struct.pack("<QQ", first, last)


# --- tracing data ----------------------------------------------------------------------------------------

TRACING_MAGIC = b"\x17\x08Dtracing"
TRACING_VERSION = b"0.6"


@dataclass(frozen=True)
class TracingData:
    """What perf needs to name the RAW fields of tracepoint samples: tracefs's ring-buffer headers and the format
    file of every recorded tracepoint, grouped by system. Without this feature `perf script` refuses a file that
    has a tracepoint attr ("broken or missing trace data")."""

    header_page: bytes
    header_event: bytes
    systems: dict[str, list[bytes]]   # system -> format file texts
    printk_formats: bytes = b""
    page_size: int = 4096


def pack_tracing_data(data: TracingData) -> bytes:
    """perf's tracing_data layout (version 0.6, little-endian, 8-byte long): magic, version, endianness, long size,
    page size; header_page and header_event as name + u64 size + text; no ftrace formats; per system its name and
    u32 count of u64-sized format files; u32 kallsyms (empty), u32 printk formats, u64 saved cmdlines (empty)."""
    out = [TRACING_MAGIC, TRACING_VERSION + b"\0", bytes([0, 8]), struct.pack("<I", data.page_size)]
    for name, text in ((b"header_page", data.header_page), (b"header_event", data.header_event)):
        out += [name + b"\0", struct.pack("<Q", len(text)), text]
    out.append(struct.pack("<I", 0))  # ftrace's own formats
    out.append(struct.pack("<I", len(data.systems)))
    for system, formats in data.systems.items():
        out += [system.encode() + b"\0", struct.pack("<I", len(formats))]
        for text in formats:
            out += [struct.pack("<Q", len(text)), text]
    out += [struct.pack("<I", 0), struct.pack("<I", len(data.printk_formats)), data.printk_formats]
    out.append(struct.pack("<Q", 0))
    return b"".join(out)


def unpack_tracing_data(raw: bytes) -> TracingData:
    """The inverse of pack_tracing_data, for perf's files as well as hwprof's (version 0.5 has no saved cmdlines).
    Raises ValueError on a malformed section."""
    if not raw.startswith(TRACING_MAGIC):
        raise ValueError("not a tracing_data section")
    pos = len(TRACING_MAGIC)

    def cstring() -> bytes:
        nonlocal pos
        end = raw.index(b"\0", pos)
        text, pos = raw[pos:end], end + 1
        return text

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, raw, pos)
        pos += struct.calcsize(fmt)
        return value

    def blob(size: int) -> bytes:
        nonlocal pos
        if pos + size > len(raw):
            raise ValueError("tracing_data section is cut short")
        data, pos = raw[pos:pos + size], pos + size
        return data

    cstring()  # version
    if raw[pos] != 0:
        raise ValueError("big-endian tracing data is not supported")
    pos += 2
    page_size = take("<I")
    headers = {}
    for _ in range(2):
        name = cstring()
        headers[name] = blob(take("<Q"))
    for _ in range(take("<I")):  # ftrace's own formats
        blob(take("<Q"))
    systems: dict[str, list[bytes]] = {}
    for _ in range(take("<I")):
        system = cstring().decode(errors="replace")
        systems[system] = [blob(take("<Q")) for _ in range(take("<I"))]
    return TracingData(headers.get(b"header_page", b""), headers.get(b"header_event", b""), systems,
                       page_size=page_size)
