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
    MISC_MMAP_DATA,
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

    @cached_property
    def trailer_reader(self) -> Callable[[bytes | memoryview, int], SampleId]:
        """Reads the sample_id trailer starting at a position with one precompiled struct: side records of a busy
        machine (mmap, comm, fork, exit of short-lived processes) come by the thousand per second."""
        if not self.sample_id_all or self.trailer_size == 0:
            empty = SampleId()
            return lambda buf, pos: empty
        st = self.sample_type
        fmt, names = "<", []
        for bit, code, field_names in ((_ST_TID, "ii", ("pid", "tid")), (_ST_TIME, "Q", ("time",)),
                                       (_ST_ID, "Q", ("id",)), (_ST_STREAM_ID, "Q", ("stream_id",)),
                                       (_ST_CPU, "I4x", ("cpu",)), (_ST_IDENTIFIER, "Q", ("id",))):
            if st & bit:
                fmt += code
                names.extend(field_names)
        unpack = struct.Struct(fmt).unpack_from
        if names == ["pid", "tid", "time", "cpu"]:  # what hwprof and perf record write without groups
            def common(buf: bytes | memoryview, pos: int) -> SampleId:
                pid, tid, time, cpu = unpack(buf, pos)
                return SampleId(pid, tid, time, 0, 0, cpu)
            return common
        fields = tuple(names)
        return lambda buf, pos: SampleId(**dict(zip(fields, unpack(buf, pos), strict=True)))

    @cached_property
    def trailer_time_at(self) -> int | None:
        """Offset of TIME from the start of the sample_id trailer, None when the trailer has no time."""
        if not self.sample_id_all or not self.sample_type & _ST_TIME:
            return None
        return 8 if self.sample_type & _ST_TID else 0

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


# Records are values: nothing changes one after it is made, and they hash by value. They are not frozen
# dataclasses all the same: a frozen dataclass sets each field through object.__setattr__, ~6 us a record against
# ~0.7 us with slots, and a busy machine's capture has side records by the hundred thousand.
_RECORD = {"slots": True, "unsafe_hash": True}


@dataclass(**_RECORD)
class SampleId:
    """The sample_id trailer of a non-sample record (present with attr.sample_id_all)."""

    pid: Pid = -1
    tid: Tid = -1
    time: Nanoseconds = 0
    id: int = 0
    stream_id: int = 0
    cpu: Cpu = -1


_NO_SAMPLE_ID = SampleId()  # never changed (see _RECORD)


@dataclass(**_RECORD)
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


@dataclass(**_RECORD)
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


_REF_PID_MISC = struct.Struct("<4xH2xi")       # misc (the header: type, misc, size), pid (the first body field)
_REF_PROT = struct.Struct("<I")               # MMAP2's prot, at byte 64


@dataclass(slots=True)
class MmapRef:
    """An MMAP/MMAP2 record kept as its bytes, parsed (`parse()`) only when its mapping is needed.

    A machine that starts processes all the time sends several mappings per process start; most of those processes
    exit without a sample in them, and their mappings are never looked at (hwprof agent)."""

    data: bytes
    layout: SampleLayout | None

    @property
    def pid(self) -> Pid:
        return _REF_PID_MISC.unpack_from(self.data, 0)[1]

    @property
    def is_code(self) -> bool:
        """False for a data mapping (perf record -d) and for an MMAP2 without PROT_EXEC: never code."""
        misc = _REF_PID_MISC.unpack_from(self.data, 0)[0]
        if misc & MISC_MMAP_DATA:
            return False
        if self.data[0] == _MMAP2 and len(self.data) >= 68:
            prot = _REF_PROT.unpack_from(self.data, 64)[0]
            return not prot or bool(prot & 4)
        return True

    def parse(self) -> Mmap:
        return parse_record(self.data, 0, self.layout)


@dataclass(**_RECORD)
class Comm:
    pid: Pid
    tid: Tid
    comm: str
    exec: bool = False
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(**_RECORD)
class TaskEvent:
    """FORK or EXIT."""

    kind: int  # RecordType.FORK or RecordType.EXIT
    pid: Pid
    ppid: Pid
    tid: Tid
    ptid: Tid
    time: Nanoseconds
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(**_RECORD)
class Lost:
    id: int
    lost: int
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(**_RECORD)
class Throttle:
    throttled: bool
    time: Nanoseconds
    id: int
    stream_id: int
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(**_RECORD)
class Switch:
    """SWITCH (the sample's own task) or SWITCH_CPU_WIDE (with the task switched to or from)."""

    out: bool                 # switched out (else in)
    preempt: bool             # switched out while runnable (preempted), not blocked
    next_prev_pid: Pid = -1   # CPU-wide only: the task switched to (out) or from (in)
    next_prev_tid: Tid = -1
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(**_RECORD)
class ReadRecord:
    """READ: an inherited counter's final value, written when the thread that owned it exits."""

    pid: Pid
    tid: Tid
    values: tuple[CounterValue, ...]
    sample_id: SampleId = field(default_factory=SampleId)


@dataclass(**_RECORD)
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
    if isinstance(buf, bytes):
        nul = buf.find(0, start, end)
        return buf[start:end if nul < 0 else nul].decode("utf-8", "replace")
    raw = bytes(buf[start:end])
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_sample_id(buf: bytes | memoryview, offset: int, size: int, layout: SampleLayout) -> SampleId:
    """Read the sample_id trailer at the end of a non-sample record."""
    trailer = layout.trailer_size
    if not trailer or not layout.sample_id_all:
        return SampleId()
    pos = offset + size - trailer
    if pos < offset + 8:
        raise RecordError("record too short for its sample_id trailer")
    return layout.trailer_reader(buf, pos)


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


_MMAP, _LOST, _COMM, _EXIT, _THROTTLE, _UNTHROTTLE, _FORK, _READ, _SAMPLE, _MMAP2 = range(1, 11)
_LOST_SAMPLES, _SWITCH, _SWITCH_CPU_WIDE, _HEADER_ATTR = 13, 14, 15, 64
_MMAP_FIXED = struct.Struct("<iiQQQ")
_MMAP2_FIXED = struct.Struct("<iiQQQIIQQII")   # ... maj, min, ino, ino_generation, prot, flags
_MMAP2_BUILD_ID = struct.Struct("<iiQQQB3x20sII")
_PID_TID_PAIR = struct.Struct("<ii")
_TASK = struct.Struct("<iiiiQ")
_QQ = struct.Struct("<QQ")
_QQQ = struct.Struct("<QQQ")
_MODELLED = frozenset({_MMAP, _LOST, _COMM, _EXIT, _THROTTLE, _UNTHROTTLE, _FORK, _READ, _MMAP2, _LOST_SAMPLES,
                       _SWITCH, _SWITCH_CPU_WIDE})


def parse_record(buf: bytes | memoryview, offset: int, layout: SampleLayout | None = None):
    """Decode any record at `offset`: Sample (needs a layout), Mmap, Comm, TaskEvent, Lost, Throttle, Switch,
    ReadRecord (needs a layout) or OtherRecord. `layout` also supplies the sample_id trailer of side records.

    Record types are compared as plain ints and each kind has one precompiled struct: this runs for every side
    record of a capture (thousands per second on a machine that starts many short-lived processes)."""
    rtype, misc, size = HEADER.unpack_from(buf, offset)
    if size < 8 or offset + size > len(buf):
        raise RecordError(f"record at {offset} of size {size} runs past the end of the data")
    if rtype == _SAMPLE:
        if layout is None:
            raise RecordError("decoding a sample needs the layout of its attr")
        return parse_sample(buf, offset, layout)
    side = layout is not None and rtype < _HEADER_ATTR
    body_end = offset + size - (layout.trailer_size if side else 0)
    if rtype not in _MODELLED:
        return OtherRecord(rtype, misc, bytes(buf[offset:offset + size]))
    sample_id = parse_sample_id(buf, offset, size, layout) if side else _NO_SAMPLE_ID
    try:
        if rtype == _MMAP2:
            if misc & MISC_MMAP_BUILD_ID:
                pid, tid, start, length, pgoff, bid_size, build_id, prot, flags = \
                    _MMAP2_BUILD_ID.unpack_from(buf, offset + 8)
                return Mmap(pid, tid, start, length, pgoff, _cstring(buf, offset + 72, body_end), misc=misc,
                            build_id=build_id[:min(bid_size, 20)], prot=prot, flags=flags, sample_id=sample_id)
            pid, tid, start, length, pgoff, maj, min_, ino, ino_gen, prot, flags = \
                _MMAP2_FIXED.unpack_from(buf, offset + 8)
            return Mmap(pid, tid, start, length, pgoff, _cstring(buf, offset + 72, body_end), misc, maj, min_, ino,
                        ino_gen, b"", prot, flags, sample_id)
        if rtype == _COMM:
            pid, tid = _PID_TID_PAIR.unpack_from(buf, offset + 8)
            return Comm(pid, tid, _cstring(buf, offset + 16, body_end), bool(misc & MISC_COMM_EXEC), sample_id)
        if rtype == _FORK or rtype == _EXIT:
            pid, ppid, tid, ptid, time = _TASK.unpack_from(buf, offset + 8)
            return TaskEvent(rtype, pid, ppid, tid, ptid, time, sample_id)
        if rtype == _MMAP:
            pid, tid, start, length, pgoff = _MMAP_FIXED.unpack_from(buf, offset + 8)
            return Mmap(pid, tid, start, length, pgoff, _cstring(buf, offset + 40, body_end), misc=misc,
                        sample_id=sample_id)
        if rtype == _LOST:
            ident, lost = _QQ.unpack_from(buf, offset + 8)
            return Lost(ident, lost, sample_id)
        if rtype == _LOST_SAMPLES:
            (lost,) = _U64.unpack_from(buf, offset + 8)
            return Lost(0, lost, sample_id)
        if rtype == _THROTTLE or rtype == _UNTHROTTLE:
            time, ident, stream = _QQQ.unpack_from(buf, offset + 8)
            return Throttle(rtype == _THROTTLE, time, ident, stream, sample_id)
        if rtype == _SWITCH or rtype == _SWITCH_CPU_WIDE:
            out, preempt = bool(misc & MISC_SWITCH_OUT), bool(misc & MISC_SWITCH_OUT_PREEMPT)
            if rtype == _SWITCH:
                return Switch(out, preempt, sample_id=sample_id)
            pid, tid = _PID_TID_PAIR.unpack_from(buf, offset + 8)
            return Switch(out, preempt, pid, tid, sample_id)
        if rtype == _READ:
            if layout is None:
                raise RecordError("decoding a READ record needs the layout of its attr")
            pid, tid = _PID_TID_PAIR.unpack_from(buf, offset + 8)
            rf = layout.read_format
            nr = _U64.unpack_from(buf, offset + 16)[0] if rf & ReadFormat.GROUP else 1
            if 16 + read_size(rf, nr) > body_end - offset:
                raise RecordError(f"READ record at {offset} is shorter than its read_format says")
            values, _ = parse_read(buf, rf, offset + 16)
            return ReadRecord(pid, tid, tuple(values), sample_id)
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
