"""Counting snapshots turned into results: scaled, unit-converted event values and the metrics derived from them.

Shared by `hwprof stat` and `hwprof.count`; rendering lives in hwprof.stat_output, the metric formulas in
hwprof.metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hwprof.collectors.counting import CountingSession, EventSlot, Snapshot

from hwprof.metrics import Reading, derive, metric_key, privilege_context
from hwprof.perf.abi import PerfType
from hwprof.perf.readformat import CounterValue
from hwprof.stat_output import EventResult, Slice
from hwprof.units import Nanoseconds


def display_factor(slot: EventSlot) -> float:
    """sysfs .scale, and ns -> msec for the clock events perf prints in msec."""
    factor = slot.scale
    if slot.unit == "msec" and slot.attr.type == PerfType.SOFTWARE and factor == 1.0:
        factor = 1e-6
    return factor


def event_result(slot: EventSlot, value: CounterValue | None, no_scale: bool = False) -> EventResult:
    if not slot.supported:
        return EventResult(slot.name, None, slot.unit, supported=False, error=slot.error)
    if value is None or not value.counted:
        return EventResult(slot.name, None, slot.unit, value.enabled if value else 0, 0, raw=0)
    count = float(value.raw) if no_scale else value.scaled
    return EventResult(slot.name, count * display_factor(slot), slot.unit, value.enabled, value.running,
                       raw=value.raw)


def tool_result(slot: EventSlot, duration_ns: Nanoseconds, rusage: os.struct_rusage | None) -> EventResult:
    """duration_time, user_time, system_time: perf's tool events, in ns like perf's."""
    bare = slot.name.split(":", 1)[0]
    if bare == "duration_time":
        value: float | None = float(duration_ns)
    elif bare in ("user_time", "system_time") and rusage is not None:
        value = (rusage.ru_utime if bare == "user_time" else rusage.ru_stime) * 1e9
    else:
        value = None
    return EventResult(slot.name, value, "ns", duration_ns, duration_ns if value is not None else 0,
                       raw=int(value or 0))


def readings(slots: Sequence[EventSlot], values: dict[int, tuple[float, int, int]]) -> list[Reading]:
    """Metric inputs: (scaled count, enabled, running) per event index that was counted."""
    out = []
    for slot in slots:
        if slot.index not in values or slot.tool:
            continue
        count, enabled, running = values[slot.index]
        attr = slot.attr
        out.append(Reading(metric_key(attr.type, attr.config, slot.name), count, enabled, running, slot.group,
                           privilege_context(bool(attr.exclude_user), bool(attr.exclude_kernel),
                                             bool(attr.exclude_hv)), label=slot.name))
    return out


def slice_of(slots: Sequence[EventSlot], values: dict[int, CounterValue | None], wall_ns: Nanoseconds,
             no_scale: bool, rusage: os.struct_rusage | None = None, **where: object) -> Slice:
    events = []
    inputs: dict[int, tuple[float, int, int]] = {}
    for slot in slots:
        if slot.tool:
            events.append(tool_result(slot, wall_ns, rusage))
            continue
        value = values.get(slot.index)
        events.append(event_result(slot, value, no_scale))
        if slot.supported and value is not None and value.counted:
            inputs[slot.index] = (value.scaled, value.enabled, value.running)
    metrics = derive(readings(slots, inputs), wall_ns or None)
    return Slice(tuple(events), tuple(metrics), **where)  # type: ignore[arg-type]


def totals_slice(session: CountingSession, snap: Snapshot, wall_ns: Nanoseconds, no_scale: bool,
                 rusage: os.struct_rusage | None = None) -> Slice:
    return slice_of(session.slots, {s.index: snap.total(s.index) for s in session.slots}, wall_ns, no_scale, rusage)


def breakdown(session: CountingSession, snap: Snapshot, wall_ns: Nanoseconds, no_scale: bool,
              per_cpu: bool, per_thread: bool) -> tuple[tuple[Slice, ...], tuple[Slice, ...]]:
    """(per-thread slices, per-CPU slices) of a snapshot, as asked."""
    threads: list[Slice] = []
    cpus: list[Slice] = []
    for key in session.locations:
        values = {s.index: snap.values.get(s.index, {}).get(key) for s in session.slots}
        if per_thread:
            info = session.threads.get(key)
            threads.append(slice_of(session.slots, values, wall_ns, no_scale, tid=key,
                                    pid=info.pid if info else None, comm=info.comm if info else None))
        elif per_cpu:
            cpus.append(slice_of(session.slots, values, wall_ns, no_scale, cpu=key))
    return tuple(threads), tuple(cpus)
