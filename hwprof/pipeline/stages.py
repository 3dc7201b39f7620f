"""Per-sample stages: where an unwinder or an off-CPU pairing plugs into the decoder.

    walk -> [stage.on_batch per batch] -> columns -> [stage.finish once] -> stack resolution -> Profile

A stage is an object with three optional hooks (subclass `Stage`, override what you need):

- `on_batch(batch)`: streaming, once per event per stretch of stream (a 32 MiB piece of a perf.data file or a
  ring read). The batch (samples.SampleBatch) has the samples' columns, the bytes they came from (raw data, user
  registers and stack copy through `batch.user_fields`, `batch.raw(i)`, `batch.stack_user(i)`,
  `batch.callchain(i)`), and the address spaces (`batch.spaces.at(pid, when)`: the process's mappings as they
  were at that sample). An unwinder sets `batch.unwound` (samples.UnwoundStacks): those frames replace the
  user part of each sample's stack, and the stop reason of each walk is kept per sample. The batch and its bytes
  are dropped after the call: keep only what you need.
- `on_record(record, when)`: side records of the kinds in `record_kinds` (e.g. RecordType.SWITCH,
  SWITCH_CPU_WIDE, EXIT), parsed (hwprof.perf.records types) with the stream's order key `when`.
- `finish(ctx)`: once, after the walk; `ctx.emit(...)` adds weighted samples (e.g. off-CPU time) with their
  callchains, which then go through the same stack resolution and symbolization as every other sample.

Stages are given to the decoder by its caller (`decode_file(..., stages=[...])`): the core never imports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from hwprof.perf.records import ReadRecord, Switch, TaskEvent
from hwprof.pipeline.samples import SampleBatch
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.walk import EventInfo
from hwprof.profile import StackEnd

SideRecord = Switch | TaskEvent | ReadRecord | object


class UnwindStop(IntEnum):
    """Why an unwinding stage stopped walking a sample's user stack (UnwoundStacks.stop)."""

    NOT_UNWOUND = 0      # no stage unwound this sample (its callchain is the kernel's)
    BOTTOM = 1           # reached a real bottom (_start, thread entry, a CFI-marked outermost frame)
    NO_CFI = 2           # a frame's code has no unwind information
    STACK_TOO_SMALL = 3  # the user-stack copy ended first (UnwoundStacks.stack_needed says what would suffice)
    FP_ZERO = 4          # frame-pointer walk met a zero frame pointer
    UNKNOWN_MAPPING = 5  # a pc outside every mapping of the process
    JIT_NO_INFO = 6      # JIT code without unwind information
    BAD_REGISTERS = 7    # no user registers (kernel thread, ABI 0) or an unusable value


# How a stop reason shows in the stack-quality meter (StackEnd). BOTTOM keeps what resolution finds (complete
# when the last frame is known, else unknown-frame).
STOP_END: dict[int, StackEnd | None] = {
    UnwindStop.NOT_UNWOUND: None,
    UnwindStop.BOTTOM: None,
    UnwindStop.NO_CFI: StackEnd.UNKNOWN_FRAME,
    UnwindStop.STACK_TOO_SMALL: StackEnd.TRUNCATED,
    UnwindStop.FP_ZERO: StackEnd.UNKNOWN_FRAME,
    UnwindStop.UNKNOWN_MAPPING: StackEnd.UNKNOWN_FRAME,
    UnwindStop.JIT_NO_INFO: StackEnd.UNKNOWN_FRAME,
    UnwindStop.BAD_REGISTERS: StackEnd.UNKNOWN_FRAME,
}


@dataclass(frozen=True)
class EmittedSamples:
    """Samples a finishing stage adds to an event (new or existing), one row each; weights in that event's unit
    (e.g. ns blocked). `callchains[i]` is sample i's stack as the kernel writes one: uint64 entries, leaf
    first, with context markers (CallchainContext.KERNEL / USER) before each part."""

    event: str
    time: np.ndarray        # uint64 ns
    pid: np.ndarray         # int64
    tid: np.ndarray         # int64
    cpu: np.ndarray         # int64 (-1 unknown)
    weight: np.ndarray      # float64
    callchains: Sequence[np.ndarray]
    like: int = 0           # index of the event whose attr the new event takes (stack depth limit, layout)


@dataclass
class FinishContext:
    """What a finishing stage sees after the walk, and where its samples go."""

    events: list[EventInfo]
    spaces: AddressSpaces                     # mappings, comms (spaces.comms), pid of each tid
    sample_counts: dict[str, int]             # samples decoded per event name
    emitted: list[EmittedSamples] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown with the profile (e.g. "120 switch-outs unpaired")

    def emit(self, samples: EmittedSamples) -> None:
        self.emitted.append(samples)


class Stage:
    """A per-sample stage; every hook is optional."""

    name: str = "stage"
    record_kinds: frozenset[int] = frozenset()  # RecordType values whose records on_record receives

    def on_batch(self, batch: SampleBatch) -> None:
        """Look at (and optionally re-stack, through batch.unwound) one batch of one event's samples."""

    def on_record(self, record: SideRecord, when: int) -> None:
        """A side record of one of the kinds in record_kinds."""

    def finish(self, ctx: FinishContext) -> None:
        """After the walk: pair, aggregate, emit samples (ctx.emit)."""
