"""`hwprof stat -M` / `--topdown-level`: the vendor metric plan added to a stat run, and its results.

The plan (hwprof.events.metricplan) decides the event groups; they are counted like any -e groups, then the
formulas are evaluated over those counts. Text output lists the metrics after the events (their events are
shown with -v) and prints the top-down tree as toplev does; the JSON document carries every event, the metrics
in `metrics`, and the tree in `topdown`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hwprof.errors import HwprofError
from hwprof.events.metricplan import (
    MetricPlan,
    MetricPlanError,
    as_metrics,
    render_tree,
    select_metrics,
    topdown_metrics,
    topdown_tree,
)
from hwprof.stat_output import Slice, StatResult


def build_plan(metric_args: Sequence[str], topdown_level: int | None) -> MetricPlan:
    from hwprof.events.cpuid import CpuidError
    from hwprof.events.vendor import VendorDataError, current_model

    try:
        model = current_model()
    except (CpuidError, VendorDataError) as exc:
        raise HwprofError(str(exc), exit_code=2) from None
    if model is None:
        from hwprof.events.cpuid import current_cpuid

        cpuid = current_cpuid()
        raise HwprofError(f"no vendor metrics for this CPU model ({cpuid.text if cpuid else 'unknown'}); "
                          "set PERF_CPUID to a supported model, e.g. GenuineIntel-6-8F-8", exit_code=2)
    try:
        selected = select_metrics(model, metric_args) if metric_args else []
        if topdown_level:
            selected += topdown_metrics(model, topdown_level)
        plan = MetricPlan(model, selected, topdown_level)
    except MetricPlanError as exc:
        raise HwprofError(str(exc), exit_code=2) from None
    missing = [m.name for m in plan.selected if m.name in plan.unavailable]
    if missing and len(missing) == len(plan.selected):
        first = missing[0]
        raise HwprofError(f"{model.name} cannot compute {', '.join(missing[:3])}"
                          f"{' ...' if len(missing) > 3 else ''}: {plan.unavailable[first]}", exit_code=2)
    if not plan.groups:
        raise HwprofError("the selected metrics need no events", exit_code=2)
    return plan


def vendor_topdown_available() -> bool:
    """Whether this model's vendor data has a top-down tree (then --topdown uses its level-1 formulas)."""
    from hwprof.events.vendor import VendorDataError, current_model

    try:
        model = current_model()
    except (ValueError, VendorDataError):
        return False
    return model is not None and any(m.level == 1 and m.is_tma for m in model.metrics())


def plan_groups(plan: MetricPlan, first_group: int, first_slot: int) -> list:
    from hwprof.events.parser import EventParser

    parser = EventParser(vendor=plan.model)
    groups = []
    for text in plan.event_text():
        groups.extend(parser.parse(text))
    plan.first_group, plan.first_slot = first_group, first_slot
    return groups


def apply_plan(result: StatResult, plan: MetricPlan, verbose: bool,
               user_events: int) -> tuple[StatResult, StatResult, str]:
    """The result with the vendor metrics (and `topdown` tree), the same as the table shows it (the metrics'
    own events hidden unless -v), and the tree text to print after the table."""
    events = result.events[plan.first_slot:]
    values = [(e.value if e.counted else None, e.enabled_ns, e.running_ns) for e in events]
    computed = plan.evaluate(values, result.duration_ns)
    tree = topdown_tree(computed) if plan.topdown_level else []
    model = plan.model
    metrics = tuple(result.metrics) + tuple(as_metrics(v for v in computed if not (tree and _in_tree(v, tree))))
    notes = list(result.notes)
    lost = [v for v in computed if v.value is None and not (tree and _in_tree(v, tree))]
    if lost and not any(e.counted for e in events):
        notes.append(f"no vendor metric has a value: none of their {len(events)} events were counted here")
    else:
        for v in lost[:5]:
            notes.append(f"metric {v.metric.name}: {v.reason}")
        if len(lost) > 5:
            notes.append(f"{len(lost) - 5} more metrics have no value")
    topdown = None
    if tree:
        topdown = {"model": model.name, "cpuid": model.cpuid.text, "level": plan.topdown_level, "nodes": [
            {"name": n.name, "parent": n.parent, "level": n.level, "value": n.value, "unit": n.unit,
             "uncertainty": n.uncertainty, "over_threshold": n.over_threshold, "bottleneck": n.bottleneck,
             "reason": n.reason or None} for n in tree]}
    if not verbose and plan.topdown_level:
        shown_events = result.events[:user_events]
        notes.append(f"{len(result.events) - user_events} events were scheduled for the metrics "
                     f"in {len(plan.groups)} groups (-v lists them)")
    else:
        shown_events = result.events
    starts = [0, *(s.time_ns or 0 for s in result.intervals)]
    intervals = tuple(interval_slice(plan, s, float((s.time_ns or 0) - start), True)
                      for s, start in zip(result.intervals, starts, strict=False))
    new = dataclasses.replace(result, metrics=metrics, notes=tuple(notes), topdown=topdown, intervals=intervals)
    shown = dataclasses.replace(new, events=shown_events)
    text = render_tree(tree, f"Top-down (TMA) to level {plan.topdown_level} for {model.cpuid.text} ({model.name})")
    return new, shown, text


def interval_slice(plan: MetricPlan, s: Slice, interval_ns: float, verbose: bool) -> Slice:
    """One `-I` interval with the vendor metrics (tree nodes included) computed on its counts; the metrics' own
    events are left out of the printed rows unless -v, as in the totals."""
    events = s.events[plan.first_slot:]
    values = [(e.value if e.counted else None, e.enabled_ns, e.running_ns) for e in events]
    computed = plan.evaluate(values, interval_ns)
    metrics = tuple(s.metrics) + tuple(as_metrics(computed))
    shown_events = s.events if verbose else s.events[:plan.first_slot]
    return dataclasses.replace(s, events=shown_events, metrics=metrics)


def _in_tree(value, tree) -> bool:
    return any(n.name == value.metric.name for n in tree)
