"""The metric side of a CPU model's vendor data: its metrics (perfmon's TMA formulas, perf's MetricExpr) and the
counters its events can be scheduled on.

Split from hwprof.events.vendor, which loads this module on first use (VendorModel.metrics(), counter_layout()):
resolving and counting named events (`hwprof stat -e NAME`, `hwprof list vendor`) never needs it, and every
dataclass costs a start ~1 ms to build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VendorMetric:
    """A vendor metric: perfmon's formula over aliased events, or perf's MetricExpr (AMD)."""

    name: str
    expression: str                       # over event names / other metric names / constants (perf's syntax)
    description: str = ""
    unit: str = ""
    groups: tuple[str, ...] = ()
    level: int | None = None              # TMA level (1-6)
    parent: str | None = None             # TMA parent metric
    threshold: str | None = None          # perf-syntax condition over metric names ("is a bottleneck")
    scale: float = 1.0                    # perf's ScaleUnit (100% -> 100)
    category: str = ""
    pmu: str = "cpu"

    @property
    def is_tma(self) -> bool:
        return self.category == "TMA" or any(g.startswith("TopdownL") or g.startswith("TmaL")
                                             for g in self.groups)


@dataclass(frozen=True)
class CounterLayout:
    """The counters of a core PMU: how many general-purpose ones, and what each fixed one counts."""

    generic: int
    fixed: tuple[str, ...]  # the event each fixed counter counts, by index


# --- metrics ----------------------------------------------------------------------------------------------

# perfmon constants -> perf's names for the same facts (the evaluator knows perf's).
_PERFMON_CONSTANTS = {
    "SYSTEM_TSC_FREQ": "#system_tsc_freq", "HYPERTHREADING_ON": "#smt_on", "THREADS_PER_CORE": "#threads_per_core",
    "SOCKET_COUNT": "#num_packages", "CORES_PER_SOCKET": "#num_cores_per_package",
    "DURATIONTIMEINMILLISECONDS": "duration_ms", "CHAS_PER_SOCKET": "#chas_per_socket",
    "system.sockets[0].cpus.count * system.socket_count": "#num_cpus_online",
    "DEPENDENTLOADSWEIGHT": "#dependent_loads_weight",
}
# a .. z, aa .., and a_n, b_a in the longest; compiled on first use (re's cache): only Intel metrics need it
_ALIAS_PATTERN = r"\b([a-z]{1,2}(?:_[a-z]{1,2})?)\b"


def _perfmon_event_ref(name: str) -> str:
    """perfmon's metric event spelling (`EVENT:c1:e1:SUP`) as a quoted reference the evaluator resolves."""
    return "'" + name.replace("'", "") + "'"


def perfmon_metric(raw: dict, pmu: str) -> VendorMetric:
    aliases: dict[str, str] = {}
    for ev in raw.get("Events", []):
        aliases[ev["Alias"]] = _perfmon_event_ref(ev["Name"])
    for const in raw.get("Constants", []):
        name = const["Name"]
        aliases[const["Alias"]] = _PERFMON_CONSTANTS.get(name, _PERFMON_CONSTANTS.get(name.upper(), name))
    formula = re.sub(r"([<>=!])\s+=", r"\1=", raw.get("Formula", ""))  # GNR writes `> =`
    expression = re.sub(_ALIAS_PATTERN, lambda m: aliases.get(m.group(1), m.group(1)), formula)
    expression = expression.replace("smt_on", "#smt_on").replace("##smt_on", "#smt_on")
    threshold = None
    th = raw.get("Threshold")
    if isinstance(th, dict) and th.get("Formula"):
        names = {t["Alias"]: _legacy_to_metric(t["Value"]) for t in th.get("ThresholdMetrics", [])}
        threshold = re.sub(_ALIAS_PATTERN, lambda m: names.get(m.group(1), m.group(1)), th["Formula"])
        # Some models write the legacy names inline (`metric_TMA_..IFetch_Latency(%) >0.15 && ...`).
        threshold = re.sub(r"metric_(?:TMA_)?\.*([A-Za-z0-9_]+)\([^)]*\)", r"\1", threshold)
        threshold = threshold.replace("&&", "&").replace("||", "|")
    unit = raw.get("UnitOfMeasure", "")
    groups = tuple(g for g in raw.get("MetricGroup", "").split(";") if g)
    # perf calls perfmon's TmaL<n> groups TopdownL<n>: accept both names.
    groups += tuple("TopdownL" + g[4:] for g in groups if re.fullmatch(r"TmaL\d", g))
    return VendorMetric(
        name=raw["MetricName"], expression=expression, description=raw.get("BriefDescription", ""),
        unit="%" if unit == "percent" else unit, groups=groups, level=raw.get("Level"),
        parent=raw.get("ParentCategory"), threshold=threshold, category=raw.get("Category", ""), pmu=pmu,
    )


_LEGACY_NAMES: dict[str, str] = {}


def _legacy_to_metric(legacy: str) -> str:
    """Thresholds name metrics by LegacyName (`metric_TMA_..Memory_Bound(%)`); the metric is `Memory_Bound`."""
    name = legacy.removeprefix("metric_TMA_").removeprefix("metric_").lstrip(".")
    name = re.sub(r"\(.*\)$", "", name).strip()
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def perf_json_metric(raw: dict, pmu: str = "cpu") -> VendorMetric:
    scale_text = raw.get("ScaleUnit", "")
    scale, unit = 1.0, ""
    m = re.match(r"^([0-9.e+-]+)\s*(.*)$", scale_text)
    if m:
        scale, unit = float(m.group(1)), m.group(2)
    groups = tuple(g for g in raw.get("MetricGroup", "").split(";") if g)
    level = None
    for g in groups:
        lm = re.match(r"(?:PipelineL|TopdownL)(\d)", g)
        if lm:
            level = int(lm.group(1))
    return VendorMetric(name=raw["MetricName"], expression=raw["MetricExpr"],
                        description=raw.get("BriefDescription", ""), unit=unit, groups=groups, level=level,
                        scale=scale, category="TMA" if level else "", threshold=raw.get("MetricThreshold"),
                        pmu=pmu)
