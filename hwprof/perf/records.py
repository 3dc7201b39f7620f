"""Kernel records (as found in a ring buffer or a perf.data data section) decoded one at a time.

The layout of a sample depends on the attr that produced it (sample_type, read_format, register masks), so it is
computed once per attr (`SampleLayout.from_attr`) and then used for every record. This module is the slow, exact
path: one Python object per record, for probes, tests and side records. The bulk decoder (hwprof.pipeline) reads
samples with numpy using the same layout's fixed offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from hwprof.perf.abi import (
    MISC_COMM_EXEC,
    MISC_CPUMODE_MASK,
    MISC_MMAP_BUILD_ID,
    MISC_SWITCH_OUT,
    MISC_SWITCH_OUT_PREEMPT,
    ReadFormat,
    RecordType,
    SampleType,
)
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import CounterValue, parse_read, read_size
from hwprof.units import Address, Cpu, FileOffset, Nanoseconds, Pid, Tid

HEADER = struct.Struct("<IHH")
_U64 = struct.Struct("<Q")
_U32x2 = struct.Struct("<II")

# Fields of the sample_id trailer, in kernel order (perf_event__id_header_size).
_TRAILER_BITS = (SampleType.TID, SampleType.TIME, SampleType.ID, SampleType.STREAM_ID, SampleType.CPU,
                 SampleType.IDENTIFIER)


# The same bits as plain ints for the per-record paths (an IntFlag operand makes every `&` build an enum).
_ST_TID, _ST_TIME, _ST_ID, _ST_STREAM_ID, _ST_CPU, _ST_IDENTIFIER = (int(b) for b in (
    SampleType.TID, SampleType.TIME, SampleType.ID, SampleType.STREAM_ID, SampleType.CPU, SampleType.IDENTIFIER))


class RecordError(ValueError):
    """A record whose bytes do not match its declared layout (corrupt data, wrong attr)."""


@dataclass(frozen=True)
class SampleLayout:
    """How one attr's samples and sample_id trailers are laid out."""

    sample_type: int
    read_format: int
    regs_user_count: int
    regs_intr_count: int
    sample_id_all: bool
    branch_hw_index: bool = False

    @classmethod
    def from_attr(cls, attr: PerfEventAttr) -> SampleLayout:
        return cls(
            sample_type=int(attr.sample_type),
            read_format=int(attr.read_format),
            regs_user_count=bin(attr.sample_regs_user).count("1"),
            regs_intr_count=bin(attr.sample_regs_intr).count("1"),
            sample_id_all=bool(attr.sample_id_all),
            branch_hw_index=bool(attr.branch_sample_type & (1 << 17)),
        )

    def has(self, bit: SampleType) -> bool:
        return bool(self.sample_type & bit)

    # --- where the fixed fields of a SAMPLE are (byte offsets from the record start) ------------------
    @property
    def fixed_offsets(self) -> dict[str, int]:
        """Offsets of the fields that precede any variable-length part, for vectorised decoding.

        READ is included when its size is fixed by the attr (no GROUP, or GROUP decoded with `nr` in place).
        """
        offsets: dict[str, int] = {}
        pos = 8
        for bit, name, size in ((SampleType.IDENTIFIER, "identifier", 8), (SampleType.IP, "ip", 8),
                                (SampleType.TID, "pid", 8), (SampleType.TIME, "time", 8),
                                (SampleType.ADDR, "addr", 8), (SampleType.ID, "id", 8),
                                (SampleType.STREAM_ID, "stream_id", 8), (SampleType.CPU, "cpu", 8),
                                (SampleType.PERIOD, "period", 8)):
            if self.sample_type & bit:
                offsets[name] = pos
                if name == "pid":
                    offsets["tid"] = pos + 4
                pos += size
        offsets["_end"] = pos
        return offsets

    @property
    def id_offset(self) -> int | None:
        """Where a SAMPLE carries its event id (perf's id_pos), None when it carries none."""
        fixed = self.fixed_offsets
        if "identifier" in fixed:
            return fixed["identifier"]
        return fixed.get("id")

    @cached_property
    def trailer_size(self) -> int:
        """Computed once per layout: side records are parsed by the hundred thousand (switch records of off-CPU
        captures), and IntFlag arithmetic costs microseconds."""
        if not self.sample_id_all:
            return 0
        return 8 * sum(1 for bit in _TRAILER_BITS if self.sample_type & int(bit))

    @property
    def trailer_id_from_end(self) -> int | None:
        """Bytes from the end of a non-sample record back to its id (perf's is_pos), None when absent."""
        if not self.sample_id_all:
            return None
        if self.sample_type & SampleType.IDENTIFIER:
            return 8
        if not self.sample_type & SampleType.ID:
            return None
        after = 8 * sum(1 for bit in (SampleType.STREAM_ID, SampleType.CPU, SampleType.IDENTIFIER)
                        if self.sample_type & bit)
        return after + 8


@dataclass(frozen=True)
class SampleId:
    """The sample_id trailer of a non-sample record (present with attr.sample_id_all)."""

    pid: Pid = -1
    tid: Tid = -1
    time: Nanoseconds = 0
    id: int = 0
    stream_id: int = 0
    cpu: Cpu = -1


@dataclass(frozen=True)
class Sample:
    misc: int = 0
    ip: Address = 0
    pid: Pid = -1
    tid: Tid = -1
    time: Nanoseconds = 0
    addr: Address = 0
    id: int = 0
    stream_id: int = 0
    cpu: Cpu = -1
    period: int = 0
    read: tuple[CounterValue, ...] = ()
    callchain: tuple[int, ...] = ()
    raw: bytes = b""
    branch_stack: tuple[tuple[int, int, int], ...] = ()
    regs_user_abi: int = 0
    regs_user: tuple[int, ...] = ()
    stack_user: bytes = b""
    stack_user_dyn_size: int = 0
    weight: int = 0
    data_src: int = 0
    transaction: int = 0
    regs_intr_abi: int = 0
    regs_intr: tuple[int, ...] = ()
    phys_addr: int = 0
    cgroup: int = 0
    data_page_size: int = 0
    code_page_size: int = 0
    aux: bytes = b""

    @property
    def cpumode(self) -> int:
        return self.misc & MISC_CPUMODE_MASK


@dataclass(frozen=True)
class Mmap:
    """MMAP or MMAP2: a file (or anonymous region) mapped into a process."""

    pid: Pid
    tid: Tid
    start: Address
    length: int
    pgoff: FileOffset
    filename: str
    misc: int = 0
    maj: int = 0
    min: int = 0
    ino: int = 0
    ino_generation: int = 0
    build_id: bytes = b""
    prot: int = 0
    flags: int = 0
    sample_id: SampleId = field(default_factory=SampleId)

    @property
    def end(self) -> Address:
        return self.start + self.length


@dataclass(frozen=True)
class Comm:
    pid: Pid
    tid: Tid
    comm: str
    exec: bool = False
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(frozen=True)
class TaskEvent:
    """FORK or EXIT."""

    kind: int  # RecordType.FORK or RecordType.EXIT
    pid: Pid
    ppid: Pid
    tid: Tid
    ptid: Tid
    time: Nanoseconds
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(frozen=True)
class Lost:
    id: int
    lost: int
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(frozen=True)
class Throttle:
    throttled: bool
    time: Nanoseconds
    id: int
    stream_id: int
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(frozen=True)
class Switch:
    """SWITCH (the sample's own task) or SWITCH_CPU_WIDE (with the task switched to or from)."""

    out: bool                 # switched out (else in)
    preempt: bool             # switched out while runnable (preempted), not blocked
    next_prev_pid: Pid = -1   # CPU-wide only: the task switched to (out) or from (in)
    next_prev_tid: Tid = -1
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(frozen=True)
class ReadRecord:
    """READ: an inherited counter's final value, written when the thread that owned it exits."""

    pid: Pid
    tid: Tid
    values: tuple[CounterValue, ...]
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(frozen=True)
class OtherRecord:
    """Any record this module does not model field by field; kept whole."""

    type: int
    misc: int
    data: bytes


# --- walking records ---------------------------------------------------------------------------------

def iter_records(buf: bytes | memoryview, offset: int = 0,
                 end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """(offset, type, misc, size) for each whole record in buf[offset:end]; stops before a partial or
    impossible (size < 8) record, so a buffer cut in the middle of a record yields everything before it."""
    stop = len(buf) if end is None else min(end, len(buf))
    unpack = HEADER.unpack_from
    while offset + 8 <= stop:
        rtype, misc, size = unpack(buf, offset)
        if size < 8 or offset + size > stop:
            return
        yield offset, rtype, misc, size
        offset += size


def whole_records_length(buf: bytes | memoryview, offset: int = 0, end: int | None = None) -> int:
    """How many bytes from `offset` form whole records (what a reader of a cut-short file can use)."""
    last = offset
    for rec_offset, _, _, size in iter_records(buf, offset, end):
        last = rec_offset + size
    return last - offset


def _cstring(buf: bytes | memoryview, start: int, end: int) -> str:
    raw = bytes(buf[start:end])
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_sample_id(buf: bytes | memoryview, offset: int, size: int, layout: SampleLayout) -> SampleId:
    """Read the sample_id trailer at the end of a non-sample record."""
    if not layout.sample_id_all or layout.trailer_size == 0:
        return SampleId()
    pos = offset + size - layout.trailer_size
    if pos < offset + 8:
        raise RecordError("record too short for its sample_id trailer")
    st = layout.sample_type
    values: dict[str, int] = {}
    if st & _ST_TID:
        values["pid"], values["tid"] = struct.unpack_from("<ii", buf, pos)
        pos += 8
    if st & _ST_TIME:
        values["time"] = _U64.unpack_from(buf, pos)[0]
        pos += 8
    if st & _ST_ID:
        values["id"] = _U64.unpack_from(buf, pos)[0]
        pos += 8
    if st & _ST_STREAM_ID:
        values["stream_id"] = _U64.unpack_from(buf, pos)[0]
        pos += 8
    if st & _ST_CPU:
        values["cpu"] = _U32x2.unpack_from(buf, pos)[0]
        pos += 8
    if st & _ST_IDENTIFIER:
        values["id"] = _U64.unpack_from(buf, pos)[0]
    return SampleId(**values)


def parse_sample(buf: bytes | memoryview, offset: int, layout: SampleLayout) -> Sample:
    """Decode the PERF_RECORD_SAMPLE at `offset` with the layout of the attr that produced it."""
    rtype, misc, size = HEADER.unpack_from(buf, offset)
    if rtype != RecordType.SAMPLE:
        raise RecordError(f"record type {rtype} is not a sample")
    end = offset + size
    pos = offset + 8
    st = layout.sample_type
    out: dict[str, object] = {"misc": misc}

    def u64() -> int:
        nonlocal pos
        if pos + 8 > end:
            raise RecordError("sample shorter than its sample_type says")
        (value,) = _U64.unpack_from(buf, pos)
        pos += 8
        return value

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > end:
            raise RecordError("sample shorter than its sample_type says")
        data = bytes(buf[pos:pos + n])
        pos += n
        return data

    if st & SampleType.IDENTIFIER:
        out["id"] = u64()
    if st & SampleType.IP:
        out["ip"] = u64()
    if st & SampleType.TID:
        value = u64()
        out["pid"], out["tid"] = _signed32(value & 0xFFFFFFFF), _signed32(value >> 32)
    if st & SampleType.TIME:
        out["time"] = u64()
    if st & SampleType.ADDR:
        out["addr"] = u64()
    if st & SampleType.ID:
        out["id"] = u64()
    if st & SampleType.STREAM_ID:
        out["stream_id"] = u64()
    if st & SampleType.CPU:
        out["cpu"] = u64() & 0xFFFFFFFF
    if st & SampleType.PERIOD:
        out["period"] = u64()
    if st & SampleType.READ:
        if layout.read_format & ReadFormat.GROUP:
            if pos + 8 > end:
                raise RecordError("sample shorter than its read_format says")
            nr = _U64.unpack_from(buf, pos)[0]
            need = read_size(layout.read_format, nr)
        else:
            need = read_size(layout.read_format)
        if pos + need > end:
            raise RecordError("sample shorter than its read_format says")
        values, pos = parse_read(buf, layout.read_format, pos)
        out["read"] = tuple(values)
    if st & SampleType.CALLCHAIN:
        nr = u64()
        if pos + 8 * nr > end:
            raise RecordError(f"callchain of {nr} entries does not fit in the sample")
        out["callchain"] = struct.unpack_from(f"<{nr}Q", buf, pos)
        pos += 8 * nr
    if st & SampleType.RAW:
        if pos + 4 > end:
            raise RecordError("sample shorter than its raw size says")
        (raw_size,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        out["raw"] = take(raw_size)
        pos = offset + 8 + ((pos - offset - 8 + 7) & ~7)  # u32 size + data is padded to 8 bytes
    if st & SampleType.BRANCH_STACK:
        nr = u64()
        if layout.branch_hw_index:
            u64()
        entries = []
        for _ in range(nr):
            entries.append((u64(), u64(), u64()))
        out["branch_stack"] = tuple(entries)
    if st & SampleType.REGS_USER:
        abi_ = u64()
        out["regs_user_abi"] = abi_
        if abi_:
            out["regs_user"] = tuple(u64() for _ in range(layout.regs_user_count))
    if st & SampleType.STACK_USER:
        stack_size = u64()
        out["stack_user"] = take(stack_size)
        if stack_size:
            out["stack_user_dyn_size"] = u64()
    if st & (SampleType.WEIGHT | SampleType.WEIGHT_STRUCT):
        out["weight"] = u64()
    if st & SampleType.DATA_SRC:
        out["data_src"] = u64()
    if st & SampleType.TRANSACTION:
        out["transaction"] = u64()
    if st & SampleType.REGS_INTR:
        abi_ = u64()
        out["regs_intr_abi"] = abi_
        if abi_:
            out["regs_intr"] = tuple(u64() for _ in range(layout.regs_intr_count))
    if st & SampleType.PHYS_ADDR:
        out["phys_addr"] = u64()
    if st & SampleType.CGROUP:
        out["cgroup"] = u64()
    if st & SampleType.DATA_PAGE_SIZE:
        out["data_page_size"] = u64()
    if st & SampleType.CODE_PAGE_SIZE:
        out["code_page_size"] = u64()
    if st & SampleType.AUX:
        out["aux"] = take(u64())
    return Sample(**out)


def _signed32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def parse_record(buf: bytes | memoryview, offset: int, layout: SampleLayout | None = None):
    """Decode any record at `offset`: Sample (needs a layout), Mmap, Comm, TaskEvent, Lost, Throttle, Switch,
    ReadRecord (needs a layout) or OtherRecord. `layout` also supplies the sample_id trailer of side records."""
    rtype, misc, size = HEADER.unpack_from(buf, offset)
    if size < 8 or offset + size > len(buf):
        raise RecordError(f"record at {offset} of size {size} runs past the end of the data")
    if rtype == RecordType.SAMPLE:
        if layout is None:
            raise RecordError("decoding a sample needs the layout of its attr")
        return parse_sample(buf, offset, layout)

    def sid() -> SampleId:
        return parse_sample_id(buf, offset, size, layout) if layout else SampleId()

    body_end = offset + size - (layout.trailer_size if layout and rtype < RecordType.HEADER_ATTR else 0)
    try:
        if rtype == RecordType.MMAP:
            pid, tid, start, length, pgoff = struct.unpack_from("<iiQQQ", buf, offset + 8)
            return Mmap(pid, tid, start, length, pgoff, _cstring(buf, offset + 40, body_end), misc=misc,
                        sample_id=sid())
        if rtype == RecordType.MMAP2:
            pid, tid, start, length, pgoff = struct.unpack_from("<iiQQQ", buf, offset + 8)
            prot, flags = struct.unpack_from("<II", buf, offset + 64)
            name = _cstring(buf, offset + 72, body_end)
            if misc & MISC_MMAP_BUILD_ID:
                bid_size = buf[offset + 40]
                build_id = bytes(buf[offset + 44: offset + 44 + min(bid_size, 20)])
                return Mmap(pid, tid, start, length, pgoff, name, misc=misc, build_id=build_id, prot=prot,
                            flags=flags, sample_id=sid())
            maj, min_, ino, ino_gen = struct.unpack_from("<IIQQ", buf, offset + 40)
            return Mmap(pid, tid, start, length, pgoff, name, misc=misc, maj=maj, min=min_, ino=ino,
                        ino_generation=ino_gen, prot=prot, flags=flags, sample_id=sid())
        if rtype == RecordType.COMM:
            pid, tid = struct.unpack_from("<ii", buf, offset + 8)
            return Comm(pid, tid, _cstring(buf, offset + 16, body_end), exec=bool(misc & MISC_COMM_EXEC),
                        sample_id=sid())
        if rtype in (RecordType.FORK, RecordType.EXIT):
            pid, ppid, tid, ptid, time = struct.unpack_from("<iiiiQ", buf, offset + 8)
            return TaskEvent(rtype, pid, ppid, tid, ptid, time, sample_id=sid())
        if rtype == RecordType.LOST:
            ident, lost = struct.unpack_from("<QQ", buf, offset + 8)
            return Lost(ident, lost, sample_id=sid())
        if rtype == RecordType.LOST_SAMPLES:
            (lost,) = struct.unpack_from("<Q", buf, offset + 8)
            return Lost(0, lost, sample_id=sid())
        if rtype in (RecordType.THROTTLE, RecordType.UNTHROTTLE):
            time, ident, stream = struct.unpack_from("<QQQ", buf, offset + 8)
            return Throttle(rtype == RecordType.THROTTLE, time, ident, stream, sample_id=sid())
        if rtype in (RecordType.SWITCH, RecordType.SWITCH_CPU_WIDE):
            out, preempt = bool(misc & MISC_SWITCH_OUT), bool(misc & MISC_SWITCH_OUT_PREEMPT)
            if rtype == RecordType.SWITCH:
                return Switch(out, preempt, sample_id=sid())
            pid, tid = struct.unpack_from("<ii", buf, offset + 8)
            return Switch(out, preempt, pid, tid, sample_id=sid())
        if rtype == RecordType.READ:
            if layout is None:
                raise RecordError("decoding a READ record needs the layout of its attr")
            pid, tid = struct.unpack_from("<ii", buf, offset + 8)
            rf = layout.read_format
            nr = struct.unpack_from("<Q", buf, offset + 16)[0] if rf & ReadFormat.GROUP else 1
            if 16 + read_size(rf, nr) > body_end - offset:
                raise RecordError(f"READ record at {offset} is shorter than its read_format says")
            values, _ = parse_read(buf, rf, offset + 16)
            return ReadRecord(pid, tid, tuple(values), sample_id=sid())
    except struct.error as exc:
        raise RecordError(f"record type {rtype} at {offset} is truncated: {exc}") from None
    return OtherRecord(rtype, misc, bytes(buf[offset:offset + size]))


def sample_id_trailer(layout: SampleLayout, pid: int, tid: int, time: int = 0, ident: int = 0, cpu: int = 0) -> bytes:
    """The sample_id trailer bytes for a synthesized record, matching what the kernel would append."""
    if not layout.sample_id_all:
        return b""
    st = layout.sample_type
    out = b""
    if st & SampleType.TID:
        out += struct.pack("<ii", pid, tid)
    if st & SampleType.TIME:
        out += _U64.pack(time)
    if st & SampleType.ID:
        out += _U64.pack(ident)
    if st & SampleType.STREAM_ID:
        out += _U64.pack(ident)
    if st & SampleType.CPU:
        out += struct.pack("<II", cpu, 0)
    if st & SampleType.IDENTIFIER:
        out += _U64.pack(ident)
    return out


def trailer_maker(layout: SampleLayout, ident: int) -> Callable[[int, int], bytes]:
    """sample_id_trailer(layout, pid, tid, 0, ident, 0) as a function of (pid, tid) alone, packed once: TID leads the
    trailer and is the only part that differs between the records a sampler synthesizes from /proc (thousands at
    each window start of a busy machine)."""
    whole = sample_id_trailer(layout, 0, 0, 0, ident, 0)
    if not layout.sample_id_all or not int(layout.sample_type) & int(SampleType.TID):
        return lambda pid, tid: whole
    rest = whole[8:]
    pack = _PID_TID.pack
    return lambda pid, tid: pack(pid, tid) + rest


_PID_TID = struct.Struct("<ii")


def pack_string(text: str) -> bytes:
    """A NUL-terminated string padded to a multiple of 8 bytes, as records carry them."""
    raw = text.encode("utf-8", "surrogateescape") + b"\0"  # /proc paths are bytes: keep them exact
    return raw + b"\0" * (-len(raw) % 8)
