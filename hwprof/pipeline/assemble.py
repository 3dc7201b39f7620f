"""Samples with callchains -> Profile: address-space generations, unique stacks, one stack resolution, columns.

Every producer ends here: the perf.data decoder (decode.py) and the probe collector's stacks
(hwprof.collectors.probe_stacks) hand over their samples as `StackedSamples` and their distinct callchains, and get
a Profile whose stacks were resolved by the same StackResolver under the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hwprof.pipeline.arrays import sorted_unique, unique_rows
from hwprof.pipeline.chains import ChainTable
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.stacks import StackResolver, UniqueStacks
from hwprof.pipeline.stages import Stage
from hwprof.profile import FrameKind, Profile, ProfileBuilder, ProfileMeta, SampleArrays, StackEnd
from hwprof.system.memory import release_free_memory


@dataclass(frozen=True)
class StackedSamples:
    """Samples ready for stack resolution, one row each."""

    time: np.ndarray      # uint64 ns
    when: np.ndarray      # int64 order key against the address spaces' changes (time, or stream position)
    pid: np.ndarray       # int64
    tid: np.ndarray       # int64
    cpu: np.ndarray       # int64
    period: np.ndarray    # float64 weight
    chain: np.ndarray     # int64 index into the chains list
    stop: np.ndarray      # uint8 unwinding stop code (stages.NOT_UNWOUND when none)
    counters: np.ndarray  # float64 (n, len(meta.weight_names))
    root: np.ndarray | None = None  # int64 index into root_labels per sample (-1: none)
    state: np.ndarray | None = None  # uint8 per sample (hwprof.offcpu.pairing.OffCpuState), None when all are on-CPU
    depth: np.ndarray | None = None  # int64 frames per stack when the chains were cut (leaf-only), -1: whole


def assemble_profile(meta: ProfileMeta, samples: StackedSamples, chains: ChainTable, spaces: AddressSpaces,
                     resolver: StackResolver, max_stack: int, has_callchain: bool, stages: Sequence[Stage] = (),
                     root_labels: Sequence[str] = (), threads: dict[int, str] | None = None) -> Profile:
    """The Profile of `samples`, whose `chain` are ids of `chains` (the table is consumed). `root_labels` name
    frames put above the outermost frame of the samples whose `root` points at them (several probes in one
    profile). `threads`: tid -> name (default: the spaces' comms)."""
    pid, when, chain = samples.pid, samples.when, samples.chain
    n = len(pid)
    # Which address space (pid, generation) each sample saw.
    gen = np.zeros(n, dtype=np.int64)
    for p in sorted_unique(pid):
        mask = pid == p
        gen[mask] = spaces.generations(int(p), when[mask])
    # A unique stack is (chain, pid, generation[, root]); most samples share a few.
    columns = [chain, pid, gen] + ([samples.root] if samples.root is not None else [])
    combo = np.stack(columns, axis=1) if n else np.zeros((0, len(columns)), dtype=np.int64)
    uniq, inverse = unique_rows(combo)
    inverse = inverse.reshape(-1)
    times = samples.time
    if not meta.duration_ns and not meta.start_time_ns:  # else the producer knows its span (a probe session)
        meta = replace(meta, start_time_ns=int(times.min()) if n else 0,
                       duration_ns=int(times.max() - times.min()) if n else 0)
    builder = ProfileBuilder(meta)
    root = None
    if samples.root is not None:
        label_frames = np.array([builder.frame(function=label, module=None, address=0, kind=FrameKind.UNKNOWN)
                                 for label in root_labels] + [-1], dtype=np.int64)
        root = label_frames[uniq[:, 3]]  # -1 indexes the trailing -1
    release_free_memory()  # what the walk freed, before the chains are laid out flat
    rows = UniqueStacks(chains.take(), uniq[:, 0], uniq[:, 1], uniq[:, 2], root)
    resolved = resolver.resolve(builder, rows, max_stack, has_callchain)
    del rows
    builder.threads.update(spaces.comms if threads is None else threads)
    ends = resolved.ends[inverse].astype(np.uint8) if n else np.zeros(0, np.uint8)
    if samples.depth is not None and n:
        ends = np.where(samples.depth >= max_stack, np.uint8(StackEnd.TRUNCATED), ends).astype(np.uint8)
    for stage in stages:
        ends = stage.stack_ends(ends, samples.stop)
    columns_out = SampleArrays(
        time=times, pid=pid.astype(np.int32), tid=samples.tid.astype(np.int32), cpu=samples.cpu.astype(np.int32),
        period=samples.period.astype(np.float64),
        stack=resolved.leaf[inverse].astype(np.int32) if n else np.zeros(0, np.int32),
        end=ends, counters=samples.counters, state=samples.state)
    if n:
        order = np.argsort(columns_out.time, kind="stable")
        if np.any(order != np.arange(n)):
            columns_out = columns_out.take(order)
    profile = builder.build_from_columns(resolved.stack_frame, resolved.stack_parent, columns_out)
    for stage in stages:
        profile = stage.on_profile(profile)
    return profile

