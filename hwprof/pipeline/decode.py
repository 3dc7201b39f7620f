"""perf.data -> Profile: the decode driver for hwprof's captures and `perf record`'s files.

    PerfDataFile blocks -> RecordWalk (walk.py) -> _Collector: address spaces (spaces.py), sample batches
    (samples.py) -> stages' on_batch (stages.py) -> columns with unique-chain ids -> stages' finish ->
    unique (chain, address space) rows -> StackResolver (stacks.py) -> Profile

How it stays fast and bounded: the data section is read in 4 MiB blocks; the only per-record Python work is a
walk over the 8-byte headers. Samples are decoded with numpy from their fixed offsets (one attr layout at a
time), callchains are cut out as byte strings and deduplicated in a dict, and only the unique stacks are resolved
and symbolized, module by module, in batches. Memory grows with the number of samples (a few numbers each) and
unique stacks, never with the file size.
"""

from __future__ import annotations

import os
import struct
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from hwprof.errors import HwprofError
from hwprof.perf.abi import SampleType
from hwprof.perf.records import (
    Comm,
    Lost,
    Mmap,
    MmapRef,
    OtherRecord,
    ReadRecord,
    SampleLayout,
    Switch,
    TaskEvent,
    Throttle,
)
from hwprof.perfdata.reader import PerfDataFile
from hwprof.pipeline.arrays import sorted_unique
from hwprof.pipeline.assemble import StackedSamples, assemble_profile
from hwprof.pipeline.chains import ChainTable
from hwprof.pipeline.counters import counter_deltas
from hwprof.pipeline.samples import SampleColumns, decode_batch
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.stacks import StackResolver, Symbolizer
from hwprof.pipeline.stages import FinishContext, Stage
from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk, SampleRecords, WalkStats
from hwprof.profile import Profile, ProfileMeta

# The data section is walked in pieces of this size: the piece, the partial record carried into the next one and
# a batch's columns are what the walk holds at a time, so small pieces keep the walk's peak small (and the per-piece
# numpy work is still thousands of samples at a time).
_BLOCK_BYTES = 4 << 20


class _Collector(RecordHandler):
    """The decoder's callbacks: side records into address spaces, samples into per-event columns via stages."""

    def __init__(self, table: EventTable, stages: Sequence[Stage], leaf_only: bool = False,
                 spaces: AddressSpaces | None = None) -> None:
        self.table = table
        self.leaf_only = leaf_only
        self.stages = list(stages)
        self.spaces = spaces if spaces is not None else AddressSpaces()
        self.chains = ChainTable()
        self.columns: dict[int, SampleColumns] = defaultdict(SampleColumns)
        self.counts = np.zeros(len(table.events), dtype=np.int64)
        self.rejected: Counter = Counter()
        self.lost_samples = 0
        self.throttles = 0
        self.last_when = 0
        self._staged: dict[int, list[Stage]] = defaultdict(list)
        for stage in self.stages:
            for kind in stage.record_kinds:
                self._staged[int(kind)].append(stage)

    # --- samples ------------------------------------------------------------------------------------
    def samples(self, records: SampleRecords) -> None:
        words = np.frombuffer(records.buffer, dtype="<u8", count=len(records.buffer) // 8)
        event_of = self.table.event_of(words, records.offsets // 8)
        unknown = int(np.count_nonzero(event_of < 0))
        if unknown:
            self.rejected["samples with an event id that no event of the file has"] += unknown
        for ev in sorted_unique(event_of).tolist():
            if ev < 0:
                continue
            mask = event_of == ev
            cols = self.columns[ev]
            batch = decode_batch(self.table.events[ev], records.buffer, records.offsets[mask], records.seqs[mask],
                                 self.spaces, self.table.timed, cols.members)
            for stage in self.stages:
                stage.on_batch(batch)
            if len(batch):
                self.last_when = max(self.last_when, int(batch.when.max()))
            self.rejected.update(batch.rejected)
            self.counts[ev] += len(batch)
            cols.add(batch, self.chains, self.leaf_only)

    # --- side records -------------------------------------------------------------------------------
    def mmap(self, rec: Mmap, when: int) -> None:
        self.spaces.mmap(when, rec)
        self._forward(rec, when)

    def mmap_ref(self, ref: MmapRef, when: int) -> None:
        self.spaces.mmap_ref(when, ref)

    def unparsed_kinds(self) -> frozenset[int]:
        """Mappings stay unparsed unless a stage takes them as records."""
        kinds = super().unparsed_kinds()
        return frozenset() if kinds & self._staged.keys() else kinds

    def callbacks(self) -> dict:
        out = super().callbacks()
        for kind in self._staged:
            out.setdefault(kind, self.other)
        if not self.unparsed_kinds():
            for kind in super().unparsed_kinds():
                out[kind] = self.mmap
        return out

    def comm(self, rec: Comm, when: int) -> None:
        self.spaces.comm(when, rec)
        self._forward(rec, when)

    def fork(self, rec: TaskEvent, when: int) -> None:
        self.spaces.task(when, rec)
        self._forward(rec, when)

    def exit(self, rec: TaskEvent, when: int) -> None:
        self.spaces.task(when, rec)
        self._forward(rec, when)

    def lost(self, rec: Lost, when: int) -> None:
        self.lost_samples += rec.lost
        self._forward(rec, when)

    def throttle(self, rec: Throttle, when: int) -> None:
        self.throttles += rec.throttled
        self._forward(rec, when)

    def switch(self, rec: Switch, when: int) -> None:
        self._forward(rec, when)

    def read(self, rec: ReadRecord, when: int) -> None:
        self._forward(rec, when)

    def other(self, rec: OtherRecord, when: int) -> None:
        self._forward(rec, when)

    def _forward(self, rec: object, when: int) -> None:
        if not self._staged:
            return
        kind = _kind_of(rec)
        for stage in self._staged.get(kind, ()):
            stage.on_record(rec, when)


def _kind_of(rec: object) -> int:
    from hwprof.perf.abi import RecordType

    if isinstance(rec, Mmap):
        return int(RecordType.MMAP2)
    if isinstance(rec, Comm):
        return int(RecordType.COMM)
    if isinstance(rec, TaskEvent):
        return int(rec.kind)
    if isinstance(rec, Lost):
        return int(RecordType.LOST)
    if isinstance(rec, Throttle):
        return int(RecordType.THROTTLE if rec.throttled else RecordType.UNTHROTTLE)
    if isinstance(rec, Switch):
        return int(RecordType.SWITCH_CPU_WIDE if rec.next_prev_pid != -1 else RecordType.SWITCH)
    if isinstance(rec, ReadRecord):
        return int(RecordType.READ)
    if isinstance(rec, OtherRecord):
        return rec.type
    return -1


class PerfDataDecoder:
    """Decode one event's samples from a perf.data file into a Profile."""

    def __init__(self, path: str | os.PathLike, symbolizer: Symbolizer | None = None, event: str | None = None,
                 jit_dir: str | None = None, stages: Sequence[Stage] = (), stacks: str = "full",
                 spaces: AddressSpaces | None = None) -> None:
        """`stacks`: "full", or "leaf" for a self-time report: each stack keeps its leaf and outermost frame only
        (the Profile then serves self shares, stack quality and folded leaves, not totals or call graphs).
        `spaces`: the address spaces to start from, which the walk then updates: a decoder of consecutive windows
        of one session (hwprof agent) carries them over (AddressSpaces.carry_over), so a window's file needs only
        the kernel's records of what changed, not a snapshot of every process."""
        if stacks not in ("full", "leaf"):
            raise ValueError(f"stacks must be 'full' or 'leaf', not {stacks!r}")
        self.path = os.fspath(path)
        self.leaf_only = stacks == "leaf"
        self.symbolizer = symbolizer
        self.wanted_event = event
        self.jit_dir = jit_dir if jit_dir is not None else f"{self.path}.jit"
        self.stages = list(stages)
        self.spaces = spaces
        self.walk_stats: WalkStats | None = None  # after decode(): what the walk read and skipped

    def decode(self) -> Profile:
        with PerfDataFile(self.path) as f:
            try:
                return self._decode(f)
            except (ValueError, IndexError, OverflowError, struct.error) as exc:
                # Records whose sizes or fields contradict their attr: a corrupt (or hand-edited) data section.
                raise HwprofError(f"{self.path}: corrupt data section ({exc})") from None

    def _decode(self, f: PerfDataFile) -> Profile:
        names = f.event_names
        events = [EventInfo(i, names[i], fa.attr, SampleLayout.from_attr(fa.attr)) for i, fa in enumerate(f.attrs)]
        ids = {ident: i for i, fa in enumerate(f.attrs) for ident in fa.ids}
        table = EventTable(events, ids)
        bids = {b.filename: b.build_id for b in f.build_ids}
        # Early stages first (filters: nothing is unwound for a sample they drop; address-space fillers), then
        # unwinding: stages that keep stacks (off-CPU's switch-outs) see the unwound ones.
        early = [stage for stage in self.stages if stage.early]
        stages = early + default_stages(self.symbolizer, events, bids, self.jit_dir) + \
            [stage for stage in self.stages if not stage.early]
        collector = _Collector(table, stages, self.leaf_only, self.spaces)
        walk = RecordWalk(table, collector, pipe_mode=f.pipe_mode)
        for block in f.blocks(_BLOCK_BYTES):
            walk.feed(block)
        block = b""  # the loop's last piece: not kept through stack resolution
        walk.close()
        self.walk_stats = walk.stats

        ctx = FinishContext(events=events, spaces=collector.spaces,
                            sample_counts={e.name: int(collector.counts[e.index]) for e in events},
                            features=dict(f.features),
                            last_when=max(walk.last_when, collector.last_when))
        for stage in stages:
            stage.finish(ctx)
        events = self._add_emitted(ctx, events, collector)
        events = [replace(e, samples=int(collector.counts[e.index])) for e in events]
        notes = list(f.warnings) + walk.stats.notes()
        notes += [f"{n} {reason}: skipped" for reason, n in collector.rejected.items()]
        notes += ctx.notes
        if walk.compressed:
            notes.append(f"{walk.compressed} compressed records (perf record -z) were skipped: not supported")
        if collector.throttles:
            notes.append(f"the kernel throttled sampling {collector.throttles} times "
                         "(kernel.perf_event_max_sample_rate)")
        chosen = self._choose_event(events)
        meta = ProfileMeta(
            target=" ".join(f.cmdline[f.cmdline.index("--") + 1:]) if "--" in f.cmdline else "",
            command=f.cmdline,
            events=[chosen.name] + [e.name for e in events if e.index != chosen.index and e.samples],
            hostname=f.hostname,
            os_release=f.os_release,
            lost=int(collector.lost_samples),
            source="hwprof record" if f.perf_version.startswith("hwprof") else "perf record",
            notes=notes,
        )
        resolver = StackResolver(collector.spaces, self.symbolizer, bids, self.jit_dir)
        return _build(meta, events, chosen, collector.columns.get(chosen.index, SampleColumns()), collector,
                      resolver, table.timed, stages)

    @staticmethod
    def _add_emitted(ctx: FinishContext, events: list[EventInfo], collector: _Collector) -> list[EventInfo]:
        """Samples the finishing stages made join their event (a new one when the name is new)."""
        if not ctx.emitted:
            return events
        events = list(events)
        counts = list(collector.counts)
        for emitted in ctx.emitted:
            index = next((e.index for e in events if e.name == emitted.event), None)
            if index is None:
                like = events[emitted.like]
                index = len(events)
                events.append(EventInfo(index, emitted.event, like.attr, like.layout))
                counts.append(0)
            chain = collector.chains.ids([np.asarray(entries, dtype="<u8").tobytes()
                                          for entries in emitted.callchains])
            seq = np.full(len(chain), np.iinfo(np.int64).max)
            collector.columns[index].add_emitted(emitted.time, emitted.pid, emitted.tid, emitted.cpu,
                                                 emitted.weight, seq, chain, emitted.state)
            counts[index] += len(chain)
        collector.counts = np.array(counts, dtype=np.int64)
        return events

    def _choose_event(self, events: list[EventInfo]) -> EventInfo:
        if self.wanted_event is not None:
            for e in events:
                if e.name == self.wanted_event or e.name.split(":")[0] == self.wanted_event:
                    return e
            raise HwprofError(f"no event {self.wanted_event!r} in {self.path} "
                              f"(it has: {', '.join(e.name for e in events)})")
        with_samples = [e for e in events if e.samples]
        return with_samples[0] if with_samples else events[0]


def _build(meta: ProfileMeta, events: list[EventInfo], ev: EventInfo, cols: SampleColumns, collector: _Collector,
           resolver: StackResolver, timed: bool, stages: Sequence[Stage]) -> Profile:
    n = len(cols)
    weight_names, counters = counter_deltas(events, ev, cols, n)
    samples = StackedSamples(
        time=cols.cat("time", "uint64"),
        when=cols.cat("time", "uint64").astype(np.int64) if timed else cols.cat("seq", "int64"),
        pid=cols.cat("pid", "int64"), tid=cols.cat("tid", "int64"), cpu=cols.cat("cpu", "int64"),
        period=cols.cat("period", "float64"), chain=cols.cat("chain", "int64"), stop=cols.cat("stop", "uint8"),
        counters=counters, state=_states(cols, n),
        depth=cols.cat("depth", "int64") if cols.depth else None)
    del cols
    collector.columns.clear()  # the per-batch pieces: the samples' columns are whole now
    max_stack = int(ev.attr.sample_max_stack) or _max_stack_sysctl()
    threads = {0: "swapper", **collector.spaces.comms}  # the idle task has no COMM record; perf names it so
    return assemble_profile(replace(meta, weight_names=weight_names), samples, collector.chains,
                            collector.spaces, resolver, max_stack, ev.layout.has(SampleType.CALLCHAIN), stages,
                            threads=threads)


def _states(cols: SampleColumns, n: int) -> np.ndarray | None:
    """Per-sample states stages emitted (off-CPU), or None when every sample is an ordinary one."""
    state = cols.cat("state", "uint8")
    return state if len(state) == n and np.any(state) else None


def _max_stack_sysctl() -> int:
    try:
        with open("/proc/sys/kernel/perf_event_max_stack") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 127


def default_stages(symbolizer: Symbolizer | None, events: list[EventInfo], build_ids: dict[str, bytes],
                   jit_dir: str | None = None) -> list[Stage]:
    """The stages every decode gets when its input calls for them: dwarf unwinding of user stack copies."""
    from hwprof.unwind.dwarf_stage import dwarf_stage

    stage = dwarf_stage(symbolizer, events, build_ids, jit_dir)
    return [stage] if stage is not None else []


def decode_file(path: str | os.PathLike, symbolizer: Symbolizer | None = None, event: str | None = None,
                jit_dir: str | None = None, stages: Sequence[Stage] = (), stacks: str = "full",
                spaces: AddressSpaces | None = None) -> Profile:
    """Decode a perf.data file (hwprof's or perf's) into a Profile of one sampling event (see PerfDataDecoder for
    `stacks` and `spaces`)."""
    return PerfDataDecoder(path, symbolizer, event, jit_dir, stages, stacks, spaces).decode()
