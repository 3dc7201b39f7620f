"""Per-sample stages: where an unwinder or an off-CPU pairing plugs into the decoder.

    walk -> [stage.on_batch per batch] -> columns -> [stage.finish once] -> stack resolution -> Profile

A stage is an object with three optional hooks (subclass `Stage`, override what you need):

- `on_batch(batch)`: streaming, once per event per stretch of stream (a 4 MiB piece of a perf.data file or a
  ring read). The batch (samples.SampleBatch) has the samples' columns, the bytes they came from (raw data, user
  registers and stack copy through `batch.user_fields`, `batch.raw(i)`, `batch.stack_user(i)`,
  `batch.callchain(i)`), and the address spaces (`batch.spaces.at(pid, when)`: the process's mappings as they
  were at that sample). An unwinder sets `batch.unwound` (samples.UnwoundStacks): those frames replace the
  user part of each sample's stack, and the stop code of each walk (the stage's own, uint8) is kept per sample
  and handed back to the stage's `stack_ends` to say how the stack ended (StackEnd). The batch and its bytes
  are dropped after the call: keep only what you need.
- `on_record(record, when)`: side records of the kinds in `record_kinds` (e.g. RecordType.SWITCH,
  SWITCH_CPU_WIDE, EXIT), parsed (hwprof.perf.records types) with the stream's order key `when`.
- `finish(ctx)`: once, after the walk; `ctx.emit(...)` adds weighted samples (e.g. off-CPU time) with their
  callchains, which then go through the same stack resolution and symbolization as every other sample.
- `stack_ends(ends, stop)`: how each sample's stack ended, given the stop code an unwinding stage set.
- `on_profile(profile)`: the built Profile, before it is returned and cached; return it or a changed copy.

Stages are given to the decoder by its caller (`decode_file(..., stages=[...])`): the core never imports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hwprof.perf.records import ReadRecord, Switch, TaskEvent
from hwprof.pipeline.samples import SampleBatch
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.walk import EventInfo
from hwprof.profile import Profile

SideRecord = Switch | TaskEvent | ReadRecord | object


NOT_UNWOUND = 255  # UnwoundStacks.stop of a sample no stage unwound (stop codes are the unwinding stage's own)


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
    state: np.ndarray | None = None  # uint8 per sample (e.g. off-CPU state; 0 = ordinary), SampleColumns.state


@dataclass
class FinishContext:
    """What a finishing stage sees after the walk, and where its samples go."""

    events: list[EventInfo]
    spaces: AddressSpaces                     # mappings, comms (spaces.comms), pid of each tid
    sample_counts: dict[str, int]             # samples decoded per event name
    features: dict[int, bytes] = field(default_factory=dict)  # the file's raw feature sections (Feature -> bytes)
    last_when: int = 0                        # order key of the last record walked (the end of the capture)
    emitted: list[EmittedSamples] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown with the profile (e.g. "120 switch-outs unpaired")

    def emit(self, samples: EmittedSamples) -> None:
        self.emitted.append(samples)


class Stage:
    """A per-sample stage; every hook is optional."""

    name: str = "stage"
    record_kinds: frozenset[int] = frozenset()  # RecordType values whose records on_record receives
    # Runs before every other stage, unwinding included: a stage that drops samples (batch.select), so nothing is
    # spent on them (hwprof.pipeline.scope), or one that completes the address spaces the others read.
    early: bool = False

    def on_batch(self, batch: SampleBatch) -> None:
        """Look at (and optionally re-stack, through batch.unwound) one batch of one event's samples."""

    def on_record(self, record: SideRecord, when: int) -> None:
        """A side record of one of the kinds in record_kinds."""

    def finish(self, ctx: FinishContext) -> None:
        """After the walk: pair, aggregate, emit samples (ctx.emit)."""

    def on_profile(self, profile: Profile) -> Profile:
        """The built Profile, before it is returned (and cached): a stage may return a changed copy (e.g. with
        frames for off-CPU states added), never change it in place."""
        return profile

    def stack_ends(self, ends: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """How each sample's stack ended (StackEnd, uint8 per sample, as resolution found it), given the stop
        code this stage set for it (NOT_UNWOUND where it set none): e.g. truncated where the stack copy ran out."""
        return ends
