"""Derived metrics of a counting run (IPC, miss ratios, GHz, top-down level 1) and how far to trust them.

Pure logic: the input is a list of `Reading` (an event's scaled value, how long it was enabled and running, which
group it was scheduled in); the output is a list of `Metric`. Events are matched by what they count, not by how
they were spelled: `metric_key()` maps an attr's (type, config) to one canonical name, so `cpu-cycles`, `cycles`
and `r003c`-style aliases the parser resolved to PERF_COUNT_HW_CPU_CYCLES all feed IPC. Metrics only combine
events counted in the same privilege context (`cycles:u` never divides `instructions:k`), as perf's stat-shadow
does.

Uncertainty under multiplexing
------------------------------
A counter that ran a fraction r = time_running / time_enabled of the time is extrapolated to value * 1/r; the
share (1 - r) of its value was never observed, it is assumed to have happened at the observed rate. We take that
extrapolated share as the counter's relative uncertainty:

    u(x) = 1 - r(x)                           (0 for a counter that ran the whole time)

A metric f(x1, ..., xn) that is a product or quotient of counters has, to first order, relative uncertainty

    u(f) = sqrt( sum over scheduling groups g of  u_g^2 ),   u_g = max over inputs x in g of u(x)

Inputs in the same event group are scheduled onto the PMU together, so they were observed over the very same
windows: their scale factors cancel in a ratio, and the group contributes one term, not one per member (this is
why perf users put IPC's inputs in `{cycles,instructions}`). Inputs in different groups were observed in different
windows and contribute independent terms, added in quadrature. Time-based software events (task-clock) and the
wall clock never multiplex and contribute 0. Example: IPC from cycles (r=0.5) and instructions (r=0.5) in separate
groups gives sqrt(0.5^2 + 0.5^2) = 71%; the same two events in one group give 50%; a group with r=1 gives 0.
The estimate is deliberately simple and conservative: it assumes nothing about the workload's phase behaviour
(a steady loop extrapolates far better than this says; a program with distinct phases can be off by as much).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hwprof.definitions import COUNTER_RATIOS, canonical_event
from hwprof.perf.abi import HwCacheId, HwCacheOp, HwCacheResult, HwEvent, PerfType, SwEvent
from hwprof.units import Nanoseconds

_HW_NAMES = {
    HwEvent.CPU_CYCLES: "cycles",
    HwEvent.INSTRUCTIONS: "instructions",
    HwEvent.CACHE_REFERENCES: "cache-references",
    HwEvent.CACHE_MISSES: "cache-misses",
    HwEvent.BRANCH_INSTRUCTIONS: "branches",
    HwEvent.BRANCH_MISSES: "branch-misses",
    HwEvent.BUS_CYCLES: "bus-cycles",
    HwEvent.STALLED_CYCLES_FRONTEND: "stalled-cycles-frontend",
    HwEvent.STALLED_CYCLES_BACKEND: "stalled-cycles-backend",
    HwEvent.REF_CPU_CYCLES: "ref-cycles",
}
_SW_NAMES = {
    SwEvent.CPU_CLOCK: "cpu-clock",
    SwEvent.TASK_CLOCK: "task-clock",
    SwEvent.PAGE_FAULTS: "page-faults",
    SwEvent.CONTEXT_SWITCHES: "context-switches",
    SwEvent.CPU_MIGRATIONS: "cpu-migrations",
    SwEvent.PAGE_FAULTS_MIN: "minor-faults",
    SwEvent.PAGE_FAULTS_MAJ: "major-faults",
    SwEvent.ALIGNMENT_FAULTS: "alignment-faults",
    SwEvent.EMULATION_FAULTS: "emulation-faults",
}
_CACHE_NAMES = {
    HwCacheId.L1D: "L1-dcache", HwCacheId.L1I: "L1-icache", HwCacheId.LL: "LLC", HwCacheId.DTLB: "dTLB",
    HwCacheId.ITLB: "iTLB", HwCacheId.BPU: "branch", HwCacheId.NODE: "node",
}
_CACHE_OPS = {HwCacheOp.READ: "load", HwCacheOp.WRITE: "store", HwCacheOp.PREFETCH: "prefetch"}

# Top-down level 1 inputs. Intel perf-metrics CPUs name them on the `cpu` PMU; AMD Zen 4 has no named events in
# sysfs, so hwprof opens them raw under these perf JSON names (see hwprof.commands.stat's --topdown).
INTEL_TOPDOWN = ("slots", "topdown-retiring", "topdown-bad-spec", "topdown-fe-bound", "topdown-be-bound")
AMD_TOPDOWN = (
    "ls_not_halted_cyc", "ex_ret_ops", "de_src_op_disp.all",
    "de_no_dispatch_per_slot.no_ops_from_frontend", "de_no_dispatch_per_slot.backend_stalls",
)
AMD_DISPATCH_WIDTH = 6  # Zen 4 dispatches up to 6 ops per cycle: slots = 6 x cycles (amdzen4/pipeline.json)

# Events perf follows with a "/sec" rate, per task-clock second.
RATE_EVENTS = ("context-switches", "cpu-migrations", "page-faults", "minor-faults", "major-faults", "branches")


def metric_key(event_type: int, config: int, name: str) -> str:
    """The canonical name metrics know an event by: generic events by encoding, anything else by its bare name."""
    if event_type == PerfType.HARDWARE and config in _HW_NAMES.keys():
        return _HW_NAMES[HwEvent(config)]
    if event_type == PerfType.SOFTWARE and config in _SW_NAMES.keys():
        return _SW_NAMES[SwEvent(config)]
    if event_type == PerfType.HW_CACHE:
        cache, op, result = config & 0xFF, (config >> 8) & 0xFF, (config >> 16) & 0xFF
        if cache in _CACHE_NAMES.keys() and op in _CACHE_OPS.keys() and result in (0, 1):
            suffix = "s" if result == HwCacheResult.ACCESS else "-misses"
            return f"{_CACHE_NAMES[HwCacheId(cache)]}-{_CACHE_OPS[HwCacheOp(op)]}{suffix}"
    if event_type == PerfType.TRACEPOINT:  # 'sys:event' with maybe ':mods' after it
        return ":".join(name.split(":")[:2])
    return canonical_event(name, vendor=False)  # cpu/topdown-retiring/ -> topdown-retiring, cycles:u -> cycles


@dataclass(frozen=True)
class Reading:
    """One event's result as metrics see it. `value` is already scaled (and multiplied by the sysfs .scale)."""

    key: str
    value: float
    enabled: Nanoseconds
    running: Nanoseconds
    group: int = 0          # events sharing a group index were scheduled together
    context: str = ""       # privilege context, e.g. "u" for :u; only equal contexts are combined
    label: str = ""         # the event's name as the user wrote it: metrics print beside it

    @property
    def extrapolated_share(self) -> float:
        """u(x) of the module docstring: the fraction of the value that was extrapolated, not counted."""
        if self.enabled <= 0 or self.running >= self.enabled:
            return 0.0
        return 1.0 - self.running / self.enabled


@dataclass(frozen=True)
class Metric:
    """A derived number, printed beside `anchor` (an event name as the user wrote it) when there is one."""

    name: str
    value: float
    unit: str
    uncertainty: float | None = None  # relative (0.05 = +-5%); None when no input was multiplexed
    anchor: str | None = None


def combined_uncertainty(inputs: Sequence[Reading]) -> float | None:
    """u(f) of the module docstring; None when every input was counted the whole time."""
    per_group: dict[int, float] = {}
    for reading in inputs:
        per_group[reading.group] = max(per_group.get(reading.group, 0.0), reading.extrapolated_share)
    if not any(per_group.values()):
        return None
    return math.sqrt(sum(u * u for u in per_group.values()))


class _Context:
    """The readings of one privilege context, by key, and the metric builders over them."""

    def __init__(self, readings: Mapping[str, Reading], anchors: Mapping[str, str]) -> None:
        self.readings = readings
        self.anchors = anchors
        self.out: list[Metric] = []

    def have(self, *keys: str) -> bool:
        return all(k in self.readings for k in keys)

    def ratio(self, name: str, num: str, den: str, unit: str, factor: float = 1.0, anchor: str | None = None,
              extra_inputs: Sequence[str] = ()) -> None:
        if not self.have(num, den, *extra_inputs):
            return
        denominator = self.readings[den].value
        if denominator == 0:
            return
        value = factor * self.readings[num].value / denominator
        inputs = [self.readings[k] for k in (num, den, *extra_inputs)]
        self.out.append(Metric(name, value, unit, combined_uncertainty(inputs), self.anchors.get(anchor or num)))


def derive(readings: Sequence[Reading], wall_ns: Nanoseconds | None = None) -> list[Metric]:
    """Every metric whose inputs are present, in perf's order: per event first, top-down last.

    `wall_ns` is the elapsed time of the measurement (for "CPUs utilized"); leave it None for per-CPU slices
    where it has no meaning.
    """
    contexts: dict[str, dict[str, Reading]] = {}
    anchors: dict[str, dict[str, str]] = {}
    for reading in readings:
        contexts.setdefault(reading.context, {}).setdefault(reading.key, reading)
    for ctx in contexts:
        anchors[ctx] = {}
    for reading in readings:
        anchors[reading.context].setdefault(reading.key, _anchor_name(reading))
    metrics: list[Metric] = []
    for ctx, by_key in contexts.items():
        metrics.extend(_derive_context(_Context(by_key, anchors[ctx]), wall_ns))
    return metrics


def _anchor_name(reading: Reading) -> str:
    return reading.label or reading.key + (f":{reading.context}" if reading.context else "")


def _derive_context(c: _Context, wall_ns: Nanoseconds | None) -> list[Metric]:
    r = c.readings
    clock = "task-clock" if "task-clock" in r else ("cpu-clock" if "cpu-clock" in r else None)
    if clock and wall_ns:
        c.out.append(Metric("CPUs utilized", r[clock].value / wall_ns, "CPUs utilized", None, c.anchors[clock]))
    if clock and r[clock].value > 0:
        for key in RATE_EVENTS:
            if key in r:
                c.ratio(f"{key} rate", key, clock, "/sec", factor=1e9)
        c.ratio("GHz", "cycles", clock, "GHz")
    for r in COUNTER_RATIOS:
        c.ratio(r.name, r.numerator, r.denominator, r.stat_unit, r.factor, anchor=r.anchor or None)
    _topdown_intel(c)
    _topdown_amd(c)
    return c.out


def _topdown_intel(c: _Context) -> None:
    """Intel perf-metrics: each category's share of the four (the kernel already splits `slots` for us)."""
    parts = INTEL_TOPDOWN[1:]
    if not c.have(*parts):
        return
    total = sum(c.readings[k].value for k in parts)
    if total <= 0:
        return
    u = combined_uncertainty([c.readings[k] for k in parts])
    for key, label in zip(parts, ("retiring", "bad speculation", "frontend bound", "backend bound"), strict=True):
        c.out.append(Metric(f"topdown {label}", 100.0 * c.readings[key].value / total, "% of slots", u,
                            c.anchors[key]))


def _topdown_amd(c: _Context) -> None:
    """AMD Zen 4 level 1 from pipeline.json: slots = 6 x not-halted cycles, categories are op counts per slot."""
    if not c.have(*AMD_TOPDOWN):
        return
    r = c.readings
    slots = AMD_DISPATCH_WIDTH * r["ls_not_halted_cyc"].value
    if slots <= 0:
        return
    u = combined_uncertainty([r[k] for k in AMD_TOPDOWN])
    shares = (
        ("retiring", r["ex_ret_ops"].value, "ex_ret_ops"),
        ("bad speculation", max(0.0, r["de_src_op_disp.all"].value - r["ex_ret_ops"].value), "de_src_op_disp.all"),
        ("frontend bound", r["de_no_dispatch_per_slot.no_ops_from_frontend"].value,
         "de_no_dispatch_per_slot.no_ops_from_frontend"),
        ("backend bound", r["de_no_dispatch_per_slot.backend_stalls"].value,
         "de_no_dispatch_per_slot.backend_stalls"),
    )
    for label, value, anchor in shares:
        c.out.append(Metric(f"topdown {label}", 100.0 * value / slots, "% of slots", u, c.anchors[anchor]))


def privilege_context(exclude_user: bool, exclude_kernel: bool, exclude_hv: bool) -> str:
    """"" when everything is counted, else the letters of what is (perf's modifier spelling: u, k, h)."""
    if not (exclude_user or exclude_kernel or exclude_hv):
        return ""
    return "".join(letter for letter, excluded in (("u", exclude_user), ("k", exclude_kernel), ("h", exclude_hv))
                   if not excluded)
