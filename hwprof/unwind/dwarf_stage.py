"""The dwarf unwinder as a pipeline stage (hwprof.pipeline.stages.Stage): what the decoder runs for captures made
with --call-graph dwarf. UnwindStage does the work; this adapter feeds it the batches (with
the decoder's address spaces, hwprof.pipeline.spaces, which the side records built)."""

from __future__ import annotations

import numpy as np

from hwprof.perf.abi import SampleType
from hwprof.pipeline.samples import SampleBatch, UnwoundStacks
from hwprof.pipeline.stacks import jit_map_path
from hwprof.pipeline.stages import NOT_UNWOUND, FinishContext, Stage
from hwprof.pipeline.walk import EventInfo
from hwprof.profile import StackEnd
from hwprof.unwind.samples import has_user_stacks, user_state
from hwprof.unwind.stage import UnwindStage
from hwprof.unwind.walk import StopReason

_ENDS = {
    StopReason.BOTTOM: StackEnd.BOTTOM,
    StopReason.STACK_TRUNCATED: StackEnd.TRUNCATED,
    StopReason.MAX_DEPTH: StackEnd.TRUNCATED,
    StopReason.NO_CFI: StackEnd.NO_CFI,
    StopReason.UNSUPPORTED_RULE: StackEnd.NO_CFI,
    StopReason.FP_ZERO: StackEnd.FP_ZERO,
    StopReason.UNKNOWN_MAPPING: StackEnd.UNKNOWN_MAPPING,
    StopReason.JIT_NO_UNWIND_INFO: StackEnd.JIT_NO_UNWIND,
    StopReason.BAD_FRAME: StackEnd.UNKNOWN_FRAME,
}


class DwarfUnwindStage(Stage):
    name = "dwarf unwinding"

    def __init__(self, unwinder: UnwindStage) -> None:
        self.unwinder = unwinder

    def on_batch(self, batch: SampleBatch) -> None:
        layout = batch.event.layout
        if not len(batch) or not layout.has(SampleType.CALLCHAIN) or not self.unwinder.accepts(layout):
            return
        # --call-graph dwarf: the kernel's chain holds the kernel part; the user part is unwound from the
        # sample's registers and stack copy, here, while the batch holds them (located after the callchain and any
        # RAW tracepoint data, e.g. sched_switch's for --off-cpu, by the batch's user_fields).
        result = self.unwinder.unwind_batch(batch.buffer, user_state(batch.user_fields), batch.pid, batch.when,
                                            batch.spaces)
        batch.unwound = UnwoundStacks(result.frames, result.offsets, result.stop)

    def finish(self, ctx: FinishContext) -> None:
        ctx.notes.extend(self.unwinder.notes())

    def stack_ends(self, ends: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Each unwound stack's end, from why the walk stopped: the CFI's own end (_start, clone, clone3 say "no
        return address") is BOTTOM, a real bottom even in a stripped binary whose _start has no name; a copy that
        ran out is TRUNCATED; the other reasons keep their name for the stack-quality line. A return address of 0
        keeps what resolution found (complete only if that frame is a real bottom, hwprof.definitions)."""
        out = ends.copy()
        unwound = (stop != NOT_UNWOUND) & (out != StackEnd.NO_STACK)
        for reason, end in _ENDS.items():
            out[unwound & (stop == reason)] = end
        return out

def dwarf_stage(symbolizer: object, events: list[EventInfo], build_ids: dict[str, bytes],
                jit_dir: str | None = None) -> Stage | None:
    """The dwarf unwinding stage when any event carries user stacks (--call-graph dwarf) and a table provider is at
    hand (the symbolizer's unwind_table; its jit_unwind_table, with the capture's JIT maps, for JIT code)."""
    provider = getattr(symbolizer, "unwind_table", None)
    if provider is None or not any(has_user_stacks(e.layout) for e in events):
        return None
    jit = getattr(symbolizer, "jit_unwind_table", None)

    def jit_tables(pid: int, binaries: list[str]):
        return jit(jit_map_path(jit_dir, pid, binaries), binaries) if jit is not None else None

    return DwarfUnwindStage(UnwindStage(provider, build_ids, jit_tables))


def unwinding_stage(tables_from: object, jit_dir: str | None = None) -> Stage | None:
    """The dwarf stage on its own, for a decode without symbolization (`hwprof report --raw`): `tables_from` gives
    unwind tables (a hwprof.symbolize.Symbolizer) while frames stay module+offset. A no-op for captures without
    stack copies; None when `tables_from` has no unwind tables to give."""
    provider = getattr(tables_from, "unwind_table", None)
    if provider is None:
        return None
    jit = getattr(tables_from, "jit_unwind_table", None)

    def jit_tables(pid: int, binaries: list[str]):
        return jit(jit_map_path(jit_dir, pid, binaries), binaries) if jit is not None else None

    return DwarfUnwindStage(UnwindStage(provider, {}, jit_tables))
