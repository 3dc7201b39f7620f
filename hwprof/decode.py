"""perf.data -> Profile: one decoder for hwprof's captures and `perf record`'s files.

How it stays fast and bounded: the data section is read in chunks of whole records; the only per-record Python
work is a walk over the 8-byte headers. Samples are then decoded with numpy from their fixed offsets (one attr
layout at a time), callchains are cut out as byte strings and deduplicated in a dict, and only the unique stacks
are resolved (address -> mapping -> file offset) and symbolized, module by module, in batches. Memory grows with
the number of samples (a few numbers each) and unique stacks, never with the file size.

Mappings change while a capture runs (exec, dlopen): every sample is resolved against the address space of its
process as it was when the sample was taken, tracked as a generation number per process.

Core never imports hwprof.symbolize: the caller passes a symbolizer (hwprof.symbolize.Symbolizer in the CLI).
"""

from __future__ import annotations

import os
import struct
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from hwprof.errors import HwprofError
from hwprof.perf.abi import MISC_CPUMODE_MASK, CallchainContext, CpuMode, ReadFormat, RecordType, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import read_size
from hwprof.perf.records import Comm, Lost, Mmap, RecordError, SampleLayout, TaskEvent, parse_record
from hwprof.perfdata.reader import PerfDataFile
from hwprof.profile import FrameKind, Profile, ProfileBuilder, ProfileMeta, StackEnd

KERNEL_MODULE = "[kernel.kallsyms]"
JIT_MODULE = "[jit]"
_MARKER_MIN = int(CallchainContext.MAX)
_KERNEL_SPACE = 0xFFFF800000000000  # x86_64 and arm64 48-bit: kernel addresses live above this
_HEADER_TYPE = struct.Struct("<IxxH")
_SAMPLE = int(RecordType.SAMPLE)  # plain ints: enum comparisons cost in the per-record loop
_USER_TYPES = int(RecordType.HEADER_ATTR)


class Symbolizer(Protocol):
    def symbolize_offsets(self, path: str, file_offsets: np.ndarray, build_id: bytes | None = None) -> list: ...

    def symbolize_kernel(self, addrs: np.ndarray) -> list: ...

    def symbolize_jit(self, pid: int, addrs: np.ndarray, perf_map_path: str | None = None) -> list: ...


@dataclass(frozen=True)
class EventInfo:
    """One event of the file as the decoder sees it."""

    index: int
    name: str
    attr: PerfEventAttr
    layout: SampleLayout
    samples: int = 0


# --- address spaces ---------------------------------------------------------------------------------------

@dataclass
class _Space:
    """A process's code mappings at one generation, sorted by start, overlaps resolved newest-wins."""

    starts: list[int] = field(default_factory=list)
    maps: list[Mmap] = field(default_factory=list)

    def copy(self) -> _Space:
        return _Space(list(self.starts), list(self.maps))

    def insert(self, mmap: Mmap) -> None:
        keep = [(s, m) for s, m in zip(self.starts, self.maps, strict=True) if m.end <= mmap.start or s >= mmap.end]
        keep.append((mmap.start, mmap))
        keep.sort(key=lambda pair: pair[0])
        self.starts = [s for s, _ in keep]
        self.maps = [m for _, m in keep]

    def lookup(self, addrs: np.ndarray) -> np.ndarray:
        """Index into self.maps for each address, -1 where none covers it."""
        if not self.maps:
            return np.full(len(addrs), -1, dtype=np.int64)
        starts = np.array(self.starts, dtype=np.uint64)
        ends = np.array([m.end for m in self.maps], dtype=np.uint64)
        idx = np.searchsorted(starts, addrs, side="right").astype(np.int64) - 1
        ok = idx >= 0
        ok[ok] = addrs[ok] < ends[idx[ok]]
        return np.where(ok, idx, -1)


class _Processes:
    """Side records in stream order: per-process mapping changes, names, forks; replayed per generation."""

    def __init__(self) -> None:
        self.changes: dict[int, list[tuple[int, str, object]]] = defaultdict(list)  # pid -> (seq, kind, data)
        self.comms: dict[int, str] = {}
        self.pid_of_tid: dict[int, int] = {}
        self._states: dict[int, list[_Space]] = {}
        self._sorted: set[int] = set()

    def mmap(self, seq: int, rec: Mmap) -> None:
        if rec.pid == -1 or rec.filename.startswith("[kernel.kallsyms]") or rec.filename.startswith("[guest"):
            return  # the kernel image: resolved from kallsyms, not from a mapping
        if rec.prot and not rec.prot & 4:
            return  # data mapping (perf record -d): never code
        self.changes[rec.pid].append((seq, "mmap", rec))

    def comm(self, seq: int, rec: Comm) -> None:
        self.comms[rec.tid] = rec.comm
        self.pid_of_tid[rec.tid] = rec.pid
        if rec.exec and rec.pid == rec.tid:
            self.changes[rec.pid].append((seq, "exec", None))

    def task(self, seq: int, rec: TaskEvent) -> None:
        self.pid_of_tid[rec.tid] = rec.pid
        if rec.kind == RecordType.FORK:
            if rec.pid != rec.ppid and rec.pid not in self.changes:
                self.changes[rec.pid].append((seq, "fork", rec.ppid))
            parent_comm = self.comms.get(rec.ptid) or self.comms.get(rec.ppid)
            if parent_comm and rec.tid not in self.comms:
                self.comms[rec.tid] = parent_comm

    def generations(self, pid: int, seqs: np.ndarray) -> np.ndarray:
        """For samples of `pid` taken at `seqs` (time, or side-record count): how many of pid's changes precede
        each."""
        changes = self.changes.get(pid, [])
        if pid not in self._sorted:
            changes.sort(key=lambda c: c[0])  # stable: records of equal time keep their stream order
            self._sorted.add(pid)
        change_seqs = np.array([c[0] for c in changes], dtype=np.int64)
        return np.searchsorted(change_seqs, seqs, side="right")

    def space(self, pid: int, gen: int) -> _Space:
        states = self._states.get(pid)
        if states is None:
            states = self._states[pid] = [_Space()]
        changes = self.changes.get(pid, [])
        if pid not in self._sorted:
            self.generations(pid, np.zeros(0, dtype=np.int64))
        while len(states) <= gen and len(states) <= len(changes):
            seq, kind, data = changes[len(states) - 1]
            if kind == "mmap":
                state = states[-1].copy()
                state.insert(data)
            elif kind == "exec":
                state = _Space()
            else:  # fork: the parent's space as it was when it forked
                parent = int(data)
                parent_gen = int(self.generations(parent, np.array([seq]))[0])
                state = self.space(parent, parent_gen).copy() if parent != pid else _Space()
            states.append(state)
        return states[min(gen, len(states) - 1)]


# --- sample columns decoded from a chunk ---------------------------------------------------------------

@dataclass
class _Columns:
    time: list[np.ndarray] = field(default_factory=list)
    pid: list[np.ndarray] = field(default_factory=list)
    tid: list[np.ndarray] = field(default_factory=list)
    cpu: list[np.ndarray] = field(default_factory=list)
    period: list[np.ndarray] = field(default_factory=list)
    seq: list[np.ndarray] = field(default_factory=list)
    chain: list[np.ndarray] = field(default_factory=list)    # int64 unique-chain index
    reads: list[np.ndarray] = field(default_factory=list)    # (n, members) raw values
    read_times: list[np.ndarray] = field(default_factory=list)  # (n, 2) enabled, running
    stream: list[np.ndarray] = field(default_factory=list)
    stop: list[np.ndarray] = field(default_factory=list)     # uint8 StopReason of dwarf-unwound samples (255: none)

    def cat(self, name: str, dtype: str, width: int | None = None) -> np.ndarray:
        parts = getattr(self, name)
        if not parts:
            return np.zeros((0, width) if width else 0, dtype=dtype)
        return np.concatenate(parts).astype(dtype, copy=False)


class PerfDataDecoder:
    """Decode one event's samples from a perf.data file into a Profile."""

    def __init__(self, path: str | os.PathLike, symbolizer: Symbolizer | None = None, event: str | None = None,
                 jit_dir: str | None = None) -> None:
        self.path = os.fspath(path)
        self.symbolizer = symbolizer
        self.wanted_event = event
        self.jit_dir = jit_dir if jit_dir is not None else f"{self.path}.jit"
        self._bids: dict[str, bytes] = {}
        self._timed = False
        self._unwinder = None

    def decode(self) -> Profile:
        with PerfDataFile(self.path) as f:
            self._bids = {b.filename: b.build_id for b in f.build_ids}
            try:
                return self._decode(f)
            except (ValueError, IndexError, OverflowError, struct.error) as exc:
                # Records whose sizes or fields contradict their attr: a corrupt (or hand-edited) data section.
                raise HwprofError(f"{self.path}: corrupt data section ({exc})") from None

    # --- pass over the data -------------------------------------------------------------------------
    def _decode(self, f: PerfDataFile) -> Profile:
        names = f.event_names
        events = [EventInfo(i, names[i], fa.attr, SampleLayout.from_attr(fa.attr)) for i, fa in enumerate(f.attrs)]
        id_to_event: dict[int, int] = {}
        for i, fa in enumerate(f.attrs):
            for ident in fa.ids:
                id_to_event[ident] = i
        id_offset = events[0].layout.id_offset if len(events) > 1 else None
        ids_sorted = np.array(sorted(id_to_event), dtype=np.uint64)
        ids_event = np.array([id_to_event[int(i)] for i in ids_sorted], dtype=np.int64)

        procs = _Processes()
        self._unwinder = self._unwind_stage(events)
        unwinder = self._unwinder
        chains: dict[bytes, int] = {}
        per_event: dict[int, _Columns] = defaultdict(_Columns)
        counts = np.zeros(len(events), dtype=np.int64)
        lost = 0
        throttled = 0
        compressed = 0
        side_seq = 0
        first_layout = events[0].layout
        notes_extra: list[str] = []
        consumed = 0
        timed = all(e.layout.sample_id_all and e.layout.has(SampleType.TIME) for e in events)
        self._timed = timed

        def layout_for_side(offset_in_chunk: int, chunk: bytes, size: int) -> SampleLayout:
            if len(events) == 1:
                return first_layout
            back = first_layout.trailer_id_from_end
            if back is None or size < 8 + back:
                return first_layout
            (ident,) = struct.unpack_from("<Q", chunk, offset_in_chunk + size - back)
            index = id_to_event.get(ident)
            return events[index].layout if index is not None else first_layout

        carry = b""
        for block in f.blocks():
            chunk = carry + block if carry else block
            if f.pipe_mode:
                chunk = _kernel_records_only(chunk)
            sample_offsets: list[int] = []
            sample_seqs: list[int] = []
            pos, end = 0, len(chunk)
            unpack = _HEADER_TYPE.unpack_from
            append = sample_offsets.append
            append_seq = sample_seqs.append
            while pos + 8 <= end:
                rtype, size = unpack(chunk, pos)
                if size < 8 or pos + size > end:
                    break  # a record cut by the block boundary (or garbage): carried over, judged below
                if size & 7:
                    chunk = chunk[:pos] + _kernel_records_only(chunk[pos:end])  # odd-sized user records
                    end = len(chunk)
                    continue
                if rtype == _SAMPLE:
                    append(pos)
                    append_seq(side_seq)
                elif rtype < _USER_TYPES:
                    side_seq += 1
                    try:
                        rec = parse_record(chunk, pos, layout_for_side(pos, chunk, size))
                    except RecordError:
                        rec = None
                    # Rings of different CPUs interleave by round, not by time: order side records by their
                    # timestamp when the file has one (sample_id_all + TIME), as perf's ordered-events queue does.
                    when = rec.sample_id.time if timed and hasattr(rec, "sample_id") else side_seq
                    if isinstance(rec, Mmap):
                        procs.mmap(when, rec)
                        if unwinder is not None:
                            unwinder.mmap(when, rec)
                    elif isinstance(rec, Comm):
                        procs.comm(when, rec)
                        if unwinder is not None:
                            unwinder.comm(when, rec)
                    elif isinstance(rec, TaskEvent):
                        procs.task(when, rec)
                        if unwinder is not None:
                            unwinder.task(when, rec)
                    elif isinstance(rec, Lost):
                        lost += rec.lost
                    elif rtype == RecordType.THROTTLE:
                        throttled += 1
                elif rtype == RecordType.COMPRESSED:
                    compressed += 1
                pos += size
            carry = chunk[pos:]
            if len(carry) > (1 << 16) + 8:
                notes_extra.append(f"corrupt record at data offset {consumed + pos}; the rest was not read")
                carry = b""
                break
            consumed += pos
            chunk = chunk[:pos]
            if sample_offsets:
                self._samples(chunk, np.array(sample_offsets, dtype=np.int64), np.array(sample_seqs, np.int64),
                              events, id_offset, ids_sorted, ids_event, chains, per_event, counts)
        if carry:
            notes_extra.append(f"{len(carry)} trailing bytes do not form a whole record; ignored")

        for i, n in enumerate(counts):
            events[i] = replace(events[i], samples=int(n))
        notes = list(f.warnings) + notes_extra
        if unwinder is not None:
            notes += unwinder.notes()
        if compressed:
            notes.append(f"{compressed} compressed records (perf record -z) were skipped: not supported")
        if throttled:
            notes.append(f"the kernel throttled sampling {throttled} times (kernel.perf_event_max_sample_rate)")
        chosen = self._choose_event(events)
        meta = ProfileMeta(
            target=" ".join(f.cmdline[f.cmdline.index("--") + 1:]) if "--" in f.cmdline else "",
            command=f.cmdline,
            events=[chosen.name] + [e.name for e in events if e.index != chosen.index and e.samples],
            hostname=f.hostname,
            os_release=f.os_release,
            lost=int(lost),
            source="hwprof record" if f.perf_version.startswith("hwprof") else "perf record",
            notes=notes,
        )
        return self._build(meta, events, chosen, per_event.get(chosen.index, _Columns()), chains, procs)

    def _unwind_stage(self, events: list[EventInfo]):
        """The dwarf unwinding stage when any event carries user stacks (--call-graph dwarf) and a table
        provider is at hand (the symbolizer's unwind_table)."""
        from hwprof.unwind.samples import has_user_stacks

        provider = getattr(self.symbolizer, "unwind_table", None)
        if provider is None or not any(has_user_stacks(e.layout) for e in events):
            return None
        from hwprof.unwind.stage import UnwindStage

        jit = getattr(self.symbolizer, "jit_unwind_table", None)
        return UnwindStage(provider, self._bids,
                           (lambda pid, binaries: jit(self._perf_map_path(pid), binaries)) if jit else None)

    def _choose_event(self, events: list[EventInfo]) -> EventInfo:
        if self.wanted_event is not None:
            for e in events:
                if e.name == self.wanted_event or e.name.split(":")[0] == self.wanted_event:
                    return e
            raise HwprofError(f"no event {self.wanted_event!r} in {self.path} "
                              f"(it has: {', '.join(e.name for e in events)})")
        with_samples = [e for e in events if e.samples]
        return with_samples[0] if with_samples else events[0]

    def _samples(self, chunk: bytes, offsets: np.ndarray, seqs: np.ndarray, events: list[EventInfo],
                 id_offset: int | None, ids_sorted: np.ndarray, ids_event: np.ndarray, chains: dict[bytes, int],
                 per_event: dict[int, _Columns], counts: np.ndarray) -> None:
        words = np.frombuffer(chunk, dtype="<u8")
        widx = offsets // 8
        if id_offset is None:
            event_of = np.zeros(len(offsets), dtype=np.int64)
        else:
            idents = words[widx + id_offset // 8]
            pos = np.searchsorted(ids_sorted, idents)
            pos = np.minimum(pos, len(ids_sorted) - 1)
            known = ids_sorted[pos] == idents
            event_of = np.where(known, ids_event[pos], -1)
        for ev in sorted_unique(event_of):
            if ev < 0:
                continue
            mask = event_of == ev
            counts[ev] += int(mask.sum())
            self._event_samples(chunk, words, widx[mask], seqs[mask], events[int(ev)], chains,
                                per_event[int(ev)])

    def _event_samples(self, chunk: bytes, words: np.ndarray, widx: np.ndarray, seqs: np.ndarray, ev: EventInfo,
                       chains: dict[bytes, int], out: _Columns) -> None:
        layout = ev.layout
        fixed = layout.fixed_offsets
        n = len(widx)

        def field_(name: str) -> np.ndarray | None:
            return words[widx + fixed[name] // 8] if name in fixed else None

        tidpid = field_("pid")
        pid = (tidpid & 0xFFFFFFFF).astype(np.int64) if tidpid is not None else np.full(n, -1)
        tid = (tidpid >> 32).astype(np.int64) if tidpid is not None else np.full(n, -1)
        pid = np.where(pid >= 1 << 31, pid - (1 << 32), pid)
        tid = np.where(tid >= 1 << 31, tid - (1 << 32), tid)
        time = field_("time")
        cpu = field_("cpu")
        period = field_("period")
        stream = field_("stream_id")
        out.pid.append(pid)
        out.tid.append(tid)
        out.time.append(time if time is not None else np.zeros(n, dtype=np.uint64))
        out.cpu.append((cpu & 0xFFFFFFFF).astype(np.int64) if cpu is not None else np.full(n, -1))
        default_period = 1 if ev.attr.freq else max(1, int(ev.attr.sample_period))
        out.period.append(period.astype(np.float64) if period is not None else np.full(n, float(default_period)))
        out.seq.append(seqs)
        pos = widx + fixed["_end"] // 8
        if layout.has(SampleType.READ):
            rf = layout.read_format
            times = bool(rf & ReadFormat.TOTAL_TIME_ENABLED) + bool(rf & ReadFormat.TOTAL_TIME_RUNNING)
            per_value = 1 + bool(rf & ReadFormat.ID) + bool(rf & ReadFormat.LOST)
            if rf & ReadFormat.GROUP:
                nr = words[pos]
                members = int(nr[0]) if n else 0
                if n and np.any(nr != members):
                    raise HwprofError(f"{self.path}: group reads of '{ev.name}' change size between samples")
                base = pos + 1
                values = np.stack([words[base + times + j * per_value] for j in range(members)], axis=1)
                enabled = words[base] if rf & ReadFormat.TOTAL_TIME_ENABLED else np.zeros(n, np.uint64)
                running = (words[base + bool(rf & ReadFormat.TOTAL_TIME_ENABLED)]
                           if rf & ReadFormat.TOTAL_TIME_RUNNING else enabled)
                pos = pos + read_size(rf, members) // 8
            else:
                values = words[pos][:, None]
                enabled = words[pos + 1] if rf & ReadFormat.TOTAL_TIME_ENABLED else np.zeros(n, np.uint64)
                running = (words[pos + 1 + bool(rf & ReadFormat.TOTAL_TIME_ENABLED)]
                           if rf & ReadFormat.TOTAL_TIME_RUNNING else enabled)
                pos = pos + read_size(rf) // 8
            out.reads.append(values)
            out.read_times.append(np.stack([enabled, running], axis=1))
            ident = stream if stream is not None else field_("identifier") if "identifier" in fixed else field_("id")
            out.stream.append(ident if ident is not None else np.zeros(n, dtype=np.uint64))
        # The stack of each sample as bytes: callchain entries, or the ip tagged with its cpumode.
        if layout.has(SampleType.CALLCHAIN):
            nr = words[pos].astype(np.int64)
            starts = (pos + 1) * 8
            ends = starts + nr * 8
            keys = [chunk[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
            unwinder = self._unwinder
            if unwinder is not None and unwinder.accepts(layout):
                # --call-graph dwarf: the kernel's chain holds the kernel part; the user part is unwound from the
                # sample's registers and stack copy, here, while the chunk holds them.
                when = time.astype(np.int64) if self._timed and time is not None else seqs
                tails, stop = unwinder.unwind_batch(chunk, words, pos + 1 + nr, layout, pid, when)
                keys = [k + t for k, t in zip(keys, tails, strict=True)]
                out.stop.append(stop)
        else:
            ips = field_("ip")
            if ips is None:
                ips = np.zeros(n, dtype=np.uint64)
            modes = (words[widx] >> 32) & MISC_CPUMODE_MASK
            tagged = np.where(modes == CpuMode.KERNEL, np.uint64(CallchainContext.KERNEL),
                              np.uint64(CallchainContext.USER))
            pairs = np.stack([tagged, ips], axis=1).astype("<u8")
            raw = pairs.tobytes()
            keys = [raw[i * 16:(i + 1) * 16] for i in range(n)]
        if self._unwinder is not None and len(out.stop) < len(out.pid):
            out.stop.append(np.full(n, 255, np.uint8))  # samples of this batch were not unwound
        get = chains.get
        index = np.empty(n, dtype=np.int64)
        for i, key in enumerate(keys):
            value = get(key)
            if value is None:
                value = chains[key] = len(chains)
            index[i] = value
        out.chain.append(index)

    # --- building the profile -----------------------------------------------------------------------
    def _build(self, meta: ProfileMeta, events: list[EventInfo], ev: EventInfo, cols: _Columns,
               chains: dict[bytes, int], procs: _Processes) -> Profile:
        pid = cols.cat("pid", "int64")
        seq = cols.cat("time", "uint64").astype(np.int64) if self._timed else cols.cat("seq", "int64")
        chain = cols.cat("chain", "int64")
        n = len(pid)
        # Which address space (pid, generation) each sample saw.
        gen = np.zeros(n, dtype=np.int64)
        for p in sorted_unique(pid):
            mask = pid == p
            gen[mask] = procs.generations(int(p), seq[mask])
        # A unique stack is (chain, pid, generation); most samples share a few.
        combo = np.stack([chain, pid, gen], axis=1) if n else np.zeros((0, 3), dtype=np.int64)
        uniq, inverse = unique_rows(combo)
        inverse = inverse.reshape(-1)
        chain_bytes = [b""] * len(chains)
        for key, i in chains.items():
            chain_bytes[i] = key
        chains.clear()  # chain_bytes holds the same keys; _stacks consumes (and empties) it
        weight_names, counters = self._counters(events, ev, cols, n)
        times = cols.cat("time", "uint64")
        meta = replace(meta, weight_names=weight_names,
                       start_time_ns=int(times.min()) if n else 0,
                       duration_ns=int(times.max() - times.min()) if n else 0)
        builder = ProfileBuilder(meta)
        max_stack = int(ev.attr.sample_max_stack) or _max_stack_sysctl()
        stack_of_unique, end_of_unique, stack_frame, stack_parent = self._stacks(
            builder, uniq, chain_bytes, procs, max_stack, ev.layout.has(SampleType.CALLCHAIN))
        builder.threads[0] = "swapper"  # the idle task has no COMM record; perf names it so
        for tid, comm in procs.comms.items():
            builder.threads[tid] = comm
        profile = builder.build()
        profile.stack_frame = stack_frame
        profile.stack_parent = stack_parent
        profile.sample_time = times
        profile.sample_pid = pid.astype(np.int32)
        profile.sample_tid = cols.cat("tid", "int32")
        profile.sample_cpu = cols.cat("cpu", "int32")
        profile.sample_period = cols.cat("period", "float64")
        profile.sample_stack = stack_of_unique[inverse].astype(np.int32) if n else np.zeros(0, np.int32)
        profile.sample_end = end_of_unique[inverse].astype(np.uint8) if n else np.zeros(0, np.uint8)
        profile.counters = counters
        if cols.stop and n:
            profile.sample_end = _dwarf_ends(profile.sample_end, cols.cat("stop", "uint8"))
        if n:
            order = np.argsort(profile.sample_time, kind="stable")
            if np.any(order != np.arange(n)):
                for name in ("sample_time", "sample_pid", "sample_tid", "sample_cpu", "sample_period",
                             "sample_stack", "sample_end", "counters"):
                    setattr(profile, name, getattr(profile, name)[order])
        return profile

    def _counters(self, events: list[EventInfo], ev: EventInfo, cols: _Columns, n: int) -> tuple[list[str],
                                                                                                    np.ndarray]:
        """Per-sample deltas of every group member (PERF_SAMPLE_READ), keyed by the counter instance."""
        if not cols.reads:
            return [], np.zeros((n, 0), dtype=np.float64)
        values = np.concatenate(cols.reads).astype(np.float64)
        rtimes = np.concatenate(cols.read_times).astype(np.float64)
        members = values.shape[1]
        names = self._member_names(events, ev, members)
        stream = np.concatenate(cols.stream).astype(np.uint64)
        cpu = cols.cat("cpu", "int64")
        tid = cols.cat("tid", "int64")
        times = cols.cat("time", "uint64")
        # Counter instance: the stream id when the file has it (hwprof's group reads), else (id, cpu, tid): right
        # for perf's per-thread and inherited events, while a system-wide perf capture gives per-CPU counters
        # whose deltas this over-counts (no way to tell them apart without stream ids).
        key = np.stack([stream.astype(np.int64), cpu, tid if not ev.layout.has(SampleType.STREAM_ID) else cpu * 0],
                       axis=1)
        _, instance = unique_rows(key)
        instance = instance.reshape(-1)
        order = np.lexsort((times, instance))
        sorted_vals = values[order]
        sorted_times = rtimes[order]
        first = np.ones(n, dtype=bool)
        first[1:] = instance[order][1:] != instance[order][:-1]
        deltas = np.where(first[:, None], sorted_vals, sorted_vals - np.vstack([sorted_vals[:1], sorted_vals[:-1]]))
        dt = np.where(first[:, None], sorted_times, sorted_times - np.vstack([sorted_times[:1], sorted_times[:-1]]))
        # Multiplexed groups: scale each delta by how long the group really counted in that interval.
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where((dt[:, 1] > 0) & (dt[:, 1] < dt[:, 0]), dt[:, 0] / dt[:, 1], 1.0)
        deltas = np.maximum(deltas, 0) * scale[:, None]
        out = np.empty_like(deltas)
        out[order] = deltas
        return names, out

    @staticmethod
    def _member_names(events: list[EventInfo], ev: EventInfo, members: int) -> list[str]:
        """Group members follow their leader in the attr list (perf and hwprof write them in group order)."""
        names = [e.name for e in events[ev.index: ev.index + members]]
        while len(names) < members:
            names.append(f"member{len(names)}")
        return names

    def _stacks(self, builder: ProfileBuilder, uniq: np.ndarray, chain_bytes: list[bytes], procs: _Processes,
                max_stack: int, has_callchain: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Resolve and symbolize every unique (chain, pid, generation), all entries at once with numpy.

        Returns each unique's leaf stack node and StackEnd, and the stack table (frame, parent) it built.
        """
        n_rows = len(uniq)
        rows_chain = uniq[:, 0] if n_rows else np.zeros(0, dtype=np.int64)
        rows_pid = uniq[:, 1] if n_rows else np.zeros(0, dtype=np.int64)
        rows_gen = uniq[:, 2] if n_rows else np.zeros(0, dtype=np.int64)
        parts = [chain_bytes[i] for i in rows_chain.tolist()]
        chain_bytes.clear()  # the caller's only copy: the joined entries below replace it
        lengths = np.array([len(b) // 8 for b in parts], dtype=np.int64)
        flat = np.frombuffer(b"".join(parts), dtype="<u8") if parts else np.zeros(0, dtype=np.uint64)
        del parts
        n = len(flat)
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n_rows else np.zeros(0, dtype=np.int64)
        # int32 indexes: tens of millions of callchain entries, and memory is what bounds a big decode.
        row_of = np.repeat(np.arange(n_rows, dtype=np.int32), lengths)
        # 1. Context of each entry: the last marker before it in its row (KERNEL, USER, ...).
        marker = flat >= np.uint64(_MARKER_MIN)
        last = (np.maximum.accumulate(np.where(marker, np.arange(n, dtype=np.int32), np.int32(-1))) if n
                else np.zeros(0, dtype=np.int32))
        in_row = last >= row_start[row_of] if n else np.zeros(0, dtype=bool)
        kernel = flat[np.maximum(last, 0)] == np.uint64(CallchainContext.KERNEL)
        kernel &= in_row
        kernel |= flat >= np.uint64(_KERNEL_SPACE)
        del last, in_row
        frame_entry = ~marker
        zero = frame_entry & ~kernel & (flat == 0)
        count = np.bincount(row_of[frame_entry], minlength=n_rows)
        # 2. One descriptor per distinct thing an entry can be: kernel address, (module, offset), JIT address.
        descs: list[tuple] = []
        entry_desc = np.full(n, -1, dtype=np.int32)
        kidx = np.nonzero(frame_entry & kernel)[0]
        if len(kidx):
            kaddrs, kinv = unique_inverse(flat[kidx])
            chains = self._symbolize_kernel(kaddrs)
            entry_desc[kidx] = len(descs) + kinv.reshape(-1)
            descs += [(FrameKind.KERNEL, KERNEL_MODULE, a, c) for a, c in zip(kaddrs.tolist(), chains, strict=True)]
        uidx = np.nonzero(frame_entry & ~kernel & ~zero)[0]
        if len(uidx):
            space_keys, row_space = unique_rows(np.stack([rows_pid, rows_gen], axis=1))
            self._user_descs(uidx, flat, row_space[row_of[uidx]], space_keys, procs, descs, entry_desc)
        # 3. Frame ids of each descriptor (an inline chain gives several, innermost first).
        desc_frames: list[int] = []
        desc_off = np.zeros(len(descs) + 1, dtype=np.int64)
        desc_known = np.zeros(len(descs), dtype=bool)
        for d, desc in enumerate(descs):
            ids = self._intern(builder, desc)
            desc_frames.extend(ids)
            desc_off[d + 1] = desc_off[d] + len(ids)
            chain = desc[3]
            desc_known[d] = (desc[1] is not None) if self.symbolizer is None else bool(
                chain and chain[-1].function is not None)
        desc_frames_arr = np.array(desc_frames, dtype=np.int32)
        used = np.nonzero(entry_desc >= 0)[0]
        ed = entry_desc[used]
        per = desc_off[ed + 1] - desc_off[ed]
        if len(used) and np.all(per == 1):  # no inlined frames: one frame per entry, no expansion needed
            frames = desc_frames_arr[desc_off[ed]]
            frame_row = row_of[used]
        else:
            frames = (desc_frames_arr[np.repeat(desc_off[ed], per) + _ranges(per)] if len(used)
                      else np.zeros(0, np.int64))
            frame_row = np.repeat(row_of[used], per)
        # 4. How each stack ended: at a known root frame, an unknown one, a zero frame pointer, or the depth limit.
        ends = np.full(n_rows, StackEnd.COMPLETE, dtype=np.uint8)
        fe = np.nonzero(frame_entry)[0]
        if len(fe):
            last_entry = np.full(n_rows, -1, dtype=np.int64)
            fe_row = row_of[fe]  # nondecreasing: a row's last frame entry is where the row number changes next
            row_ends = np.empty(len(fe), dtype=bool)
            row_ends[-1] = True
            np.not_equal(fe_row[1:], fe_row[:-1], out=row_ends[:-1])
            last_entry[fe_row[row_ends]] = fe[row_ends]
            has = last_entry >= 0
            le = last_entry[has]
            known = np.where(entry_desc[le] >= 0, desc_known[np.maximum(entry_desc[le], 0)], False)
            ends[has] = np.where(known, StackEnd.COMPLETE, StackEnd.UNKNOWN_FRAME)
        if has_callchain:
            ends[count >= max_stack] = StackEnd.TRUNCATED
        else:
            ends[:] = StackEnd.NO_STACK
        # The entry-sized arrays are done with: free them before the tree, the other big step.
        del flat, row_of, marker, kernel, frame_entry, zero, entry_desc, kidx, uidx, used, ed, per, fe
        # 5. The prefix tree, one depth level at a time: leaf-first entries reversed to root-first.
        flen = np.bincount(frame_row, minlength=n_rows)
        del frame_row
        fstart = np.concatenate([[0], np.cumsum(flen)[:-1]]) if n_rows else np.zeros(0, dtype=np.int64)
        stack_frame, stack_parent, leaf = _prefix_tree(frames, fstart, flen, builder_frames=len(desc_frames) + 1)
        ends[leaf < 0] = StackEnd.NO_STACK
        return leaf, ends, stack_frame, stack_parent

    def _user_descs(self, uidx: np.ndarray, flat: np.ndarray, space_of: np.ndarray, space_keys: np.ndarray,
                    procs: _Processes, descs: list[tuple], entry_desc: np.ndarray) -> None:
        """Descriptors for user addresses: resolved in their address space, symbolized per module in batches.

        Unique (space, address) pairs come from two 1-D uniques (addresses, then address index x space), which
        numpy does far faster than a unique over rows.
        """
        addr_u, addr_inv = unique_inverse(flat[uidx])
        addr_inv = addr_inv.reshape(-1)
        n_spaces = len(space_keys)
        if n_spaces == 1:
            pair_keys, inv = np.arange(len(addr_u), dtype=np.int64), addr_inv
        else:
            pair_keys, inv = unique_inverse(addr_inv * n_spaces + space_of)
            inv = inv.reshape(-1)
        pair_addr = addr_u[pair_keys // n_spaces] if n_spaces > 1 else addr_u
        pair_space = pair_keys % n_spaces if n_spaces > 1 else np.zeros(len(addr_u), dtype=np.int64)
        uniq = np.stack([np.zeros(len(pair_addr), dtype=np.int64), np.zeros(len(pair_addr), dtype=np.int64),
                         pair_addr.astype(np.int64)], axis=1)
        located_module: list[tuple[str, bytes | None] | None] = [None] * len(uniq)
        located_offset = np.zeros(len(uniq), dtype=np.uint64)
        jit_rows: dict[int, list[int]] = defaultdict(list)
        build_ids = self._build_ids()
        for s_i, (pid, gen) in enumerate(space_keys.tolist()):
            members = np.nonzero(pair_space == s_i)[0]
            space = procs.space(pid, gen)
            addrs = pair_addr[members].astype(np.uint64)
            idx = space.lookup(addrs)
            for row, addr, i in zip(members.tolist(), addrs.tolist(), idx.tolist(), strict=True):
                m = space.maps[i] if i >= 0 else None
                if m is None or m.filename == "//anon" or m.filename.startswith("/memfd:"):
                    jit_rows[pid].append(row)
                    continue
                located_module[row] = (m.filename, m.build_id or build_ids.get(m.filename))
                located_offset[row] = addr - m.start + m.pgoff
        row_desc = np.full(len(uniq), -1, dtype=np.int64)
        by_module: dict[tuple[str, bytes | None], list[int]] = defaultdict(list)
        for row, mod in enumerate(located_module):
            if mod is not None:
                by_module[mod].append(row)
        for (path, bid), rows in by_module.items():
            rows_arr = np.array(rows, dtype=np.int64)
            offs, off_inv = unique_inverse(located_offset[rows_arr])
            chains = self._symbolize_offsets(path, offs, bid)
            row_desc[rows_arr] = len(descs) + off_inv.reshape(-1)
            descs += [(FrameKind.USER, path, o, c) for o, c in zip(offs.tolist(), chains, strict=True)]
        for pid, rows in jit_rows.items():
            rows_arr = np.array(rows, dtype=np.int64)
            addrs = uniq[rows_arr, 2].astype(np.uint64)
            chains = self._symbolize_jit(pid, addrs)
            row_desc[rows_arr] = len(descs) + np.arange(len(rows_arr))
            for addr, chain in zip(addrs.tolist(), chains, strict=True):
                named = bool(chain) and chain[-1].function is not None
                descs.append((FrameKind.JIT if named else FrameKind.UNKNOWN, JIT_MODULE if named else None, addr,
                              chain))
        entry_desc[uidx] = row_desc[inv]

    @staticmethod
    def _intern(builder: ProfileBuilder, desc: tuple) -> list[int]:
        """Frame ids for one address, innermost (inlined) first, as a stack walked leaf first needs them."""
        kind, module, address, chain = desc
        if not chain:
            return [builder.frame(function=None, module=module, address=address, kind=kind)]
        return [builder.frame(function=f.function, module=module if f.function is None else f.module or module,
                              address=address, kind=kind, file=f.file, line=f.line or 0, inlined=f.inlined)
                for f in chain]

    def _build_ids(self) -> dict[str, bytes]:
        return self._bids

    # --- symbolizer calls, degrading to "module+offset" ---------------------------------------------
    def _symbolize_offsets(self, path: str, offsets: np.ndarray, build_id: bytes | None) -> list[tuple]:
        if self.symbolizer is None:
            return [()] * len(offsets)
        return [tuple(c) for c in self.symbolizer.symbolize_offsets(path, offsets, build_id)]

    def _symbolize_kernel(self, addrs: np.ndarray) -> list[tuple]:
        if self.symbolizer is None:
            return [()] * len(addrs)
        return [tuple(c) for c in self.symbolizer.symbolize_kernel(addrs)]

    def _perf_map_path(self, pid: int) -> str | None:
        """The process's JIT map: a perf map, else a jitdump (its code-load records name the code), copied into
        the capture's side directory or still in /tmp."""
        for name in (f"perf-{pid}.map", f"jit-{pid}.dump"):
            for folder in (self.jit_dir, "/tmp"):
                path = Path(folder) / name
                if path.is_file():
                    return str(path)
        return None

    def _symbolize_jit(self, pid: int, addrs: np.ndarray) -> list[tuple]:
        if self.symbolizer is None or pid <= 0:
            return [()] * len(addrs)
        path = self._perf_map_path(pid)
        if path is None:
            return [()] * len(addrs)
        return [tuple(c) for c in self.symbolizer.symbolize_jit(pid, addrs, str(path))]


def _dwarf_ends(ends: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """How dwarf-unwound stacks ended: complete only where the unwinder reached the stack's bottom (and the
    resolution found the frames); a stack copy that ran out is truncated; any other stop leaves the stack
    incomplete (its reason is in the profile's notes)."""
    from hwprof.unwind.walk import StopReason

    out = ends.copy()
    unwound = stop != 255
    bottom = (stop == StopReason.BOTTOM) | (stop == StopReason.RETURN_ADDRESS_ZERO)
    out[unwound & ~bottom & (out == StackEnd.COMPLETE)] = StackEnd.UNKNOWN_FRAME
    out[unwound & ((stop == StopReason.STACK_TRUNCATED) | (stop == StopReason.MAX_DEPTH))] = StackEnd.TRUNCATED
    return out


def _kernel_records_only(chunk: bytes) -> bytes:
    """Drop perf's own user-space records (pipe-mode headers, features: not always 8-byte sized), so every
    kernel record, and so every sample, starts 8-byte aligned for the numpy view of the chunk."""
    from hwprof.perf.records import iter_records

    keep = [chunk[off:off + size] for off, rtype, _, size in iter_records(chunk)
            if rtype < _USER_TYPES and size % 8 == 0]
    return b"".join(keep)


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True) for 1-D integers, without the stable argsort numpy uses for the
    inverse (slow on tens of millions of callchain entries): an unstable sort, then the index of each value, by
    a collision-free hash table when there are few distinct values (millions of entries, hundreds of addresses:
    a binary search per entry costs several times more), else by a binary search."""
    uniq = sorted_unique(values)
    table = _perfect_hash(uniq) if len(values) > 4 * len(uniq) else None
    if table is not None:
        multiplier, shift, slots = table
        return uniq, slots[_hash(values, multiplier, shift)].astype(np.int64)
    return uniq, np.searchsorted(uniq, values).astype(np.int64)


_HASH_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9)


def _hash(values: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Multiplicative (Fibonacci) hashing: the top bits of value * odd constant, wrapping mod 2**64."""
    return (values.astype(np.uint64, copy=False) * np.uint64(multiplier)) >> np.uint64(shift)


def _perfect_hash(uniq: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """(multiplier, shift, slot -> index) that maps each of `uniq` to its own slot, or None when none of a few
    tries is collision-free or the table would be large (more than 2**22 slots)."""
    k = len(uniq)
    if k == 0:
        return None
    bits = max(8, int(k * k).bit_length() + 1)
    if bits > 22:
        return None
    for multiplier in _HASH_MULTIPLIERS:
        slot = _hash(uniq, multiplier, 64 - bits)
        if len(sorted_unique(slot)) == k:
            slots = np.zeros(1 << bits, dtype=np.int32)
            slots[slot.astype(np.int64)] = np.arange(k, dtype=np.int32)
            return multiplier, 64 - bits, slots
    return None


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values, sorted: a sort and a neighbour compare (numpy 2's hash-based np.unique is several times
    slower on large integer arrays)."""
    ordered = np.sort(values, kind="quicksort")
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(matrix, axis=0, return_inverse=True), sorted the same way, but with a lexsort of the columns:
    numpy's axis=0 path sorts rows as opaque bytes and is an order of magnitude slower on big inputs."""
    n = len(matrix)
    if n == 0:
        return matrix[:0], np.zeros(0, dtype=np.int64)
    order = np.lexsort(matrix.T[::-1])
    sorted_rows = matrix[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1)
    group = np.cumsum(new) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    return sorted_rows[new], inverse


def _ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] for counts c: the position of each element inside its group."""
    if not len(counts):
        return np.zeros(0, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _prefix_tree(frames: np.ndarray, start: np.ndarray, length: np.ndarray,
                 builder_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack table (frame, parent) for rows of leaf-first frame ids, built level by level from the root.

    Identical prefixes share nodes: at each depth, (parent node, frame) pairs are made unique with numpy, so the
    cost is a sort per level, not a dict lookup per frame. Parents always get smaller ids than their children,
    and the nodes of a level are numbered in (parent, frame) order. The rows are kept ordered by their node, so
    each level's keys arrive sorted but for rows that share a parent: a stable (run-detecting) argsort of
    nearly sorted keys is several times cheaper than sorting them from scratch and binary-searching each back.
    Returns (stack_frame, stack_parent, leaf node per row or -1 for an empty row).
    """
    n_rows = len(length)
    leaf = np.full(n_rows, -1, dtype=np.int64)
    out_frame: list[np.ndarray] = []
    out_parent: list[np.ndarray] = []
    total = 0
    depth = int(length.max()) if n_rows else 0
    levels = _levels(frames, start, length, depth)
    order = np.nonzero(length > 0)[0]  # rows still going deeper, ordered by their current node
    node = np.full(len(order), -1, dtype=np.int64)  # their current node (the parent of the next level)
    remaining = length[order]
    for d in range(depth):
        if d:
            going = remaining > d
            if not going.all():
                leaf[order[~going]] = node[~going]  # rows that end at the previous level
                order, node, remaining = order[going], node[going], remaining[going]
        key = (node + 1) * builder_frames + levels[d][order]
        perm = np.argsort(key, kind="stable")
        key = key[perm]
        new = np.empty(len(key), dtype=bool)
        new[:1] = True
        np.not_equal(key[1:], key[:-1], out=new[1:])
        uniq = key[new]
        out_frame.append(uniq % builder_frames)
        out_parent.append(uniq // builder_frames - 1)
        node = total + np.cumsum(new) - 1
        order, remaining = order[perm], remaining[perm]
        total += len(uniq)
    leaf[order] = node
    if not out_frame:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), leaf
    return (np.concatenate(out_frame).astype(np.int32), np.concatenate(out_parent).astype(np.int32), leaf)


def _levels(frames: np.ndarray, start: np.ndarray, length: np.ndarray, depth: int) -> np.ndarray:
    """(depth, rows) int32 matrix of root-first frames (-1 past a row's end): the leaf-first rows transposed once,
    in blocks of rows to bound the temporaries, so each level is a small contiguous array rather than a gather
    that touches a cache line of the big frames array per row."""
    n_rows = len(length)
    out = np.full(depth * n_rows, -1, dtype=np.int32)
    if not depth:
        return out.reshape(0, n_rows)
    ends = np.cumsum(length)
    block = 1 << 20
    row = 0
    while row < n_rows:
        stop = int(np.searchsorted(ends, ends[row] - length[row] + block, side="right"))
        stop = max(stop, row + 1)
        lens = length[row:stop]
        first, last = int(start[row]), int(start[stop - 1] + lens[-1])
        # entry j of row r sits at depth start[r] + length[r] - 1 - j: flat position depth * n_rows + r
        base = (start[row:stop] + lens - 1) * n_rows + np.arange(row, stop)
        dest = np.repeat(base, lens) - np.arange(first, last, dtype=np.int64) * n_rows
        out[dest] = frames[first:last]
        row = stop
    return out.reshape(depth, n_rows)


def _max_stack_sysctl() -> int:
    try:
        with open("/proc/sys/kernel/perf_event_max_stack") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 127


def decode_file(path: str | os.PathLike, symbolizer: Symbolizer | None = None, event: str | None = None,
                jit_dir: str | None = None) -> Profile:
    """Decode a perf.data file (hwprof's or perf's) into a Profile of one sampling event."""
    return PerfDataDecoder(path, symbolizer, event, jit_dir).decode()


def load_profile(store, entry, symbolizer: Symbolizer | None, event: str | None = None) -> Profile:
    """The decoded, symbolized Profile of a stored recording, cached next to it in the store."""
    from hwprof.store import validate_id

    suffix = "npz" if event is None else f"{_safe(event)}.npz"
    cache = store.cache_path(validate_id(entry.id), suffix)
    data = store.data_path(entry)
    if not data.exists():
        raise HwprofError(f"the capture file of {entry.id} is missing from the store ({data})")
    if cache.exists() and cache.stat().st_mtime >= data.stat().st_mtime:
        try:
            return Profile.load(cache)
        except HwprofError:
            pass  # stale or damaged cache: decode again
    profile = decode_file(data, symbolizer, event)
    profile = replace(profile, meta=replace(profile.meta, target=entry.target or profile.meta.target))
    if event is None and profile.n_samples and symbolizer is not None:
        # The index keeps the share of complete stacks, so `hwprof ls` and the web list can show it.
        complete = float(np.count_nonzero(profile.sample_end == StackEnd.COMPLETE)) / profile.n_samples
        try:
            store.update(entry.id, stack_quality=complete)
        except HwprofError:
            pass  # a read-only store still reports
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        profile.save(cache)
    except OSError:
        pass  # a read-only store still reports
    return profile


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]
