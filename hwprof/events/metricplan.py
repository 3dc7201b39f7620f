"""`hwprof stat -M GROUP_OR_METRIC` and `--topdown-level N`: choose the vendor's metrics, schedule their events
into groups that fit the CPU model's counters, and evaluate the formulas over what was counted.

Scheduling (why the groups look as they do):
- A metric is exact only if all its events ran in the same windows, i.e. in one perf group. The planner takes
  metrics largest first and puts each metric's events into the first group they fit in together, else into a
  new group; only a metric too big for any one group is split (and then shows its multiplexing uncertainty).
- A group fits when its general-purpose events can be matched to distinct counters each is allowed on
  (perfmon's per-event `Counter` lists: "0,1,2,3", "0", "1,2,3,4,5,6,7"; AMD Zen: any of 6), with at most the
  model's number of general-purpose counters. Fixed-counter events (INST_RETIRED.ANY, CPU_CLK_UNHALTED.THREAD,
  REF_TSC, TOPDOWN.SLOTS) take their own fixed counter and are repeated in every group that needs them.
- Events the vendor marks TakenAlone (e.g. load-latency and some offcore events) get a group to themselves.
- Intel perf-metrics (PERF_METRICS.*, read as the kernel's `topdown-*` events) exist only in a group led by
  `slots` (TOPDOWN.SLOTS); they use no general-purpose counter.
- Events not on the core PMU (msr/tsc, tool events) are counted on their own.

Values: each metric reads its events preferably from the group it was planned in; uncertainty is
hwprof.metrics.combined_uncertainty over the readings it used (same rule as IPC: one term per group).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from hwprof.errors import HwprofError
from hwprof.events.metricexpr import MetricExpr, MetricExprError, parse_expr
from hwprof.events.vendor import VendorModel
from hwprof.events.vendor_metrics import CounterLayout, VendorMetric
from hwprof.metrics import Metric, Reading, combined_uncertainty

# The kernel's perf-metrics encodings (arch/x86/events/intel/core.c: slots, topdown-*).
PERF_METRICS_UMASKS = {
    "RETIRING": (0x80, "topdown-retiring"), "BAD_SPECULATION": (0x81, "topdown-bad-spec"),
    "FRONTEND_BOUND": (0x82, "topdown-fe-bound"), "BACKEND_BOUND": (0x83, "topdown-be-bound"),
    "HEAVY_OPERATIONS": (0x84, "topdown-heavy-ops"), "BRANCH_MISPREDICTS": (0x85, "topdown-br-mispredict"),
    "FETCH_LATENCY": (0x86, "topdown-fetch-lat"), "MEMORY_BOUND": (0x87, "topdown-mem-bound"),
}
# Intel's TMA spreadsheet default for Dependent_Loads_Weight (what toplev uses when not told otherwise).
DEPENDENT_LOADS_WEIGHT = 20.0
UNKNOWN_RETIRE_LATENCY = -1.0  # formulas test `X:retire_latency >= 0` and fall back to a fixed cost


class MetricPlanError(HwprofError):
    pass


@dataclass(frozen=True)
class EventRef:
    """One event a formula names, and how hwprof opens it."""

    ref: str                 # as the formula writes it: 'L1D_PEND_MISS.FB_FULL:c1', 'ex_ret_ops'
    text: str                # the event string hwprof parses: 'cpu/L1D_PEND_MISS.FB_FULL,cmask=0x1/'
    kind: str                # "gp", "fixed", "perf_metrics", "slots", "other"
    counters: frozenset[int] = frozenset()   # allowed general-purpose counters (gp)
    fixed: int | None = None
    alone: bool = False


@dataclass
class PlanGroup:
    refs: list[EventRef] = field(default_factory=list)

    def names(self) -> set[str]:
        return {r.ref.upper() for r in self.refs}


@dataclass
class MetricValue:
    metric: VendorMetric
    value: float | None
    uncertainty: float | None
    reason: str = ""            # why there is no value
    over_threshold: bool | None = None


def _sysfs_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def system_constants(duration_ns: float) -> dict[str, float]:
    """The facts formulas use besides counts, read from this machine (perf's #-constants)."""
    smt = _sysfs_int("/sys/devices/system/cpu/smt/active")
    from hwprof.system.cpus import cpuinfo_records

    records = cpuinfo_records()
    packages = {r["physical id"] for r in records if "physical id" in r}
    first = records[0] if records else {}
    cores = siblings = 0
    tsc_hz = 0.0
    try:
        cores = int(first.get("cpu cores", 0))
        siblings = int(first.get("siblings", 0))
        m = re.search(r"@\s*([0-9.]+)\s*GHz", first.get("model name", ""))
        if m:
            tsc_hz = float(m.group(1)) * 1e9
        elif first.get("cpu MHz"):
            tsc_hz = float(first["cpu MHz"]) * 1e6
    except ValueError:
        pass
    online = os.sysconf("SC_NPROCESSORS_ONLN")
    slots = _arm_slots()
    return {
        "#smt_on": float(bool(smt)), "#system_tsc_freq": tsc_hz, "#num_cpus_online": float(online),
        "#num_packages": float(len(packages) or 1), "#num_cores_per_package": float(cores or online),
        "#threads_per_core": float(siblings // cores) if cores and siblings else 1.0,
        "#dependent_loads_weight": DEPENDENT_LOADS_WEIGHT,
        "duration_ms": duration_ns / 1e6, "durationtimeinmilliseconds": duration_ns / 1e6,
        "dependentloadsweight": DEPENDENT_LOADS_WEIGHT, "socket_count": float(len(packages) or 1),
        "duration_time": duration_ns / 1e9,
        **({"#slots": float(slots)} if slots else {}),
    }


def _arm_slots() -> int | None:
    """arm64: operations the core can handle per cycle, as the PMU driver publishes it (caps/slots)."""
    root = "/sys/bus/event_source/devices"
    try:
        names = [n for n in os.listdir(root) if n.startswith(("armv8", "armv9"))]
    except OSError:
        return None
    for name in names:
        value = _sysfs_int(os.path.join(root, name, "caps", "slots"))
        if value:
            return value
    return None


_CONSTANT_NAMES = {"durationtimeinmilliseconds", "duration_ms", "dependentloadsweight", "socket_count",
                   "duration_time"}
_MODIFIER_TERMS = {"c": "cmask", "e": "edge", "i": "inv", "u": "umask"}


class MetricPlan:
    """Selected metrics (with the metrics they refer to), their events and the groups to open."""

    def __init__(self, model: VendorModel, selected: Sequence[VendorMetric], topdown_level: int | None = None,
                 constants: dict[str, float] | None = None) -> None:
        self.model = model
        # Machine facts known before counting (#smt_on, ...): formulas' branches that depend only on them are
        # decided now, so the events of the branch not taken are never opened.
        self.constants = constants if constants is not None else system_constants(0.0)
        self.topdown_level = topdown_level
        self._by_name = {m.name.lower(): m for m in model.metrics()}
        self.layout: dict[str, CounterLayout] = {pmu: model.counter_layout(pmu) for pmu in model.core_pmus}
        self.exprs: dict[str, MetricExpr] = {}
        self.unavailable: dict[str, str] = {}
        self.selected = list(dict.fromkeys(selected))
        self.needed: list[VendorMetric] = []
        self.refs: dict[str, EventRef] = {}
        self.metric_refs: dict[str, list[str]] = {}
        for metric in self.selected:
            self._collect(metric, set())
        self.groups: list[PlanGroup] = []
        self.home: dict[str, list[int]] = {}  # metric -> plan groups it was placed in
        self._schedule()
        self.first_slot = 0          # slot index of the plan's first event (set by whoever opens the groups)
        self.first_group = 0

    # --- which events ------------------------------------------------------------------------------------

    def _collect(self, metric: VendorMetric, seen: set[str]) -> list[str]:
        """Event refs of a metric, through the metrics it names (computed once per metric)."""
        key = metric.name.lower()
        if key in self.metric_refs:
            return self.metric_refs[key]
        if key in seen:
            self.unavailable[metric.name] = "refers to itself"
            return []
        seen = seen | {key}
        try:
            expr = parse_expr(metric.expression)
        except MetricExprError as exc:
            self.unavailable[metric.name] = str(exc)
            self.metric_refs[key] = []
            return []
        self.exprs[key] = expr
        events: list[str] = []
        static = {k: v for k, v in self.constants.items() if k.startswith("#")}
        for name in sorted(expr.names(static)):
            if name.startswith("#") or name.lower() in _CONSTANT_NAMES or _is_number(name) \
                    or name.endswith(":retire_latency"):
                continue
            sub = self._by_name.get(name.lower())
            if sub is not None:
                events.extend(self._collect(sub, seen))
                if sub.name in self.unavailable:
                    self.unavailable.setdefault(metric.name, f"needs metric {sub.name}: "
                                                f"{self.unavailable[sub.name]}")
                continue
            ref_key = name.upper()  # event names are case-insensitive: cpu_cycles and CPU_CYCLES are one event
            if ref_key not in self.refs:
                ref = self._event_ref(name, metric.pmu)
                if isinstance(ref, str):
                    self.unavailable.setdefault(metric.name, ref)
                    continue
                self.refs[ref_key] = ref
            events.append(ref_key)
        self.metric_refs[key] = list(dict.fromkeys(events))
        if metric not in self.needed:
            self.needed.append(metric)
        return self.metric_refs[key]

    def _event_ref(self, ref: str, pmu: str) -> EventRef | str:
        """How to open the event a formula names; a string says why it cannot be."""
        name, _, mods = ref.partition(":")
        upper = name.upper()
        if upper == "TSC":
            return EventRef(ref, "msr/tsc/", "other")
        if upper.startswith("PERF_METRICS."):
            umask, alias = PERF_METRICS_UMASKS.get(upper.split(".", 1)[1], (None, ""))
            if umask is None:
                return f"unknown perf-metrics event {ref}"
            return EventRef(ref, f"{pmu}/event=0x0,umask={umask:#x},name={alias}/", "perf_metrics")
        if upper.startswith(("UNC_", "FREERUN_")) or "/" in name and not name.startswith(("cpu", "cpu_core",
                                                                                         "cpu_atom")):
            return f"needs uncore event {name} (uncore event data is not shipped)"
        if "/" in name:  # perf's cpu@event,terms@ form
            inner = name.split("/")[1]
            base = inner.split(",")[0]
            events = self.model.find(base)
            event = events[0] if events else None
            return EventRef(ref, name, "gp", _allowed(event, self.layout.get(pmu)), alone=bool(event and
                                                                                           event.taken_alone))
        events = [e for e in self.model.find(name) if e.pmu == pmu] or self.model.find(name)
        if not events:
            if name in ("instructions", "cycles", "duration_time"):
                return EventRef(ref, name, "gp" if name != "duration_time" else "other",
                                frozenset(range(self.layout[pmu].generic)) if pmu in self.layout else frozenset())
            return f"event {name} is not an event of {self.model.name}"
        event = events[0]
        terms: list[str] = []
        letters = ""
        for mod in (m for m in mods.split(":") if m):
            m = re.fullmatch(r"([ceiu])(0x[0-9a-fA-F]+|\d+)", mod)
            if m:
                terms.append(f"{_MODIFIER_TERMS[m.group(1)]}={m.group(2)}")
            elif mod == "SUP":
                letters += "k"
            elif mod == "USER":
                letters += "u"
            elif mod.startswith("ocr_msr_val="):
                terms.append("offcore_rsp=" + mod.split("=", 1)[1])
            elif mod in ("perf_metrics", "percore", "one_unit"):
                continue  # slots as perf-metrics leader; per-core/one-unit aggregation (counted per thread)
            else:
                return f"event {ref}: unknown modifier '{mod}'"
        text = f"{event.pmu}/{event.name}{',' + ','.join(terms) if terms else ''}/{letters}" \
            if terms or letters or self.model.is_hybrid else event.name
        fixed = event.fixed_counter if not terms else None
        if upper == "TOPDOWN.SLOTS" or mods == "perf_metrics":
            return EventRef(ref, text, "slots", fixed=fixed)
        if fixed is not None:
            return EventRef(ref, text, "fixed", fixed=fixed)
        return EventRef(ref, text, "gp", _allowed(event, self.layout.get(event.pmu)), alone=event.taken_alone)

    # --- which groups ------------------------------------------------------------------------------------

    def _capacity(self, pmu: str = "cpu") -> int:
        layout = self.layout.get(pmu) or next(iter(self.layout.values()), CounterLayout(generic=4, fixed=()))
        return layout.generic

    def _fits(self, refs: Sequence[EventRef]) -> bool:
        gp = [r for r in refs if r.kind == "gp"]
        if len(gp) > self._capacity() or any(r.alone for r in gp) and len(gp) > 1:
            return False
        fixed = [r.fixed for r in refs if r.kind in ("fixed", "slots")]
        if len(fixed) != len(set(fixed)):
            return False
        return _matching(gp)

    def _schedule(self) -> None:
        perf_metrics = [r for r in self.refs.values() if r.kind == "perf_metrics"]
        if perf_metrics:
            slots = next((r for r in self.refs.values() if r.kind == "slots"), None) or self._slots_ref()
            self.refs.setdefault(slots.ref.upper(), slots)
            self.groups.append(PlanGroup([slots, *perf_metrics]))
        order = sorted(self.needed, key=lambda m: -len(self.metric_refs.get(m.name.lower(), [])))
        for metric in order:
            if metric.name in self.unavailable:
                continue
            refs = [self.refs[r] for r in self.metric_refs[metric.name.lower()]]
            refs = [r for r in refs if r.kind not in ("perf_metrics", "other")]
            if any(r.kind == "slots" for r in refs) and self.groups and perf_metrics:
                refs = [r for r in refs if r.kind != "slots"]
                homes = [0]
            else:
                homes = []
            if not refs:
                self.home[metric.name] = homes or [0]
                continue
            placed = self._place(refs)
            self.home[metric.name] = homes + placed
        for ref in self.refs.values():
            if ref.kind == "other":
                self.groups.append(PlanGroup([ref]))

    def _slots_ref(self) -> EventRef:
        made = self._event_ref("TOPDOWN.SLOTS", self.model.core_pmus[-1])
        if isinstance(made, str):
            raise MetricPlanError(f"{self.model.name}: perf-metrics events need TOPDOWN.SLOTS ({made})")
        return made

    def _place(self, refs: list[EventRef]) -> list[int]:
        alone = [r for r in refs if r.alone]
        rest = [r for r in refs if not r.alone]
        homes: list[int] = []
        for r in alone:
            homes.append(self._add_group([r]))
        if not rest:
            return homes
        for index, group in enumerate(self.groups):
            if any(r.kind == "perf_metrics" for r in group.refs):
                continue
            merged = group.refs + [r for r in rest if r.ref.upper() not in group.names()]
            if self._fits(merged):
                group.refs = merged
                return homes + [index]
        if self._fits(rest):
            return homes + [self._add_group(rest)]
        # Too many for one group (this metric will be multiplexed): reuse events already scheduled, put the
        # others wherever they fit, and open new groups only for what fits nowhere.
        for r in rest:
            have = next((i for i, g in enumerate(self.groups) if r.ref.upper() in g.names()), None)
            if have is None:
                have = next((i for i, g in enumerate(self.groups)
                             if not any(x.kind == "perf_metrics" for x in g.refs) and self._fits(g.refs + [r])), None)
                if have is None:
                    have = self._add_group([r])
                else:
                    self.groups[have].refs.append(r)
            if have not in homes:
                homes.append(have)
        return homes

    def _add_group(self, refs: list[EventRef]) -> int:
        self.groups.append(PlanGroup(list(refs)))
        return len(self.groups) - 1

    def ordered(self) -> list[tuple[int, EventRef]]:
        """(group, event) in opening order: per group, slots leads, then fixed-counter events, then the rest."""
        out = []
        for g, group in enumerate(self.groups):
            for ref in sorted(group.refs, key=lambda r: {"slots": 0, "fixed": 1}.get(r.kind, 2)):
                out.append((g, ref))
        return out

    def event_text(self) -> list[str]:
        """The groups as `-e` strings, leader first."""
        texts: dict[int, list[str]] = {}
        for g, ref in self.ordered():
            texts.setdefault(g, []).append(ref.text)
        return ["{" + ",".join(t) + "}" if len(t) > 1 else t[0] for t in texts.values()]

    # --- values ------------------------------------------------------------------------------------------

    def evaluate(self, values: Sequence[tuple[float | None, int, int]], duration_ns: float,
                 constants: dict[str, float] | None = None) -> list[MetricValue]:
        """`values`: (scaled value or None, enabled ns, running ns) for each event of `event_text()`, in order."""
        consts = dict(constants if constants is not None else system_constants(duration_ns))
        consts.update({k: v for k, v in self.constants.items() if k.startswith("#") and k not in consts})
        readings: list[dict[str, Reading]] = [{} for _ in self.groups]
        for (g, ref), (value, enabled, running) in zip(self.ordered(), values, strict=False):
            if value is not None:
                readings[g][ref.ref.upper()] = Reading(ref.ref, float(value), enabled, running, group=g)
        cache: dict[str, tuple[float, list[Reading]]] = {}
        out = []
        for metric in self.selected:
            out.append(self._value_of(metric, readings, consts, cache))
        return out

    def _value_of(self, metric: VendorMetric, readings: list[dict[str, Reading]], consts: dict[str, float],
                  cache: dict) -> MetricValue:
        if metric.name in self.unavailable:
            return MetricValue(metric, None, None, self.unavailable[metric.name])
        try:
            value, used = self._compute(metric, readings, consts, cache, ())
        except _Missing as exc:
            return MetricValue(metric, None, None, str(exc))
        if math.isnan(value) or math.isinf(value):
            return MetricValue(metric, None, None, "division by zero (an input counted 0)")
        over = None
        if metric.threshold:
            try:
                over = bool(parse_expr(metric.threshold).evaluate(
                    lambda n: self._named_value(n, metric, readings, consts, cache, ())))
            except (MetricExprError, _Missing):
                over = None
        return MetricValue(metric, value * metric.scale, combined_uncertainty(used), over_threshold=over)

    def _compute(self, metric: VendorMetric, readings, consts, cache, stack: tuple) -> tuple[float, list[Reading]]:
        key = metric.name.lower()
        if key in cache:
            return cache[key]
        if key in stack:
            raise _Missing(f"{metric.name} refers to itself")
        used: list[Reading] = []
        homes = self.home.get(metric.name, [])

        def resolve(name: str) -> float:
            lower = name.lower()
            if name in consts:
                return consts[name]
            if lower in consts:
                return consts[lower]
            if name.startswith("#"):
                raise _Missing(f"constant {name} is not known here")
            if _is_number(name):
                return float(name)
            if name.endswith(":retire_latency"):
                return UNKNOWN_RETIRE_LATENCY
            sub = self._by_name.get(lower)
            if sub is not None:
                value, sub_used = self._compute(sub, readings, consts, cache, stack + (key,))
                used.extend(sub_used)
                return value
            for g in [*homes, *range(len(readings))]:
                reading = readings[g].get(name.upper()) if g < len(readings) else None
                if reading is not None:
                    used.append(reading)
                    return reading.value
            raise _Missing(f"event {name} was not counted")

        if key not in self.exprs:
            raise _Missing(f"metric {metric.name} was not planned")
        value = self.exprs[key].evaluate(resolve)
        cache[key] = (value, used)
        return value, used

    def _named_value(self, name, metric, readings, consts, cache, stack) -> float:
        sub = self._by_name.get(name.lower())
        if sub is not None:
            return self._compute(sub, readings, consts, cache, stack)[0] * sub.scale
        if _is_number(name):
            return float(name)
        raise _Missing(f"unknown name {name} in threshold of {metric.name}")


class _Missing(Exception):
    pass


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _allowed(event, layout: CounterLayout | None) -> frozenset[int]:
    generic = layout.generic if layout else 8
    if event is None or not event.counters or "fixed" in event.counters.lower():
        return frozenset(range(generic))
    allowed = {int(p) for p in event.counters.split(",") if p.strip().isdigit()}
    return frozenset(c for c in allowed if c < generic) or frozenset(range(generic))


def _matching(refs: Sequence[EventRef]) -> bool:
    """Can every event get its own counter among those it may use? (bipartite matching, Kuhn's algorithm)"""
    owner: dict[int, int] = {}

    def assign(i: int, seen: set[int]) -> bool:
        for counter in sorted(refs[i].counters):
            if counter in seen:
                continue
            seen.add(counter)
            if counter not in owner or assign(owner[counter], seen):
                owner[counter] = i
                return True
        return False

    return all(assign(i, set()) for i in range(len(refs)))


# --- choosing metrics ---------------------------------------------------------------------------------------

def select_metrics(model: VendorModel, names: Sequence[str]) -> list[VendorMetric]:
    """`-M` arguments: metric names or metric group names (any case), comma separated."""
    metrics = model.metrics()
    by_name = {m.name.lower(): m for m in metrics}
    out: list[VendorMetric] = []
    for text in names:
        for word in (w.strip() for w in text.split(",") if w.strip()):
            lower = word.lower()
            if lower in by_name:
                out.append(by_name[lower])
                continue
            group = [m for m in metrics if lower in (g.lower() for g in m.groups)]
            if group:
                out.extend(group)
                continue
            import difflib

            candidates = sorted({m.name for m in metrics} | {g for m in metrics for g in m.groups})
            close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
            hint = f" (did you mean: {', '.join(close)}?)" if close else " (see 'hwprof list metric')"
            raise MetricPlanError(f"unknown metric or metric group '{word}' for {model.cpuid.text} "
                                  f"({model.name}){hint}")
    return list(dict.fromkeys(out))


def is_tree_node(metric: VendorMetric) -> bool:
    """A node of the top-down tree (not an Info_ or Bottleneck_ summary metric)."""
    if metric.level is None or not metric.is_tma:
        return False
    return not metric.name.startswith(("Info_", "Bottleneck_", "tma_info", "tma_bottleneck"))


def parent_of(metric: VendorMetric) -> str | None:
    if metric.parent:
        return metric.parent
    for group in metric.groups:  # perf's AMD JSON: level-2 metrics are in '<parent>_group'
        if group.endswith("_group"):
            return group[: -len("_group")]
    return None


def topdown_metrics(model: VendorModel, level: int) -> list[VendorMetric]:
    if not 1 <= level <= 6:
        raise MetricPlanError(f"--topdown-level must be 1 to 6 (got {level})")
    nodes = [m for m in model.metrics() if is_tree_node(m) and (m.level or 0) <= level]
    if not nodes:
        raise MetricPlanError(f"{model.cpuid.text} ({model.name}) has no top-down metrics in its vendor data")
    return nodes


@dataclass(frozen=True)
class TreeNode:
    name: str
    parent: str | None
    level: int
    value: float | None
    unit: str
    uncertainty: float | None
    over_threshold: bool | None
    bottleneck: bool
    reason: str = ""
    description: str = ""


def topdown_tree(values: Sequence[MetricValue]) -> list[TreeNode]:
    """The tree in print order (depth first), with the bottleneck path marked as toplev does: from level 1 down,
    the child over its threshold (where the vendor gives one) with the largest value."""
    nodes = [v for v in values if is_tree_node(v.metric)]
    names = {v.metric.name for v in nodes}
    children: dict[str | None, list[MetricValue]] = {}
    for v in nodes:
        parent = parent_of(v.metric)
        children.setdefault(parent if parent in names else None, []).append(v)
    path: set[str] = set()
    level: str | None = None
    while True:
        candidates = [v for v in children.get(level, []) if v.value is not None and v.over_threshold is not False]
        if not candidates:
            break
        best = max(candidates, key=lambda v: v.value or 0.0)
        path.add(best.metric.name)
        level = best.metric.name
    out: list[TreeNode] = []

    def walk(parent: str | None) -> None:
        for v in children.get(parent, []):
            out.append(TreeNode(v.metric.name, parent, v.metric.level or 1, v.value, v.metric.unit, v.uncertainty,
                                v.over_threshold, v.metric.name in path, v.reason, v.metric.description))
            walk(v.metric.name)

    walk(None)
    return out


def render_tree(nodes: Sequence[TreeNode], title: str) -> str:
    """toplev's layout: one line per node, indented by level, value and unit, `<==` on the bottleneck path."""
    if not nodes:
        return ""
    width = max(len(n.name) + 2 * (n.level - 1) for n in nodes) + 2
    lines = ["", f" {title}:"]
    for n in nodes:
        label = "  " * (n.level - 1) + n.name
        if n.value is None:
            lines.append(f"    {label:<{width}} {'n/a':>8}        ({n.reason})")
            continue
        unit = "% slots" if n.unit == "%" else n.unit
        text = f"    {label:<{width}} {n.value:8.2f} {unit:<8}"
        if n.uncertainty:
            text += f" (±{100 * n.uncertainty:.1f}% multiplexed)"
        if n.over_threshold is False:
            text += "  [below threshold]"
        if n.bottleneck:
            text += "  <=="
        lines.append(text.rstrip())
    return "\n".join(lines) + "\n"


def as_metrics(values: Sequence[MetricValue]) -> list[Metric]:
    """Vendor metric values as stat's Metric records (printed after the events, in the JSON's metrics)."""
    return [Metric(v.metric.name, v.value, v.metric.unit or "", v.uncertainty, None)
            for v in values if v.value is not None]
