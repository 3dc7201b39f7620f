"""The one record-stream walk: ring buffers and perf.data data sections alike, typed callbacks, one dispatch.

Like perf's `perf_tool` (tools/perf/util/session.c), one reader feeds each consumer's callbacks: the decoder, the
probe collectors and the sampler's finalisation all subclass RecordHandler and override what they need. The walk
only parses the record kinds its handler overrides, and it never makes a Python object per sample: samples are
handed over per stretch of stream as byte offsets (`SampleRecords`), which the decoder reads with numpy and the
probe collector parses one by one.

Why samples come after the side records of their stretch: the per-record Python work is then one header unpack;
order is kept by the `seq` of each sample (side records before it) and by timestamps.

Nothing is dropped silently: a record whose header is impossible (size < 8, or longer than any record can be),
bytes that never form a whole record, compressed records, are counted with their reason in `WalkStats` and become
notes. After a damaged header the walk looks for the next place where whole, plausible records start again and
resumes there, so one bad record costs the bytes up to that place, not the rest of the file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwprof.perf.abi import RecordType, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import (
    Comm,
    Lost,
    Mmap,
    MmapRef,
    OtherRecord,
    ReadRecord,
    RecordError,
    SampleLayout,
    Switch,
    TaskEvent,
    Throttle,
    parse_record,
)

_HEADER_TYPE = struct.Struct("<IxxH")
_TIME = struct.Struct("<Q")
# The fixed part of a mapping record (MMAP: header, pid, tid, start, len, pgoff; MMAP2: + maj/min/ino or the build-id,
# prot, flags): a shorter record is counted as unparsable by the walk, so a deferred parse cannot fail later.
_MAPPING_FIXED = {int(RecordType.MMAP): 40, int(RecordType.MMAP2): 72}
_SAMPLE = int(RecordType.SAMPLE)  # plain ints: enum comparisons cost in the per-record loop
_USER_TYPES = int(RecordType.HEADER_ATTR)
_COMPRESSED = int(RecordType.COMPRESSED)
_HEADER_DTYPE = np.dtype([("type", "<u4"), ("misc", "<u2"), ("size", "<u2")])
MAX_RECORD = 1 << 16  # header.size is a u16: no record is longer
# Plausible record types: the kernel's (1-21 today, room for new ones) and perf's own (64-82 today).
_MAX_KERNEL_TYPE = 31
_MAX_USER = 127


@dataclass(frozen=True)
class EventInfo:
    """One event of the stream: its attr, the layout of its samples, its name."""

    index: int
    name: str
    attr: PerfEventAttr
    layout: SampleLayout
    samples: int = 0


class EventTable:
    """Which event a record belongs to: by the id in a sample, or in the sample_id trailer of a side record."""

    def __init__(self, events: list[EventInfo], ids: dict[int, int], side_layout: SampleLayout | None = None) -> None:
        """`ids`: event id -> index into events. `side_layout`: the layout of every side record's trailer when
        one event owns the stream (a ring buffer's owner), instead of looking it up by the trailer's id."""
        if not events:
            raise ValueError("a record stream needs at least one event")
        self.events = events
        self.id_to_event = ids
        self.id_offset = events[0].layout.id_offset if len(events) > 1 else None
        self._ids_sorted = np.array(sorted(ids), dtype=np.uint64)
        self._ids_event = np.array([ids[int(i)] for i in self._ids_sorted], dtype=np.int64)
        self.timed = all(e.layout.sample_id_all and e.layout.has(SampleType.TIME) for e in events)
        self._first = side_layout or events[0].layout
        self._back = None if side_layout is not None else self._first.trailer_id_from_end

    def side_layout(self, buffer: bytes, pos: int, size: int) -> SampleLayout:
        """The layout of the event that wrote the side record at `pos` (its sample_id trailer names it)."""
        if len(self.events) == 1 or self._back is None or size < 8 + self._back:
            return self._first
        (ident,) = struct.unpack_from("<Q", buffer, pos + size - self._back)
        index = self.id_to_event.get(ident)
        return self.events[index].layout if index is not None else self._first

    def event_of(self, words: np.ndarray, word_index: np.ndarray) -> np.ndarray:
        """Event index of each sample starting at words[word_index], -1 for an id no attr claims."""
        if self.id_offset is None:
            return np.zeros(len(word_index), dtype=np.int64)
        if not len(self._ids_sorted):
            return np.full(len(word_index), -1, dtype=np.int64)
        idents = words[word_index + self.id_offset // 8]
        pos = np.minimum(np.searchsorted(self._ids_sorted, idents), len(self._ids_sorted) - 1)
        return np.where(self._ids_sorted[pos] == idents, self._ids_event[pos], -1)


@dataclass(frozen=True)
class SampleRecords:
    """The SAMPLE records of one stretch of stream: `buffer` is only valid during the callback."""

    buffer: bytes        # may end with a partial record: read it as np.frombuffer(buffer, "<u8", len(buffer) // 8)
    offsets: np.ndarray  # int64 byte offset of each sample in buffer (8-byte aligned)
    seqs: np.ndarray     # int64 side records seen before each sample (the order key of untimed streams)


@dataclass
class WalkStats:
    """What the walk saw and what it could not read, with the reason: the source of every skipped-byte note."""

    records: int = 0
    samples: int = 0
    bytes_read: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)  # reason -> [records or stretches, bytes]
    unparsable: dict[int, int] = field(default_factory=dict)     # record type -> count of side records not parsed

    def skip(self, reason: str, nbytes: int, count: int = 1) -> None:
        entry = self.skipped.setdefault(reason, [0, 0])
        entry[0] += count
        entry[1] += nbytes

    @property
    def skipped_bytes(self) -> int:
        return sum(b for _, b in self.skipped.values())

    def notes(self) -> list[str]:
        out = [f"{count} {reason}: {nbytes} bytes skipped" for reason, (count, nbytes) in self.skipped.items()]
        if self.unparsable:
            kinds = ", ".join(f"{_type_name(t)} x{n}" for t, n in sorted(self.unparsable.items()))
            out.append(f"side records too short for their type were ignored ({kinds})")
        return out


def _type_name(rtype: int) -> str:
    try:
        return RecordType(rtype).name
    except ValueError:
        return f"type {rtype}"


class RecordHandler:
    """Typed callbacks of the walk, one per record kind; override what you need (the rest is not parsed).

    `when` is the stream's order key: the record's timestamp when every record has one, else its position among
    the side records.
    """

    def samples(self, records: SampleRecords) -> None: ...

    def mmap(self, rec: Mmap, when: int) -> None: ...

    def mmap_ref(self, ref: MmapRef, when: int) -> None:
        """Instead of mmap(): the record unparsed, for a handler that may never look at most mappings."""

    def comm(self, rec: Comm, when: int) -> None: ...

    def fork(self, rec: TaskEvent, when: int) -> None: ...

    def exit(self, rec: TaskEvent, when: int) -> None: ...

    def lost(self, rec: Lost, when: int) -> None: ...

    def throttle(self, rec: Throttle, when: int) -> None: ...

    def switch(self, rec: Switch, when: int) -> None: ...

    def read(self, rec: ReadRecord, when: int) -> None: ...

    def other(self, rec: OtherRecord, when: int) -> None: ...

    def unparsed_kinds(self) -> frozenset[int]:
        """Record types whose callback takes the record's bytes (MmapRef), not a parsed record."""
        if type(self).mmap_ref is RecordHandler.mmap_ref:
            return frozenset()
        return frozenset(int(t) for t in _CALLBACK_TYPES["mmap_ref"])

    def callbacks(self) -> dict[int, Callable]:
        """Record type -> bound callback, for the kinds this handler overrides."""
        out: dict[int, Callable] = {}
        for name in _overridden(self):
            if not callable(getattr(self, name)):  # e.g. self.lost = 0 hides the lost() callback
                raise TypeError(f"{type(self).__name__}.{name} must stay a callback; an attribute hides it")
        for name, types in _CALLBACK_TYPES.items():
            if getattr(type(self), name) is not getattr(RecordHandler, name):
                for rtype in types:
                    out[int(rtype)] = getattr(self, name)
        if "other" in _overridden(self):
            for rtype in range(1, _MAX_KERNEL_TYPE + 1):
                out.setdefault(rtype, self.other)
        out.pop(_SAMPLE, None)
        return out


_CALLBACK_TYPES: dict[str, tuple[RecordType, ...]] = {
    "mmap": (RecordType.MMAP, RecordType.MMAP2),
    "mmap_ref": (RecordType.MMAP, RecordType.MMAP2),   # after "mmap": a handler with both gets references
    "comm": (RecordType.COMM,),
    "fork": (RecordType.FORK,),
    "exit": (RecordType.EXIT,),
    "lost": (RecordType.LOST, RecordType.LOST_SAMPLES),
    "throttle": (RecordType.THROTTLE, RecordType.UNTHROTTLE),
    "switch": (RecordType.SWITCH, RecordType.SWITCH_CPU_WIDE),
    "read": (RecordType.READ,),
}


def _overridden(handler: RecordHandler) -> set[str]:
    return {name for name in (*_CALLBACK_TYPES, "other", "samples")
            if getattr(type(handler), name) is not getattr(RecordHandler, name)}


class RecordWalk:
    """Walk a record stream fed in pieces; call the handler for each record kind it wants.

    `feed` takes any piece of the stream (a ring read, a block of a perf.data file): a record cut at the end of a
    piece is carried over to the next. `close` accounts for what is left.
    """

    def __init__(self, table: EventTable, handler: RecordHandler, *, pipe_mode: bool = False) -> None:
        self.table = table
        self.handler = handler
        self.pipe_mode = pipe_mode
        self.stats = WalkStats()
        self.compressed = 0
        self._callbacks = handler.callbacks()
        self._unparsed = handler.unparsed_kinds()
        self._wants_samples = "samples" in _overridden(handler)
        self._carry = b""
        self._side_seq = 0
        self.last_when = 0  # order key of the last side record walked (its time, or its position)
        self._consumed = 0  # stream offset of the first byte of the carry

    # --- feeding --------------------------------------------------------------------------------------
    def feed(self, block: bytes) -> None:
        chunk = self._carry + block if self._carry else block
        self._carry = b""
        while chunk:
            chunk, pos = self._walk(chunk)
            rest = len(chunk) - pos
            if rest < 8 or self._may_be_cut(chunk, pos):
                self._carry = chunk[pos:]
                self._consumed += pos
                return
            # An impossible header: skip to where plausible records start again.
            resume = _resync(chunk, pos + 8)
            if resume is None:
                if rest <= MAX_RECORD + 8:
                    self._carry = chunk[pos:]  # the next piece may complete a plausible run of records
                    self._consumed += pos
                    return
                resume = len(chunk) - MAX_RECORD  # keep a tail that may hold the start of a record
                resume -= resume % 8
            self.stats.skip(f"damaged record header(s) from stream offset {self._consumed + pos}", resume - pos)
            self._consumed += resume
            chunk = chunk[resume:]

    def close(self) -> None:
        if self._carry:
            self.stats.skip("trailing piece(s) that do not form a whole record", len(self._carry))
            self._carry = b""

    @staticmethod
    def _may_be_cut(chunk: bytes, pos: int) -> bool:
        """True when the walk stopped at a record that merely runs past the end of the piece."""
        rtype, size = _HEADER_TYPE.unpack_from(chunk, pos)
        return size >= 8 and _plausible_type(rtype) and pos + size > len(chunk)

    # --- the loop -----------------------------------------------------------------------------------
    def _walk(self, chunk: bytes) -> tuple[bytes, int]:
        """Dispatch every whole record of chunk; return the chunk (without perf's odd-sized records) and where
        the walk stopped: its end, a record cut by the end, or a damaged header."""
        if len(chunk) >= 512 and self._only_samples(chunk):
            return chunk, len(chunk)
        sample_offsets: list[int] = []
        sample_seqs: list[int] = []
        append = sample_offsets.append
        append_seq = sample_seqs.append
        unpack = _HEADER_TYPE.unpack_from
        callbacks = self._callbacks
        unparsed = self._unparsed
        table = self.table
        timed = table.timed
        side_seq = self._side_seq
        records = 0
        pos, end = 0, len(chunk)
        while pos + 8 <= end:
            rtype, size = unpack(chunk, pos)
            if size < 8 or pos + size > end:
                break
            if size & 7:
                if rtype < _USER_TYPES:
                    break  # kernel records are 8-byte multiples: a damaged header
                # perf's own records in pipe mode (features) need not be: drop them so samples stay aligned
                self.stats.records += 1
                self.stats.bytes_read += size
                chunk = chunk[:pos] + chunk[pos + size:]
                end = len(chunk)
                continue
            records += 1
            if rtype == _SAMPLE:
                append(pos)
                append_seq(side_seq)
            elif rtype < _USER_TYPES:
                if rtype > _MAX_KERNEL_TYPE or rtype == 0:
                    records -= 1
                    break  # not a record type: a damaged header
                side_seq += 1
                callback = callbacks.get(rtype)
                if callback is not None and rtype in unparsed:
                    layout = table.side_layout(chunk, pos, size)
                    trailer = layout.trailer_size
                    if size < _MAPPING_FIXED[rtype] + trailer:
                        self.stats.unparsable[rtype] = self.stats.unparsable.get(rtype, 0) + 1
                    else:
                        when = _TIME.unpack_from(chunk, pos + size - trailer + layout.trailer_time_at)[0] \
                            if timed else side_seq
                        self.last_when = max(self.last_when, when)
                        callback(MmapRef(chunk[pos:pos + size], layout), when)
                elif callback is not None:
                    try:
                        rec = parse_record(chunk, pos, table.side_layout(chunk, pos, size))
                    except RecordError:
                        self.stats.unparsable[rtype] = self.stats.unparsable.get(rtype, 0) + 1
                    else:
                        # Rings of different CPUs interleave by round, not by time: order side records by their
                        # timestamp when the stream has one, as perf's ordered-events queue does.
                        when = rec.sample_id.time if timed and hasattr(rec, "sample_id") else side_seq
                        self.last_when = max(self.last_when, when)
                        callback(rec, when)
            elif rtype == _COMPRESSED:
                self.compressed += 1
            elif rtype > _MAX_USER:
                records -= 1
                break
            pos += size
        self._side_seq = side_seq
        self.stats.records += records
        self.stats.samples += len(sample_offsets)
        self.stats.bytes_read += pos
        if sample_offsets and self._wants_samples:
            self.handler.samples(SampleRecords(chunk, np.array(sample_offsets, dtype=np.int64),
                                               np.array(sample_seqs, dtype=np.int64)))
        return chunk, pos

    def _only_samples(self, chunk: bytes) -> bool:
        """Fast path of a busy ring: nothing but samples of one size (checked with numpy, no loop)."""
        rtype, size = _HEADER_TYPE.unpack_from(chunk, 0)
        if rtype != _SAMPLE or size < 8 or size & 7 or len(chunk) % size:
            return False
        n = len(chunk) // size
        headers = np.ndarray((n,), dtype=_HEADER_DTYPE, buffer=chunk, strides=(size,))
        if not ((headers["type"] == _SAMPLE).all() and (headers["size"] == size).all()):
            return False
        self.stats.records += n
        self.stats.samples += n
        self.stats.bytes_read += len(chunk)
        if self._wants_samples:
            self.handler.samples(SampleRecords(chunk, np.arange(n, dtype=np.int64) * size,
                                               np.full(n, self._side_seq, dtype=np.int64)))
        return True

    def walk_whole(self, data: bytes) -> None:
        """Walk one piece that holds whole records only (a ring read): nothing is carried over."""
        self.feed(data)
        self.close()


def _plausible_type(rtype: int) -> bool:
    return 1 <= rtype <= _MAX_KERNEL_TYPE or _USER_TYPES <= rtype <= _MAX_USER


def _resync(chunk: bytes, start: int, chain: int = 4) -> int | None:
    """The first 8-byte aligned offset from `start` where `chain` plausible whole records follow one another
    (or plausible records reach the end of the chunk exactly)."""
    unpack = _HEADER_TYPE.unpack_from
    end = len(chunk)
    pos = start + (-start % 8)
    while pos + 8 <= end:
        at, ok = pos, 0
        while ok < chain and at + 8 <= end:
            rtype, size = unpack(chunk, at)
            if size < 8 or size & 7 or not _plausible_type(rtype) or at + size > end:
                break
            at += size
            ok += 1
        if ok >= chain or (ok and at == end):
            return pos
        pos += 8
    return None
