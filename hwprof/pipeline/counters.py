"""Per-sample counter deltas from group reads (PERF_SAMPLE_READ): what each sample's interval counted."""

from __future__ import annotations

import numpy as np

from hwprof.perf.abi import SampleType
from hwprof.pipeline.arrays import unique_rows
from hwprof.pipeline.samples import SampleColumns
from hwprof.pipeline.walk import EventInfo


def member_names(events: list[EventInfo], event: EventInfo, members: int) -> list[str]:
    """Group members follow their leader in the attr list (perf and hwprof write them in group order)."""
    names = [e.name for e in events[event.index: event.index + members]]
    while len(names) < members:
        names.append(f"member{len(names)}")
    return names


def counter_deltas(events: list[EventInfo], event: EventInfo, cols: SampleColumns,
                   n: int) -> tuple[list[str], np.ndarray]:
    """Per-sample deltas of every group member, keyed by the counter instance; (names, (n, members) float64).

    Rows past the samples that carry reads (samples a finishing stage emitted) get zero deltas.
    """
    if not cols.reads:
        return [], np.zeros((n, 0), dtype=np.float64)
    values = np.concatenate(cols.reads).astype(np.float64)
    read_rows = len(values)
    members = values.shape[1]
    names = member_names(events, event, members)
    stream = np.concatenate(cols.stream).astype(np.uint64)
    cpu = cols.cat("cpu", "int64")[:read_rows]
    tid = cols.cat("tid", "int64")[:read_rows]
    times = cols.cat("time", "uint64")[:read_rows]
    # Counter instance: the stream id when the file has it (hwprof's group reads), else (id, cpu, tid): right
    # for perf's per-thread and inherited events, while a system-wide perf capture gives per-CPU counters
    # whose deltas this over-counts (no way to tell them apart without stream ids).
    key = np.stack([stream.astype(np.int64), cpu, tid if not event.layout.has(SampleType.STREAM_ID) else cpu * 0],
                   axis=1)
    _, instance = unique_rows(key)
    instance = instance.reshape(-1)
    order = np.lexsort((times, instance))
    sorted_vals = values[order]
    first = np.ones(read_rows, dtype=bool)
    first[1:] = instance[order][1:] != instance[order][:-1]
    deltas = np.where(first[:, None], sorted_vals, sorted_vals - np.vstack([sorted_vals[:1], sorted_vals[:-1]]))
    # Raw deltas, never scaled by time_enabled / time_running: a task's event opened per CPU is "enabled but not
    # running" whenever the task runs on another CPU, which looks exactly like multiplexing, and scaling then
    # inflated cpu-clock deltas ~2x on two CPUs. Members of one group share their windows, so their ratios need
    # no scaling (and perf's group reads are shown raw too).
    deltas = np.maximum(deltas, 0)
    out = np.zeros((n, members), dtype=np.float64)
    out[order] = deltas
    return names, out
