"""Samples as columns: one `SampleBatch` per event per stretch of stream, accumulated into `SampleColumns`.

A batch is read with numpy from the records' fixed offsets (one attr layout at a time); variable-length parts
(callchain, raw data, user registers, user stack copy) are located per sample, every length checked against the
record it sits in before anything is read or allocated: a sample whose lengths do not fit its record is left
out and counted with its reason, never trusted. The batch lives only while its stretch of stream does: per-sample
stages (stages.py) look at it then, and only the columns a Profile needs are kept (`SampleColumns.add`), so the
bytes of user stack copies never outlive their batch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from hwprof.perf.abi import MISC_CPUMODE_MASK, CallchainContext, CpuMode, ReadFormat, SampleType
from hwprof.perf.readformat import read_size
from hwprof.pipeline.chains import ChainTable
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.walk import EventInfo

_USER_MARKER = np.uint64(CallchainContext.USER)
_USER_MARKER_BYTES = int(CallchainContext.USER).to_bytes(8, "little")
_NOT_UNWOUND = 255  # stages.NOT_UNWOUND


@dataclass(frozen=True)
class UserFields:
    """Where the variable-length parts of each sample of a batch are: byte offsets into `SampleBatch.buffer`.

    Absent parts have size 0 (and start 0). `regs_user` is (n, registers in attr.sample_regs_user order), zero
    rows where the ABI is 0 (no user registers: a kernel thread).
    """

    raw_start: np.ndarray        # int64
    raw_size: np.ndarray         # int64
    regs_user_abi: np.ndarray    # uint64 (PERF_SAMPLE_REGS_ABI_*; 0 = none)
    regs_user: np.ndarray        # uint64 (n, k)
    stack_start: np.ndarray      # int64
    stack_size: np.ndarray       # int64 bytes copied
    stack_dyn_size: np.ndarray   # int64 bytes of them that were really stack (0 when absent)


@dataclass(frozen=True)
class UnwoundStacks:
    """What an unwinding stage gives back for the samples of a batch: new user frames, replacing the callchain's.

    `addresses[offsets[i]:offsets[i + 1]]` are sample i's user frames, leaf first (the leaf is the interrupted
    pc, the others return addresses, as the kernel writes a callchain); `stop[i]` says why its walk ended, in
    the stage's own codes (uint8; stages.NOT_UNWOUND = 255 for a sample it left alone, whose callchain stays).
    """

    addresses: np.ndarray     # uint64
    offsets: np.ndarray       # int64, n + 1
    stop: np.ndarray          # uint8


@dataclass
class SampleBatch:
    """The samples of one event in one stretch of stream, as columns. Valid only during the batch."""

    event: EventInfo
    buffer: bytes              # the stretch of stream (read it as np.frombuffer(..., "<u8", len // 8))
    offsets: np.ndarray        # int64 byte offset of each sample record in buffer
    seq: np.ndarray            # int64 order key of untimed streams (side records before each sample)
    time: np.ndarray           # uint64 ns (0 when the attr has no TIME)
    pid: np.ndarray            # int64 (-1 when absent)
    tid: np.ndarray            # int64
    cpu: np.ndarray            # int64 (-1 when absent)
    period: np.ndarray         # float64
    cpumode: np.ndarray        # uint8 CpuMode of the sample (header misc)
    ip: np.ndarray             # uint64 (0 when absent)
    callchain_start: np.ndarray  # int64 byte offset of the first entry (0 without a callchain)
    callchain_nr: np.ndarray     # int64 entries, context markers included (0 without)
    end: np.ndarray            # int64 byte offset just past the fixed fields, callchain included
    record_end: np.ndarray     # int64 byte offset just past each record
    spaces: AddressSpaces      # the processes' address spaces: spaces.at(pid, when) for one sample
    timed: bool                # whether `time` orders the stream (else `seq` does)
    reads: np.ndarray | None = None       # uint64 (n, members) raw group-read values
    read_times: np.ndarray | None = None  # uint64 (n, 2) enabled, running
    stream: np.ndarray | None = None      # uint64 counter instance (stream id / id) of each read
    unwound: UnwoundStacks | None = None  # set by an unwinding stage: replaces the user part of each stack
    rejected: Counter = field(default_factory=Counter)  # reason -> samples left out of this batch

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def when(self) -> np.ndarray:
        """Each sample's order key, comparable with the `when` of side records."""
        return self.time.astype(np.int64) if self.timed else self.seq

    def callchain(self, i: int) -> np.ndarray:
        """Sample i's callchain entries (context markers included), uint64."""
        start, nr = int(self.callchain_start[i]), int(self.callchain_nr[i])
        return np.frombuffer(self.buffer, dtype="<u8", count=nr, offset=start)

    def raw(self, i: int) -> bytes:
        fields = self.user_fields
        start = int(fields.raw_start[i])
        return self.buffer[start:start + int(fields.raw_size[i])]

    def stack_user(self, i: int) -> memoryview:
        """Sample i's copy of its user stack (the first stack_dyn_size bytes are valid)."""
        fields = self.user_fields
        start = int(fields.stack_start[i])
        return memoryview(self.buffer)[start:start + int(fields.stack_size[i])]

    @cached_property
    def user_fields(self) -> UserFields:
        """Raw data, user registers and user stack of every sample (located on first use: most stages and
        reports never need them)."""
        return _user_fields(self)

    def select(self, keep: np.ndarray, reason: str) -> None:
        """Drop the samples where keep is False, counting them under `reason`."""
        dropped = int(len(keep) - np.count_nonzero(keep))
        if not dropped:
            return
        self.rejected[reason] += dropped
        for name in ("offsets", "seq", "time", "pid", "tid", "cpu", "period", "cpumode", "ip", "callchain_start",
                     "callchain_nr", "end", "record_end", "reads", "read_times", "stream"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[keep])
        self.__dict__.pop("user_fields", None)


def decode_batch(event: EventInfo, buffer: bytes, offsets: np.ndarray, seqs: np.ndarray, spaces: AddressSpaces,
                 timed: bool, members: int | None = None) -> SampleBatch:
    """Read the samples of one event at `offsets` of `buffer` into columns, leaving out (and counting) any whose
    lengths do not fit its record. `members`: the group size seen so far for this event, if any."""
    words = np.frombuffer(buffer, dtype="<u8", count=len(buffer) // 8)
    widx = offsets // 8
    layout = event.layout
    fixed = layout.fixed_offsets
    n = len(widx)
    header = words[widx]
    record_end = offsets + (header >> np.uint64(48)).astype(np.int64)

    def field_(name: str) -> np.ndarray | None:
        return words[widx + fixed[name] // 8] if name in fixed else None

    tidpid = field_("pid")
    if tidpid is not None:
        pid = (tidpid & 0xFFFFFFFF).astype(np.int64)
        tid = (tidpid >> 32).astype(np.int64)
        pid = np.where(pid >= 1 << 31, pid - (1 << 32), pid)
        tid = np.where(tid >= 1 << 31, tid - (1 << 32), tid)
    else:
        pid, tid = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    time = field_("time")
    cpu = field_("cpu")
    period = field_("period")
    ip = field_("ip")
    default_period = 1 if event.attr.freq else max(1, int(event.attr.sample_period))
    batch = SampleBatch(
        event=event, buffer=buffer, offsets=offsets, seq=seqs,
        time=time if time is not None else np.zeros(n, dtype=np.uint64), pid=pid, tid=tid,
        cpu=(cpu & 0xFFFFFFFF).astype(np.int64) if cpu is not None else np.full(n, -1, dtype=np.int64),
        period=period.astype(np.float64) if period is not None else np.full(n, float(default_period)),
        cpumode=((header >> np.uint64(32)) & np.uint64(MISC_CPUMODE_MASK)).astype(np.uint8),
        ip=ip if ip is not None else np.zeros(n, dtype=np.uint64),
        callchain_start=np.zeros(n, dtype=np.int64), callchain_nr=np.zeros(n, dtype=np.int64),
        end=offsets + fixed["_end"], record_end=record_end, spaces=spaces, timed=timed)
    batch.select(batch.end <= record_end, "samples shorter than their event's fixed fields")
    if layout.has(SampleType.READ):
        _read_fields(batch, words, members)
    if layout.has(SampleType.CALLCHAIN):
        if len(batch):
            nr = words[np.minimum(batch.end // 8, len(words) - 1)].astype(np.int64)
            room = (batch.record_end - batch.end - 8) // 8
            # nr is a u64: anything above the room left in its record is damage, whatever its size.
            fits = (batch.end + 8 <= batch.record_end) & (nr >= 0) & (nr <= room)
            batch.callchain_nr = np.where(fits, nr, 0)
            batch.callchain_start = batch.end + 8
            batch.select(fits, "samples whose callchain length does not fit their record")
            batch.end = batch.callchain_start + 8 * batch.callchain_nr
    return batch


def _read_fields(batch: SampleBatch, words: np.ndarray, members: int | None) -> None:
    """PERF_SAMPLE_READ: the group's (or the counter's) values, enabled and running times, per sample."""
    rf = batch.event.layout.read_format
    has_enabled = bool(rf & ReadFormat.TOTAL_TIME_ENABLED)
    has_running = bool(rf & ReadFormat.TOTAL_TIME_RUNNING)
    times = has_enabled + has_running
    per_value = 1 + bool(rf & ReadFormat.ID) + bool(rf & ReadFormat.LOST)
    last = max(len(words) - 1, 0)
    if rf & ReadFormat.GROUP:
        nr = words[np.minimum(batch.end // 8, last)].astype(np.int64)
        if members is None:
            # the group's size: the most common count among those that fit their record (a damaged count of
            # 2**40 must never size anything)
            room = (batch.record_end - batch.end - 8 * (1 + times)) // (8 * per_value)
            fitting = nr[(nr >= 0) & (nr <= room)]
            if len(fitting):
                counts = np.unique(fitting, return_counts=True)
                members = int(counts[0][np.argmax(counts[1])])
        members = members or 0
        batch.select(nr == members, "samples whose group read has another member count than their group")
        size = read_size(rf, members)
        batch.select(batch.end + size <= batch.record_end, "samples shorter than their group read")
        head = batch.end // 8 + 1
        values = (np.stack([words[head + times + j * per_value] for j in range(members)], axis=1) if members
                  else np.zeros((len(batch), 0), dtype=np.uint64))
        time_at = head
    else:
        size = read_size(rf)
        batch.select(batch.end + size <= batch.record_end, "samples shorter than their counter read")
        head = batch.end // 8
        values = words[head][:, None]
        time_at = head + 1
    n = len(batch)
    enabled = words[time_at] if has_enabled else np.zeros(n, np.uint64)
    running = words[time_at + has_enabled] if has_running else enabled
    batch.reads = values
    batch.read_times = np.stack([enabled, running], axis=1)
    fixed = batch.event.layout.fixed_offsets
    name = next((k for k in ("stream_id", "identifier", "id") if k in fixed), None)
    batch.stream = words[batch.offsets // 8 + fixed[name] // 8] if name else np.zeros(n, dtype=np.uint64)
    batch.end = batch.end + size


def _user_fields(batch: SampleBatch) -> UserFields:
    """Walk the variable-length fields after the callchain for every sample at once, bounds-checked."""
    layout = batch.event.layout
    words = np.frombuffer(batch.buffer, dtype="<u8", count=len(batch.buffer) // 8)
    n = len(batch)
    pos = batch.end.copy()
    limit = batch.record_end
    ok = np.ones(n, dtype=bool)
    last = len(words) - 1

    def u64() -> np.ndarray:
        nonlocal pos, ok
        ok &= pos + 8 <= limit
        value = np.where(ok, words[np.clip(pos // 8, 0, last)], np.uint64(0))
        pos = pos + 8
        return value

    raw_start = np.zeros(n, dtype=np.int64)
    raw_size = np.zeros(n, dtype=np.int64)
    if layout.has(SampleType.RAW):
        ok &= pos + 4 <= limit
        low = words[np.clip(pos // 8, 0, last)] & np.uint64(0xFFFFFFFF)  # pos is 8-aligned here
        raw_size = np.where(ok, low.astype(np.int64), 0)
        raw_start = pos + 4
        ok &= raw_start + raw_size <= limit
        raw_size = np.where(ok, raw_size, 0)
        pos = pos + ((4 + raw_size + 7) & ~7)
    if layout.has(SampleType.BRANCH_STACK):
        nr = u64().astype(np.int64)
        if layout.branch_hw_index:
            u64()
        ok &= (nr >= 0) & (nr <= (limit - pos) // 24)
        pos = pos + 24 * np.where(ok, nr, 0)
    abi = np.zeros(n, dtype=np.uint64)
    regs = np.zeros((n, layout.regs_user_count), dtype=np.uint64)
    if layout.has(SampleType.REGS_USER):
        abi = u64()
        has = ok & (abi != 0)
        for j in range(layout.regs_user_count):
            at = pos + 8 * j
            fits = at + 8 <= limit
            ok &= ~has | fits
            regs[:, j] = np.where(has & fits, words[np.clip(at // 8, 0, last)], np.uint64(0))
        pos = pos + np.where(has, 8 * layout.regs_user_count, 0)
    stack_start = np.zeros(n, dtype=np.int64)
    stack_size = np.zeros(n, dtype=np.int64)
    stack_dyn = np.zeros(n, dtype=np.int64)
    if layout.has(SampleType.STACK_USER):
        size = u64().astype(np.int64)
        ok &= (size >= 0) & (size <= limit - pos)
        stack_size = np.where(ok, size, 0)
        stack_start = pos.copy()
        pos = pos + stack_size
        has = stack_size > 0
        fits = pos + 8 <= limit
        ok &= ~has | fits
        stack_dyn = np.where(has & fits, words[np.clip(pos // 8, 0, last)].astype(np.int64), 0)
        stack_dyn = np.minimum(np.maximum(stack_dyn, 0), stack_size)
    if not ok.all():
        raw_size = np.where(ok, raw_size, 0)
        stack_size = np.where(ok, stack_size, 0)
        stack_dyn = np.where(ok, stack_dyn, 0)
        abi = np.where(ok, abi, np.uint64(0))
        batch.rejected["samples whose user registers or stack do not fit their record (kept without them)"] += \
            int(n - np.count_nonzero(ok))
    return UserFields(raw_start, raw_size, abi, regs, stack_start, stack_size, stack_dyn)


# --- accumulated columns of one event ------------------------------------------------------------------

@dataclass
class SampleColumns:
    """What the Profile needs of one event's samples, gathered batch by batch (the stack as a unique-chain id)."""

    time: list[np.ndarray] = field(default_factory=list)
    pid: list[np.ndarray] = field(default_factory=list)
    tid: list[np.ndarray] = field(default_factory=list)
    cpu: list[np.ndarray] = field(default_factory=list)
    period: list[np.ndarray] = field(default_factory=list)
    seq: list[np.ndarray] = field(default_factory=list)
    chain: list[np.ndarray] = field(default_factory=list)       # int64 unique-chain index
    stop: list[np.ndarray] = field(default_factory=list)        # uint8 unwinding stop code (255: not unwound)
    reads: list[np.ndarray] = field(default_factory=list)       # (n, members) raw values
    read_times: list[np.ndarray] = field(default_factory=list)  # (n, 2) enabled, running
    stream: list[np.ndarray] = field(default_factory=list)
    state: list[np.ndarray] = field(default_factory=list)       # uint8 per sample (0: ordinary; emitted states)
    depth: list[np.ndarray] = field(default_factory=list)       # int64 frames per stack (leaf-only decoding)
    members: int | None = None                                  # group size, once seen

    def add(self, batch: SampleBatch, chains: ChainTable, leaf_only: bool = False) -> None:
        """Keep the batch's columns; its stacks become ids of `chains` (whole, or with leaf_only only what a
        self-time report needs: leaf_keys)."""
        n = len(batch)
        if not n:
            return
        self.time.append(batch.time)
        self.pid.append(batch.pid)
        self.tid.append(batch.tid)
        self.cpu.append(batch.cpu)
        self.period.append(batch.period)
        self.seq.append(batch.seq)
        if batch.reads is not None:
            self.reads.append(batch.reads)
            self.read_times.append(batch.read_times)
            self.stream.append(batch.stream)
            self.members = batch.reads.shape[1]
        if leaf_only:
            keys, depth = leaf_keys(batch)
            self.depth.append(depth)
            index = chains.ids(keys)
        elif batch.unwound is None and batch.event.layout.has(SampleType.CALLCHAIN):
            words = np.frombuffer(batch.buffer, dtype="<u8", count=len(batch.buffer) // 8)
            index = chains.ids_in(words, batch.callchain_start // 8, batch.callchain_nr)
        else:
            index = chains.ids(stack_keys(batch))
        self.chain.append(index)
        self.stop.append(batch.unwound.stop.astype(np.uint8) if batch.unwound is not None
                         else np.full(n, _NOT_UNWOUND, dtype=np.uint8))
        self.state.append(np.zeros(n, dtype=np.uint8))

    def add_emitted(self, time: np.ndarray, pid: np.ndarray, tid: np.ndarray, cpu: np.ndarray,
                    weight: np.ndarray, seq: np.ndarray, chain: np.ndarray, state: np.ndarray | None) -> None:
        """Samples a finishing stage made (already keyed to unique chains)."""
        self.time.append(time.astype(np.uint64))
        self.pid.append(pid.astype(np.int64))
        self.tid.append(tid.astype(np.int64))
        self.cpu.append(cpu.astype(np.int64))
        self.period.append(weight.astype(np.float64))
        self.seq.append(seq.astype(np.int64))
        self.chain.append(chain.astype(np.int64))
        self.stop.append(np.full(len(time), _NOT_UNWOUND, dtype=np.uint8))
        self.state.append(state.astype(np.uint8) if state is not None else np.zeros(len(time), dtype=np.uint8))
        if self.depth:
            self.depth.append(np.full(len(time), -1, dtype=np.int64))  # whole stacks: resolution counts them

    def cat(self, name: str, dtype: str, width: int | None = None) -> np.ndarray:
        parts = getattr(self, name)
        if not parts:
            return np.zeros((0, width) if width else 0, dtype=dtype)
        return np.concatenate(parts).astype(dtype, copy=False)

    def __len__(self) -> int:
        return sum(len(p) for p in self.pid)


def stack_keys(batch: SampleBatch) -> list[bytes]:
    """The stack of each sample as bytes (callchain entries, u64 little-endian, context markers included): the
    callchain, with its user part replaced by an unwinding stage's frames, or without a callchain the ip tagged
    with its context."""
    n = len(batch)
    buffer = batch.buffer
    if batch.event.layout.has(SampleType.CALLCHAIN):
        starts = batch.callchain_start.tolist()
        ends = (batch.callchain_start + 8 * batch.callchain_nr).tolist()
        keys = [buffer[s:e] for s, e in zip(starts, ends, strict=True)]
    else:
        tagged = np.where(batch.cpumode == CpuMode.KERNEL, np.uint64(CallchainContext.KERNEL),
                          np.uint64(CallchainContext.USER))
        raw = np.stack([tagged, batch.ip], axis=1).astype("<u8").tobytes()
        keys = [raw[i * 16:(i + 1) * 16] for i in range(n)]
    unwound = batch.unwound
    if unwound is None:
        return keys
    addresses = unwound.addresses.astype("<u8")
    offsets = unwound.offsets.tolist()
    stop = unwound.stop
    out = []
    for i, key in enumerate(keys):
        if stop[i] == _NOT_UNWOUND:
            out.append(key)
            continue
        entries = np.frombuffer(key, dtype="<u8")
        user_at = np.nonzero(entries == _USER_MARKER)[0]
        kernel_part = key[:int(user_at[0]) * 8] if len(user_at) else key
        start, end = offsets[i], offsets[i + 1]
        out.append(kernel_part + _USER_MARKER_BYTES + addresses[start:end].tobytes() if end > start else kernel_part)
    return out


_MARKER_MIN = np.uint64(CallchainContext.MAX)
_KERNEL_SPACE = np.uint64(0xFFFF800000000000)


def leaf_keys(batch: SampleBatch) -> tuple[list[bytes], np.ndarray]:
    """The stack of each sample cut to what a self-time report needs, and each stack's depth in frames.

    A self ("--no-children") report reads the leaf (with its inline chain) and, for the stack-quality line, whether
    the outermost frame is known and whether the stack hit the depth limit. So each key is [context, leaf,
    context, outermost] (or [context, leaf] for a one-frame stack), the outermost already at its call site
    (return address - 1) when it is a return address, and the depth counted here: the millions of middle entries
    of deep stacks are never copied, deduplicated, resolved or symbolized.
    """
    n = len(batch)
    if not batch.event.layout.has(SampleType.CALLCHAIN) or batch.unwound is not None:
        keys = stack_keys(batch)
        return [_cut(key) for key in keys], np.array([_depth(key) for key in keys], dtype=np.int64)
    words = np.frombuffer(batch.buffer, dtype="<u8", count=len(batch.buffer) // 8)
    last = len(words) - 1
    start = batch.callchain_start // 8
    end = start + batch.callchain_nr
    is_marker = words >= _MARKER_MIN
    before = np.zeros(len(words) + 1, dtype=np.int32)
    np.cumsum(is_marker, out=before[1:])
    depth = (batch.callchain_nr - (before[end] - before[start])).astype(np.int64)
    leaf = start.copy()
    root = end - 1
    for _ in range(8):  # past the (few) context markers at either end
        leaf += (leaf < end) & is_marker[np.clip(leaf, 0, last)]
        root -= (root >= start) & is_marker[np.clip(root, 0, last)]
    position = np.where(is_marker, np.arange(len(words), dtype=np.int32), np.int32(-1))
    np.maximum.accumulate(position, out=position)
    del is_marker, before

    def context(at: np.ndarray) -> np.ndarray:
        marker_at = position[np.clip(at, 0, last)]
        fallback = np.where(words[np.clip(at, 0, last)] >= _KERNEL_SPACE, np.uint64(CallchainContext.KERNEL),
                            np.uint64(CallchainContext.USER))
        return np.where(marker_at >= start, words[np.clip(marker_at, 0, last)], fallback)

    leaf_value = words[np.clip(leaf, 0, last)]
    root_value = words[np.clip(root, 0, last)]
    # the outermost frame is a return address unless it is the first frame of its context
    returning = (root > start) & (position[np.clip(root - 1, 0, last)] != root - 1) & (root_value != 0)
    root_value = root_value - returning.astype(np.uint64)
    table = np.stack([context(leaf), leaf_value, context(root), root_value], axis=1).astype("<u8")
    raw = table.tobytes()
    size = np.where(depth > 1, 32, np.where(depth == 1, 16, 0)).tolist()
    keys = [raw[32 * i:32 * i + size[i]] for i in range(n)]
    return keys, depth


def _cut(key: bytes) -> bytes:
    """leaf_keys for one stack given as bytes (unwound stacks, ip-only samples: the slow path)."""
    entries = np.frombuffer(key, dtype="<u8")
    frames = np.nonzero(entries < _MARKER_MIN)[0]
    if len(frames) <= 1:
        return key
    out = []
    for i in (frames[0], frames[-1]):
        markers = np.nonzero(entries[:i] >= _MARKER_MIN)[0]
        ctx = entries[markers[-1]] if len(markers) else (np.uint64(CallchainContext.KERNEL)
                                                          if entries[i] >= _KERNEL_SPACE
                                                          else np.uint64(CallchainContext.USER))
        value = entries[i]
        if i == frames[-1] and i > 0 and entries[i - 1] < _MARKER_MIN and value:
            value = value - np.uint64(1)
        out += [ctx, value]
    return np.array(out, dtype="<u8").tobytes()


def _depth(key: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(key, dtype="<u8") < _MARKER_MIN))
