"""The off-CPU finishing stage: collects switch-outs, switch-ins and wakeups during the record walk, pairs them
(hwprof.offcpu.pairing) and emits one weighted sample per blocked interval into the on-CPU event's profile.

What it reads (see collectors/offcpu.py for how they are captured):
- `sched:sched_switch` samples: the blocked thread's callchain and, from the RAW payload, prev_state (the field's
  offset comes from the capture's TRACING_DATA: its layout differs between kernels);
- `sched:sched_waking` samples: the waker's callchain and, from RAW, the pid of the thread woken;
- PERF_RECORD_SWITCH / SWITCH_CPU_WIDE: switch-ins (and, when there is no sched_switch event, switch-outs with
  the PREEMPT bit: the unprivileged capture);
- FORK and EXIT.

What it emits, into the sampling event (its weights are ns for cpu-clock/task-clock, so on-CPU and off-CPU time
add up to wall time): per block, a sample at the switch-out time with the blocked callchain, weight = ns blocked,
state = pairing.OffCpuState; with wakeups, a companion sample per block (state WAKER, same time and thread,
the waker's callchain resolved in the waker's process) that hwprof.offcpu.views folds into the blocked stack.
Callchains are kept deduplicated (a dict of their bytes), so memory grows with distinct stacks, not switches.
"""

from __future__ import annotations

import struct

import numpy as np

from hwprof.offcpu.pairing import WAKER, OffCpuState, SwitchTrace, pair_switches, state_from_prev_state
from hwprof.offcpu.views import fold_states
from hwprof.perf.abi import RecordType
from hwprof.perf.records import Switch, TaskEvent
from hwprof.perf.tracepoint_format import TraceFormat, parse_format
from hwprof.perfdata.features import Feature, unpack_tracing_data
from hwprof.pipeline.samples import stack_keys
from hwprof.pipeline.stages import EmittedSamples, FinishContext, Stage
from hwprof.profile import Profile

SWITCH_EVENT = "sched:sched_switch"
WAKING_EVENT = "sched:sched_waking"
_NO_CHAIN = np.zeros(0, dtype=np.uint64)


def _base_name(event_name: str) -> str:
    """'sched:sched_switch:u' -> 'sched:sched_switch'."""
    return ":".join(event_name.split(":")[:2])


class _Columns:
    """Growing per-sample columns, kept as lists of arrays until the end."""

    def __init__(self, *names: str) -> None:
        self.parts: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **cols: np.ndarray) -> None:
        for name, value in cols.items():
            self.parts[name].append(np.asarray(value))

    def get(self, name: str, dtype: str = "int64") -> np.ndarray:
        parts = self.parts[name]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


class OffCpuStage(Stage):
    """Pairs switch-outs with switch-ins per thread and emits blocked time as samples (see the module doc)."""

    name = "off-cpu"
    record_kinds = frozenset({int(RecordType.SWITCH), int(RecordType.SWITCH_CPU_WIDE), int(RecordType.FORK),
                              int(RecordType.EXIT)})

    def __init__(self, features: dict[int, bytes], wakers: bool = True) -> None:
        """`features`: the capture's feature sections (PerfDataFile.features): its tracepoint formats
        (TRACING_DATA) are needed while walking, its span (SAMPLE_TIME) at the end."""
        self.wakers = wakers
        self._formats: dict[str, TraceFormat] = {}
        self._span: tuple[int, int] | None = None
        self._chains: dict[bytes, int] = {}
        self._outs = _Columns("time", "pid", "tid", "cpu", "prev_state", "chain")
        self._wakes = _Columns("time", "pid", "tid", "wakee", "chain")
        self._ins: list[tuple[int, int, int]] = []
        self._record_outs: list[tuple[int, int, int, bool]] = []  # time, pid, tid, preempted
        self._forks: list[tuple[int, int]] = []
        self._exits: list[tuple[int, int]] = []
        self._last_when = 0
        self._switch_event_seen = False
        self._unreadable_state = 0
        self._use_features(features)

    # --- during the walk -----------------------------------------------------------------------------
    def on_batch(self, batch) -> None:
        name = _base_name(batch.event.name)
        if name not in (SWITCH_EVENT, WAKING_EVENT) or not len(batch):
            return
        when = batch.when
        self._last_when = max(self._last_when, int(when.max()))
        chains = self._intern_chains(batch)
        if name == SWITCH_EVENT:
            self._switch_event_seen = True
            state = self._raw_field(batch, SWITCH_EVENT, "prev_state")
            if state is None:
                self._unreadable_state += len(batch)
                state = np.full(len(batch), -1, dtype=np.int64)
            self._outs.add(time=when, pid=batch.pid, tid=batch.tid, cpu=batch.cpu, prev_state=state, chain=chains)
        elif self.wakers:
            wakee = self._raw_field(batch, WAKING_EVENT, "pid")
            if wakee is not None:
                self._wakes.add(time=when, pid=batch.pid, tid=batch.tid, wakee=wakee, chain=chains)

    def on_record(self, record, when: int) -> None:
        self._last_when = max(self._last_when, int(when))
        if isinstance(record, Switch):
            sid = record.sample_id
            if record.out:
                self._record_outs.append((int(when), sid.pid, sid.tid, record.preempt))
            else:
                self._ins.append((int(when), sid.pid, sid.tid))
        elif isinstance(record, TaskEvent):
            target = self._forks if record.kind == RecordType.FORK else self._exits
            target.append((int(record.time or when), record.tid))

    def _intern_chains(self, batch) -> np.ndarray:
        """Each sample's stack (as the decoder keeps it: with an unwinding stage's user frames) as a chain id."""
        out = np.empty(len(batch), dtype=np.int64)
        get = self._chains.get
        for i, key in enumerate(stack_keys(batch)):
            index = get(key)
            if index is None:
                index = self._chains[key] = len(self._chains)
            out[i] = index
        return out

    def _raw_field(self, batch, event: str, field: str) -> np.ndarray | None:
        """One integer field of every sample's RAW payload, by the tracepoint's format in the capture."""
        fmt = self._formats.get(event)
        if fmt is None:
            return None
        fld = next((f for f in fmt.fields if f.name == field), None)
        if fld is None or fld.size not in (1, 2, 4, 8):
            return None
        user = batch.user_fields
        start, size = user.raw_start.astype(np.int64), user.raw_size.astype(np.int64)
        ok = size >= fld.offset + fld.size
        buf = np.frombuffer(batch.buffer, dtype=np.uint8)
        at = np.where(ok, start + fld.offset, 0)
        value = np.zeros(len(batch), dtype=np.int64)
        for k in range(fld.size):
            value |= buf[at + k].astype(np.int64) << (8 * k)
        if fld.signed and fld.size < 8:
            sign = 1 << (8 * fld.size - 1)
            value = (value ^ sign) - sign
        return np.where(ok, value, -1)

    def _use_features(self, features: dict[int, bytes]) -> None:
        """The capture's feature sections: tracepoint formats (TRACING_DATA) and its span (SAMPLE_TIME)."""
        raw = features.get(Feature.TRACING_DATA)
        if raw:
            try:
                tracing = unpack_tracing_data(raw)
                for system, texts in tracing.systems.items():
                    for text in texts:
                        fmt = parse_format(text.decode(errors="replace"))
                        self._formats[f"{system}:{fmt.name}"] = fmt
            except (ValueError, IndexError, struct.error):
                pass
        span = features.get(Feature.SAMPLE_TIME)
        if span and len(span) >= 16:
            self._span = struct.unpack_from("<QQ", span)

    # --- after the walk -----------------------------------------------------------------------------
    def finish(self, ctx: FinishContext) -> None:
        self._last_when = max(self._last_when, int(ctx.last_when or 0))
        if not self._ins and not len(self._outs.get("time")):
            return
        target = next((e for e in ctx.events if not e.attr.type == 2), None)  # the sampling clock, not a tracepoint
        if target is None:
            ctx.notes.append("off-CPU: the capture has no on-CPU sampling event to add blocked time to")
            return
        trace, out_chain = self._trace()
        blocks = pair_switches(trace)
        chain_list = [np.frombuffer(k, dtype="<u8") for k in self._chains]
        chain_list.append(_NO_CHAIN)
        no_chain = len(chain_list) - 1
        refs = np.where(blocks.out_ref >= 0, out_chain[np.maximum(blocks.out_ref, 0)], no_chain) \
            if len(out_chain) else np.full(len(blocks), no_chain)
        n = len(blocks)
        ctx.emit(EmittedSamples(
            event=target.name, time=blocks.start.astype(np.uint64), pid=blocks.pid, tid=blocks.tid,
            cpu=np.full(n, -1, dtype=np.int64), weight=blocks.duration.astype(np.float64),
            callchains=[chain_list[i] for i in refs.tolist()], like=target.index, state=blocks.state))
        woke = np.nonzero(blocks.wake_ref >= 0)[0]
        if len(woke):
            w = blocks.wake_ref[woke]
            wchain, wpid = self._wakes.get("chain"), self._wakes.get("pid")
            ctx.emit(EmittedSamples(
                event=target.name, time=blocks.start[woke].astype(np.uint64), pid=wpid[w], tid=blocks.tid[woke],
                cpu=np.full(len(woke), -1, dtype=np.int64), weight=np.zeros(len(woke)),
                callchains=[chain_list[i] for i in wchain[w].tolist()], like=target.index,
                state=np.full(len(woke), WAKER, dtype=np.uint8)))
        notes = []
        if blocks.lost_switch_ins:
            notes.append(f"off-CPU: {blocks.lost_switch_ins:,} switches could not be paired (lost records): their "
                         "blocked time is left out")
        if self._unreadable_state:
            notes.append(f"off-CPU: the task state of {self._unreadable_state:,} switch-outs is unknown (the "
                         "capture has no sched_switch format)")
        if not self._switch_event_seen:
            notes.append("off-CPU: from context-switch records only (no sched_switch samples): no stacks, and "
                         "blocked time is not split into S and D")
        ctx.notes.extend(notes)

    def on_profile(self, profile: Profile) -> Profile:
        return fold_states(profile)

    def _trace(self) -> tuple[SwitchTrace, np.ndarray]:
        """The SwitchTrace of everything collected, and the chain id of each switch-out."""
        start, end = self._span if self._span else (0, self._last_when)
        ins = np.array(self._ins, dtype=np.int64).reshape(-1, 3)
        if self._switch_event_seen:
            out_time, out_pid, out_tid = self._outs.get("time"), self._outs.get("pid"), self._outs.get("tid")
            prev_state = self._outs.get("prev_state")
            state = state_from_prev_state(np.maximum(prev_state, 0))
            state[prev_state < 0] = int(OffCpuState.BLOCKED)
            out_chain = self._outs.get("chain")
        else:
            rec = np.array([(t, p, d, int(pre)) for t, p, d, pre in self._record_outs], dtype=np.int64).reshape(-1, 4)
            out_time, out_pid, out_tid = rec[:, 0], rec[:, 1], rec[:, 2]
            state = np.where(rec[:, 3] != 0, int(OffCpuState.RUNNABLE), int(OffCpuState.BLOCKED)).astype(np.uint8)
            out_chain = np.zeros(0, dtype=np.int64)
        forks = np.array(self._forks, dtype=np.int64).reshape(-1, 2)
        exits = np.array(self._exits, dtype=np.int64).reshape(-1, 2)
        refs = np.arange(len(out_time), dtype=np.int64) if len(out_chain) else np.full(len(out_time), -1)
        trace = SwitchTrace(
            out_time=out_time, out_tid=out_tid, out_pid=out_pid, out_state=state, out_ref=refs,
            in_time=ins[:, 0], in_tid=ins[:, 2], in_pid=ins[:, 1], start_ns=int(start), end_ns=int(end),
            fork_time=forks[:, 0], fork_tid=forks[:, 1], exit_time=exits[:, 0], exit_tid=exits[:, 1],
            wake_time=self._wakes.get("time"), wake_tid=self._wakes.get("wakee"),
            wake_ref=np.arange(len(self._wakes.get("time")), dtype=np.int64))
        return trace, out_chain



def stages_for(path) -> list[Stage]:
    """[OffCpuStage] for a capture of `record --off-cpu` (context-switch records or sched_switch samples), else []."""
    from hwprof.errors import HwprofError
    from hwprof.perfdata.reader import PerfDataFile

    try:
        with PerfDataFile(path) as f:
            names = [_base_name(n) for n in f.event_names]
            offcpu = any(fa.attr.context_switch for fa in f.attrs) or SWITCH_EVENT in names
            return [OffCpuStage(dict(f.features), wakers=WAKING_EVENT in names)] if offcpu else []
    except (HwprofError, OSError):
        return []  # the decoder reports what is wrong with the file
