"""The results of `hwprof stat` as data, and their three renderings: perf-style text, CSV (-x SEP) and JSON.

Pure logic, no perf access: the command builds a `StatResult`, this module turns it into text. The text layout
follows perf stat's column for column (18-wide value, unit, 32-wide event name, '#' metric) so perf users find
their way; the JSON document is hwprof's stable machine interface (schema in README, version in "version").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from hwprof.metrics import Metric
from hwprof.units import Cpu, Nanoseconds, Pid, Tid

JSON_VERSION = 1
NOT_SUPPORTED = "<not supported>"
NOT_COUNTED = "<not counted>"


@dataclass(frozen=True)
class EventResult:
    """One event's outcome. `value` is scaled (unless --no-scale) and in `unit`; None when there is no value."""

    name: str
    value: float | None
    unit: str = ""
    enabled_ns: Nanoseconds = 0
    running_ns: Nanoseconds = 0
    supported: bool = True
    raw: int = 0
    error: str | None = None
    stddev: float | None = None        # sample standard deviation over -r runs, in `unit`
    runs: int = 1

    @property
    def counted(self) -> bool:
        return self.supported and self.value is not None

    @property
    def running_pct(self) -> float:
        return 100.0 if self.enabled_ns <= 0 else 100.0 * self.running_ns / self.enabled_ns

    @property
    def multiplexed(self) -> bool:
        return self.counted and 0 < self.running_ns < self.enabled_ns

    @property
    def relative_error_of_mean(self) -> float | None:
        """perf's '( +- x% )' after -r: the standard error of the mean, relative to the mean."""
        if self.stddev is None or not self.value or self.runs < 2:
            return None
        return self.stddev / math.sqrt(self.runs) / abs(self.value)

    def to_json(self) -> dict:
        return {
            "name": self.name, "value": self.value, "unit": self.unit, "enabled_ns": self.enabled_ns,
            "running_ns": self.running_ns, "supported": self.supported, "counted": self.counted,
            "running_pct": round(self.running_pct, 2), "raw": self.raw, "stddev": self.stddev,
            "error": self.error,
        }


@dataclass(frozen=True)
class Slice:
    """Events and metrics of one part of the measurement: a thread, a CPU, or one interval."""

    events: tuple[EventResult, ...]
    metrics: tuple[Metric, ...] = ()
    cpu: Cpu | None = None
    tid: Tid | None = None
    pid: Pid | None = None
    comm: str | None = None
    time_ns: Nanoseconds | None = None   # intervals: time since the start at the end of this interval
    per_cpu: tuple[Slice, ...] = ()      # intervals with -A
    per_thread: tuple[Slice, ...] = ()   # intervals with --per-thread

    def to_json(self) -> dict:
        out: dict = {}
        for key in ("cpu", "tid", "pid", "comm", "time_ns"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["events"] = [e.to_json() for e in self.events]
        out["metrics"] = [metric_json(m) for m in self.metrics]
        if self.per_cpu:
            out["per_cpu"] = [s.to_json() for s in self.per_cpu]
        if self.per_thread:
            out["per_thread"] = [s.to_json() for s in self.per_thread]
        return out


@dataclass(frozen=True)
class StatResult:
    target: str
    events: tuple[EventResult, ...]
    metrics: tuple[Metric, ...] = ()
    duration_ns: Nanoseconds = 0
    duration_stddev_ns: float | None = None
    command: tuple[str, ...] = ()
    exit_code: int | None = None
    runs: int = 1
    user_ns: Nanoseconds | None = None
    system_ns: Nanoseconds | None = None
    per_thread: tuple[Slice, ...] = ()
    per_cpu: tuple[Slice, ...] = ()
    intervals: tuple[Slice, ...] = ()
    interrupted: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    topdown: dict | None = None  # stat --topdown-level: the TMA tree (hwprof.events.metricplan)

    def to_json(self) -> dict:
        out = {
            "version": JSON_VERSION,
            "target": self.target,
            "command": list(self.command),
            "exit_code": self.exit_code,
            "runs": self.runs,
            "duration_ns": self.duration_ns,
            "duration_stddev_ns": self.duration_stddev_ns,
            "user_ns": self.user_ns,
            "system_ns": self.system_ns,
            "interrupted": self.interrupted,
            "events": [e.to_json() for e in self.events],
            "metrics": [metric_json(m) for m in self.metrics],
            "per_thread": [s.to_json() for s in self.per_thread],
            "per_cpu": [s.to_json() for s in self.per_cpu],
            "intervals": [s.to_json() for s in self.intervals],
            "notes": list(self.notes),
        }
        if self.topdown is not None:
            out["topdown"] = self.topdown
        return out


def metric_json(metric: Metric) -> dict:
    return {"name": metric.name, "value": metric.value, "unit": metric.unit, "uncertainty": metric.uncertainty,
            "event": metric.anchor}


def render_json(result: StatResult) -> str:
    import json  # only for --json: every other stat run starts without it

    return json.dumps(result.to_json(), indent=2) + "\n"


# --- text -------------------------------------------------------------------------------------------------

def format_count(event: EventResult, big_num: bool = True) -> str:
    if not event.supported:
        return NOT_SUPPORTED
    if event.value is None:
        return NOT_COUNTED
    value = event.value
    if event.unit and event.unit != "ns":
        return f"{value:,.2f}" if big_num else f"{value:.2f}"
    # Counts print whole, as perf's: a scaled or averaged count has no meaningful fraction.
    return f"{round(value):,}" if big_num else str(round(value))


def format_metric(metric: Metric) -> tuple[str, str]:
    """(number, unit) as perf prints them: rates get K/M/G prefixes, percentages hug their sign."""
    value, unit = metric.value, metric.unit
    if unit == "/sec":
        for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= factor:
                return f"{value / factor:8.3f}", f"{prefix}/sec"
        return f"{value:8.3f}", "/sec"
    if unit.startswith("%"):
        return f"{value:7.2f}%", unit[1:].lstrip()
    return f"{value:8.3f}", unit


def _uncertainty_text(metric: Metric) -> str:
    return f" (±{100 * metric.uncertainty:.1f}% multiplexed)" if metric.uncertainty else ""


def _event_lines(events: Sequence[EventResult], metrics: Sequence[Metric], prefix: str = "",
                 all_events: Sequence[EventResult] | None = None) -> list[str]:
    """Lines for `events`; metrics go beside their anchor event, or last when their anchor is not among
    `all_events` (the whole slice, when `events` is one row of it)."""
    by_anchor: dict[str, list[Metric]] = {}
    loose: list[Metric] = []
    names = {e.name for e in events}
    everything = names if all_events is None else {e.name for e in all_events}
    for metric in metrics:
        if metric.anchor in everything:
            by_anchor.setdefault(metric.anchor or "", []).append(metric)
        elif all_events is None or events[-1] is all_events[-1]:
            loose.append(metric)
    lines = []
    for event in events:
        head = f"{prefix}{format_count(event):>18} {event.unit:<4} {event.name:<32}"
        attached = by_anchor.get(event.name, [])
        tail = ""
        if event.multiplexed:
            tail += f"  ({event.running_pct:.2f}%)"
        rel = event.relative_error_of_mean
        if rel is not None:
            tail += f"  ( +- {100 * rel:5.2f}% )"
        if not attached:
            lines.append((f"{head} {'':<40}{tail}" if tail else head).rstrip())
            continue
        for i, metric in enumerate(attached):
            number, unit = format_metric(metric)
            text = f"# {number} {unit}{_uncertainty_text(metric)}"
            if i == 0:
                lines.append(f"{head} {text:<40}{tail}".rstrip())
            else:
                lines.append(f"{prefix}{'':>18} {'':<4} {'':<32} {text}".rstrip())
    for metric in loose:
        number, unit = format_metric(metric)
        lines.append(f"{prefix}{'':>18} {'':<4} {'':<32} # {number} {unit} {metric.name}"
                     f"{_uncertainty_text(metric)}".rstrip())
    return lines


def _thread_prefix(s: Slice) -> str:
    return f"{(s.comm or '?')[:16]:>16}-{s.tid:<8} "


def _cpu_prefix(s: Slice) -> str:
    return f"CPU{s.cpu:<5}"


def render_text(result: StatResult) -> str:
    out: list[str] = []
    runs = f" ({result.runs} runs)" if result.runs > 1 else ""
    out += ["", f" Performance counter stats for {result.target}{runs}:", ""]
    if result.per_thread:
        for s in result.per_thread:
            out += _event_lines(s.events, s.metrics, _thread_prefix(s))
    elif result.per_cpu:
        for index in range(len(result.events)):
            for s in result.per_cpu:
                out += _event_lines([s.events[index]], s.metrics, _cpu_prefix(s), s.events)
    else:
        out += _event_lines(result.events, result.metrics)
    out.append("")
    seconds = result.duration_ns / 1e9
    if result.duration_stddev_ns is not None and result.runs > 1:
        sem = result.duration_stddev_ns / math.sqrt(result.runs) / 1e9
        rel = 100 * sem / seconds if seconds else 0.0
        out.append(f"       {seconds:.6f} +- {sem:.6f} seconds time elapsed  ( +- {rel:5.2f}% )")
    else:
        out.append(f"{seconds:18.9f} seconds time elapsed")
    if result.user_ns is not None and result.system_ns is not None and result.runs == 1:
        out += ["", f"{result.user_ns / 1e9:18.9f} seconds user", f"{result.system_ns / 1e9:18.9f} seconds sys"]
    for note in result.notes:
        out += ["", f"Note: {note}"]
    out.append("")
    return "\n".join(out) + "\n"


def interval_header(per_cpu: bool, per_thread: bool) -> str:
    column = "CPU     " if per_cpu else ("            comm-tid " if per_thread else "")
    return f"#{'time':>15} {column}{'counts':>18} unit events\n"


def render_interval_text(s: Slice) -> str:
    stamp = f"{(s.time_ns or 0) / 1e9:16.9f} "
    lines: list[str] = []
    if s.per_cpu:
        for index in range(len(s.events)):
            for c in s.per_cpu:
                lines += _event_lines([c.events[index]], c.metrics, stamp + _cpu_prefix(c), c.events)
    elif s.per_thread:
        for t in s.per_thread:
            lines += _event_lines(t.events, t.metrics, stamp + _thread_prefix(t))
    else:
        lines += _event_lines(s.events, s.metrics, stamp)
    return "\n".join(lines) + "\n"


# --- CSV (-x SEP) -----------------------------------------------------------------------------------------

def _csv_rows(events: Sequence[EventResult], metrics: Sequence[Metric], sep: str, prefix: Sequence[str]) -> list[str]:
    """perf's -x columns: value, unit, event, run time (ns), running %, metric value, metric unit."""
    by_anchor: dict[str, list[Metric]] = {}
    for metric in metrics:
        by_anchor.setdefault(metric.anchor or "", []).append(metric)
    rows = []
    for event in events:
        value = format_count(event, big_num=False)
        attached = by_anchor.get(event.name, [])
        first = attached[0] if attached else None
        number, unit = format_metric(first) if first else ("", "")
        fields = [*prefix, value, event.unit, event.name, str(event.running_ns), f"{event.running_pct:.2f}",
                  number.strip().rstrip("%"), unit]
        rows.append(sep.join(fields))
        for metric in attached[1:]:
            number, unit = format_metric(metric)
            rows.append(sep.join([*prefix, "", "", "", "", "", number.strip().rstrip("%"), unit]))
    return rows


def render_csv(result: StatResult, sep: str) -> str:
    rows: list[str] = []
    if result.per_thread:
        for s in result.per_thread:
            rows += _csv_rows(s.events, s.metrics, sep, [f"{s.comm}-{s.tid}"])
    elif result.per_cpu:
        for index in range(len(result.events)):
            for s in result.per_cpu:
                rows += _csv_rows([s.events[index]], s.metrics, sep, [f"CPU{s.cpu}"])
    else:
        rows += _csv_rows(result.events, result.metrics, sep, [])
    return "\n".join(rows) + "\n"


def render_interval_csv(s: Slice, sep: str) -> str:
    stamp = f"{(s.time_ns or 0) / 1e9:.9f}"
    rows: list[str] = []
    if s.per_cpu:
        for c in s.per_cpu:
            rows += _csv_rows(c.events, c.metrics, sep, [stamp, f"CPU{c.cpu}"])
    elif s.per_thread:
        for t in s.per_thread:
            rows += _csv_rows(t.events, t.metrics, sep, [stamp, f"{t.comm}-{t.tid}"])
    else:
        rows += _csv_rows(s.events, s.metrics, sep, [stamp])
    return "\n".join(rows) + "\n"
