"""The engine behind `hwprof stat` (and `hwprof.count`): validate options, run the counting loop, build results.

Kept apart from hwprof/commands/stat.py so the CLI's start-up only builds the parser; this module and the
collectors load when stat actually runs.
"""

from __future__ import annotations

import argparse
import math
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hwprof.collectors.counting import CountingSession, EventSlot, PreparedCommand, Snapshot, Target, online_cpus
from hwprof.collectors.counting import parse_cpu_list as _parse_cpu_list
from hwprof.errors import HwprofError
from hwprof.metrics import Metric, Reading, derive, metric_key, privilege_context
from hwprof.perf.abi import PerfType
from hwprof.perf.readformat import CounterValue
from hwprof.stat_output import (
    EventResult,
    Slice,
    StatResult,
    interval_header,
    render_csv,
    render_interval_csv,
    render_interval_text,
    render_json,
    render_text,
)
from hwprof.units import Nanoseconds

MIN_INTERVAL_MS = 10
SIGINT_FORWARD_DELAY_S = 0.2   # a terminal's Ctrl-C reaches the command itself; only forward if it did not
POLL_S = 0.1                   # how often -p/-t targets are checked for new or finished threads


# --- options --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatOptions:
    target: Target
    event_text: tuple[str, ...]
    interval_ms: int | None = None
    interval_count: int | None = None
    repeat: int = 1
    per_thread: bool = False
    per_cpu: bool = False
    separator: str | None = None
    json: bool = False
    output: str | None = None
    no_scale: bool = False
    timeout_ms: int | None = None
    topdown: bool = False
    save: bool = False
    name: str = ""
    detailed: int = 0


def _parse_ids(text: str, what: str) -> tuple[int, ...]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) <= 0:
            raise HwprofError(f"invalid {what} '{part}' in '{text}' (expected positive numbers, comma separated)",
                              exit_code=2)
        ids.append(int(part))
    return tuple(dict.fromkeys(ids))


def options_from_args(args: argparse.Namespace) -> StatOptions:
    """Every combination perf refuses is refused here, in one line, before anything is opened."""
    command = list(args.workload or [])
    if command and command[0] == "--":
        command = command[1:]
    pids = _parse_ids(args.pid, "PID") if args.pid else ()
    tids = _parse_ids(args.tid, "TID") if args.tid else ()
    cpus = _parse_cpu_list(args.cpu) if args.cpu else (tuple(online_cpus()) if args.all_cpus else None)
    if pids and tids:
        raise HwprofError("give either -p or -t, not both", exit_code=2)
    if (pids or tids) and command:
        raise HwprofError("give either a command or -p/-t, not both", exit_code=2)
    if (pids or tids) and cpus is not None:
        raise HwprofError("-p/-t count tasks, -a/-C count CPUs: give one kind of target", exit_code=2)
    if not (command or pids or tids or cpus is not None):
        raise HwprofError("nothing to count: give a command after --, or -p PID, -t TID, -a or -C CPUS",
                          exit_code=2)
    if args.per_thread and not (pids or tids):
        raise HwprofError("--per-thread needs -p or -t", exit_code=2)
    if args.per_cpu and cpus is None:
        raise HwprofError("-A/--per-cpu needs -a or -C", exit_code=2)
    if args.interval_print is not None and args.interval_print < MIN_INTERVAL_MS:
        raise HwprofError(f"-I must be at least {MIN_INTERVAL_MS} ms", exit_code=2)
    if args.interval_count is not None and (args.interval_print is None or args.interval_count < 1):
        raise HwprofError("--interval-count needs -I and a count of at least 1", exit_code=2)
    if args.repeat < 1:
        raise HwprofError("-r needs a count of at least 1", exit_code=2)
    if args.repeat > 1 and not command:
        raise HwprofError("-r repeats a command: give one after --", exit_code=2)
    if args.repeat > 1 and args.interval_print is not None:
        raise HwprofError("-r and -I cannot be combined", exit_code=2)
    if args.timeout is not None and args.timeout < MIN_INTERVAL_MS:
        raise HwprofError(f"--timeout must be at least {MIN_INTERVAL_MS} ms", exit_code=2)
    separator = "," if args.csv else args.field_separator
    if separator == "":
        raise HwprofError("-x needs a non-empty separator", exit_code=2)
    if separator is not None and args.json:
        raise HwprofError("choose one of -x/--csv and --json", exit_code=2)
    return StatOptions(
        target=Target(command=tuple(command), pids=pids, tids=tids, cpus=cpus),
        event_text=tuple(args.event), interval_ms=args.interval_print, interval_count=args.interval_count,
        repeat=args.repeat, per_thread=args.per_thread, per_cpu=args.per_cpu, separator=separator,
        json=args.json, output=args.output, no_scale=args.no_scale, timeout_ms=args.timeout, topdown=args.topdown,
        save=args.save or bool(args.name), name=args.name, detailed=args.detailed,
    )


# --- events ---------------------------------------------------------------------------------------------

def parse_groups(event_text: Sequence[str], topdown: bool = False, detailed: int = 0) -> list:
    """Groups to count: the user's -e lists, or perf's default set for this machine (-d adds cache events, as
    perf's); plus --topdown's."""
    from hwprof.events import default_stat_events, parse_events

    groups = []
    if event_text:
        for text in event_text:
            groups.extend(parse_events(text))
    else:
        # duration_time is in perf's list for its metric code only; perf 6.1 does not print it, nor do we.
        groups.extend(parse_events(",".join(e for e in default_stat_events(detailed) if e != "duration_time")))
    if topdown:
        groups.append(topdown_group())
    return groups


def topdown_group():
    """Top-down level 1 inputs for this CPU, as one group (they must be scheduled together to add up)."""
    from hwprof.events import EventGroup, EventSpec, parse_events
    from hwprof.metrics import AMD_TOPDOWN
    from hwprof.perf.attr import PerfEventAttr

    if os.path.exists("/sys/bus/event_source/devices/cpu/events/topdown-retiring"):
        return parse_events("{slots,topdown-retiring,topdown-bad-spec,topdown-fe-bound,topdown-be-bound}")[0]
    vendor, family, model = cpu_identity()
    if vendor == "AuthenticAMD" and (family > 25 or family == 25 and model >= 0x10):
        # amdzen4/pipeline.json encodings; raw config: event[7:0], umask[15:8], event[11:8] at bits 32-35.
        configs = (0x76, 0xC1, 0x07AA, 0x1_0000_01A0, 0x1_0000_1EA0)
        events = tuple(
            EventSpec(name, PerfEventAttr(type=PerfType.RAW, config=config), "cpu", is_hardware=True)
            for name, config in zip(AMD_TOPDOWN, configs, strict=True)
        )
        return EventGroup(events, True)
    raise HwprofError(
        f"top-down level 1 needs Intel perf-metrics (sysfs cpu/events/topdown-*) or AMD Zen 4 or newer; "
        f"this CPU is {vendor} family {family} model {model}")


def cpu_identity() -> tuple[str, int, int]:
    vendor, family, model = "unknown", 0, 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "vendor_id":
                    vendor = value
                elif key == "cpu family":
                    family = int(value)
                elif key == "model":
                    model = int(value)
                elif not key:
                    break
    except (OSError, ValueError):
        pass
    return vendor, family, model


# --- turning counter values into results ------------------------------------------------------------------

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


# --- one run ----------------------------------------------------------------------------------------------

@dataclass
class RunOutcome:
    slots: list[EventSlot]
    totals: Slice
    duration_ns: Nanoseconds
    exit_code: int | None
    rusage: os.struct_rusage | None
    per_thread: tuple[Slice, ...] = ()
    per_cpu: tuple[Slice, ...] = ()
    intervals: list[Slice] = field(default_factory=list)
    interrupted: bool = False


class _SignalWatch:
    """SIGINT/SIGTERM wake the wait loop through a pipe instead of raising inside it, so counts survive Ctrl-C."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.received: list[int] = []
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1

    def __enter__(self) -> _SignalWatch:
        self._previous_wakeup = signal.set_wakeup_fd(self.write_fd)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    def drain(self) -> list[int]:
        try:
            while os.read(self.read_fd, 512):
                pass
        except BlockingIOError:
            pass
        got, self.received = self.received, []
        return got

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        os.close(self.read_fd)
        os.close(self.write_fd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None


def run_once(groups: Sequence, opts: StatOptions, emit: Callable[[Slice], None] | None = None) -> RunOutcome:
    target = opts.target
    command = PreparedCommand(target.command) if target.command else None
    session = CountingSession(groups, target, per_thread=opts.per_thread)
    pidfds: dict[int, int] = {}
    try:
        try:
            session.open(command.pid if command and not target.system_wide else None)
        except BaseException:
            if command:
                command.abandon()
            raise
        if not any(s.supported for s in session.slots if not s.tool) and not all(s.tool for s in session.slots):
            if command:
                command.abandon()
            reasons = {s.error for s in session.slots if s.error}
            raise HwprofError(next(iter(reasons)) if len(reasons) == 1 else "none of the events can be counted here")
        with _SignalWatch() as signals:
            # The interval baseline is read before anything counts, so the first row misses nothing.
            baseline = session.read() if opts.interval_ms else None
            t0 = time.monotonic_ns()
            if command:
                if target.system_wide:
                    session.enable()
                command.start()
                fd = _pidfd(command.pid)
                if fd is not None:
                    pidfds[command.pid] = fd
            else:
                session.enable()
                for pid in target.pids:
                    fd = _pidfd(pid)
                    if fd is not None:
                        pidfds[pid] = fd
            outcome = _wait_loop(session, opts, command, pidfds, signals, t0, baseline, emit)
        return outcome
    finally:
        for fd in pidfds.values():
            os.close(fd)
        session.close()


def _wait_loop(session: CountingSession, opts: StatOptions, command: PreparedCommand | None, pidfds: dict[int, int],
               signals: _SignalWatch, t0: int, baseline: Snapshot | None,
               emit: Callable[[Slice], None] | None) -> RunOutcome:
    target = opts.target
    interval_ns = opts.interval_ms * 1_000_000 if opts.interval_ms else None
    deadline = t0 + opts.timeout_ms * 1_000_000 if opts.timeout_ms else None
    next_tick = t0 + interval_ns if interval_ns else None
    previous = baseline
    previous_time = t0
    intervals: list[Slice] = []
    interrupted = False
    forward_at: int | None = None
    terminated = False
    end_ns: int | None = None
    watch_tasks = bool(target.pids or target.tids) and not command
    while True:
        now = time.monotonic_ns()
        wakes = [w for w in (next_tick, deadline, forward_at) if w is not None]
        if watch_tasks:
            wakes.append(now + int(POLL_S * 1e9))
        timeout = max(0.0, (min(wakes) - now) / 1e9) if wakes else None
        try:
            ready, _, _ = select.select([signals.read_fd, *pidfds.values()], [], [], timeout)
        except InterruptedError:
            ready = []
        now = time.monotonic_ns()
        if signals.read_fd in ready or signals.received:
            got = signals.drain()
            if got:
                interrupted = True
                if command is None:
                    end_ns = now
                    break
                # A terminal's Ctrl-C already reached the command; a signal sent to hwprof alone is passed on.
                if forward_at is None:
                    forward_at = now + int(SIGINT_FORWARD_DELAY_S * 1e9)
                else:
                    _signal_command(command, signal.SIGINT)
        for pid, fd in list(pidfds.items()):
            if fd in ready:
                os.close(fd)
                del pidfds[pid]
        if command is not None and command.poll():
            end_ns = now
            break
        if command is None and target.pids and not pidfds:
            end_ns = now
            break
        if command is None and target.tids and not any(os.path.exists(f"/proc/{t}") for t in target.tids):
            end_ns = now
            break
        if forward_at is not None and now >= forward_at and command is not None:
            _signal_command(command, signal.SIGINT)
            forward_at = None
        if deadline is not None and now >= deadline:
            if command is None:
                end_ns = now
                break
            if not terminated:
                _signal_command(command, signal.SIGTERM)
                terminated = True
            deadline = None
        if watch_tasks:
            session.rescan()
        if next_tick is not None and now >= next_tick and previous is not None:
            snap = session.read()
            intervals.append(_interval_slice(session, snap, previous, previous_time, t0, opts))
            if emit:
                emit(intervals[-1])
            previous, previous_time = snap, snap.time_ns
            while next_tick <= now:
                next_tick += interval_ns or 0
            if opts.interval_count and len(intervals) >= opts.interval_count:
                if command is None:
                    end_ns = now
                    break
                if not terminated:
                    _signal_command(command, signal.SIGTERM)
                    terminated = True
                next_tick = None
    if command is not None:
        command.wait()
    session.disable()
    final = session.read()
    end = end_ns or time.monotonic_ns()
    duration = end - t0
    rows_done = bool(opts.interval_count and len(intervals) >= opts.interval_count)
    if interval_ns and previous is not None and not rows_done and final.time_ns > previous_time:
        # The last, partial interval is printed too (as perf does), so the rows add up to the totals.
        intervals.append(_interval_slice(session, final, previous, previous_time, t0, opts))
        if emit:
            emit(intervals[-1])
    rusage = command.rusage if command else None
    totals = totals_slice(session, final, duration, opts.no_scale, rusage)
    per_thread, per_cpu = breakdown(session, final, duration, opts.no_scale, opts.per_cpu, opts.per_thread)
    return RunOutcome(list(session.slots), totals, duration, command.exit_code if command else None, rusage,
                      per_thread, per_cpu, intervals, interrupted)


def _signal_command(command: PreparedCommand, sig: int) -> None:
    try:
        os.kill(command.pid, sig)
    except ProcessLookupError:
        pass


def _interval_slice(session: CountingSession, snap: Snapshot, previous: Snapshot, previous_time: int, t0: int,
                    opts: StatOptions) -> Slice:
    delta = snap.minus(previous)
    wall = snap.time_ns - previous_time
    totals = totals_slice(session, delta, wall, opts.no_scale)
    per_thread, per_cpu = breakdown(session, delta, wall, opts.no_scale, opts.per_cpu, opts.per_thread)
    return Slice(totals.events, totals.metrics, time_ns=snap.time_ns - t0, per_cpu=per_cpu, per_thread=per_thread)


# --- repeats ----------------------------------------------------------------------------------------------

def combine_runs(outcomes: Sequence[RunOutcome]) -> tuple[tuple[EventResult, ...], tuple[Metric, ...]]:
    """Means over runs, the sample standard deviation beside each; metrics from the means."""
    if len(outcomes) == 1:
        return outcomes[0].totals.events, outcomes[0].totals.metrics
    slots = outcomes[0].slots
    n = len(outcomes)
    events = []
    inputs: dict[int, tuple[float, int, int]] = {}
    for i, slot in enumerate(slots):
        per_run = [o.totals.events[i] for o in outcomes]
        first = per_run[0]
        if not first.supported or any(e.value is None for e in per_run):
            events.append(first)
            continue
        values = [float(e.value or 0.0) for e in per_run]
        mean = sum(values) / n
        stddev = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        enabled = sum(e.enabled_ns for e in per_run)
        running = sum(e.running_ns for e in per_run)
        events.append(EventResult(first.name, mean, first.unit, enabled, running, True,
                                  round(sum(e.raw for e in per_run) / n), stddev=stddev, runs=n))
        if not slot.tool:
            inputs[slot.index] = (mean / display_factor(slot), enabled, running)
    mean_duration = sum(o.duration_ns for o in outcomes) / n
    metrics = derive(readings(slots, inputs), int(mean_duration))
    return tuple(events), tuple(metrics)


# --- the command ------------------------------------------------------------------------------------------

def save_run(result: StatResult, name: str = "") -> str:
    """Keep the run's JSON document in the profile store as a 'stat' entry; return its id."""
    from hwprof.store import ProfileStore, StoreEntry

    store = ProfileStore()
    try:
        entry_id, path = store.reserve("stat", "json")
        path.write_text(render_json(result))
    except OSError as exc:
        raise HwprofError(f"cannot write to the profile store at {store.root}: {exc.strerror}") from None
    store.add(StoreEntry(
        id=entry_id, kind="stat", file=path.name, created=time.time(), name=name, target=result.target,
        command=list(result.command), events=[e.name for e in result.events], duration_ns=result.duration_ns,
        extra={"exit_code": result.exit_code, "runs": result.runs}))
    return entry_id


def run_stat(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    groups = parse_groups(opts.event_text, opts.topdown, opts.detailed)
    sink = _open_sink(opts.output)
    try:
        return _run(opts, groups, sink)
    finally:
        if sink is not sys.stderr:
            sink.close()


def _open_sink(path: str | None):
    if path is None:
        return sys.stderr
    try:
        return open(path, "w")
    except OSError as exc:
        raise HwprofError(f"cannot write {path}: {exc.strerror}") from None


def _run(opts: StatOptions, groups: Sequence, sink) -> int:
    live = opts.interval_ms is not None and not opts.json
    header_printed = False

    def emit(s: Slice) -> None:
        nonlocal header_printed
        if opts.separator is not None:
            sink.write(render_interval_csv(s, opts.separator))
        else:
            if not header_printed:
                sink.write(interval_header(opts.per_cpu, opts.per_thread))
                header_printed = True
            sink.write(render_interval_text(s))
        sink.flush()

    outcomes: list[RunOutcome] = []
    for _ in range(opts.repeat):
        outcome = run_once(groups, opts, emit if live else None)
        outcomes.append(outcome)
        if outcome.interrupted:
            break
    events, metrics = combine_runs(outcomes)
    last = outcomes[-1]
    durations = [o.duration_ns for o in outcomes]
    mean_duration = sum(durations) / len(durations)
    duration_stddev = (math.sqrt(sum((d - mean_duration) ** 2 for d in durations) / (len(durations) - 1))
                       if len(durations) > 1 else None)
    notes = []
    unsupported = [e.name for e in events if not e.supported]
    if unsupported and any(e.error and "no CPU PMU" in e.error for e in events):
        notes.append("this machine has no CPU PMU (typical of VMs), so hardware events are not supported; "
                     "the software events were counted")
    result = StatResult(
        target=opts.target.describe(), events=events, metrics=metrics, duration_ns=int(mean_duration),
        duration_stddev_ns=duration_stddev, command=opts.target.command, exit_code=last.exit_code,
        runs=len(outcomes),
        user_ns=int(last.rusage.ru_utime * 1e9) if last.rusage else None,
        system_ns=int(last.rusage.ru_stime * 1e9) if last.rusage else None,
        per_thread=last.per_thread, per_cpu=last.per_cpu, intervals=tuple(last.intervals),
        interrupted=any(o.interrupted for o in outcomes), notes=tuple(notes),
    )
    if opts.json:
        sink.write(render_json(result))
    elif opts.separator is not None:
        if not live:
            sink.write(render_csv(result, opts.separator))
    elif not live:
        sink.write(render_text(result))
    sink.flush()
    if opts.save:
        entry_id = save_run(result, opts.name)
        print(f"[ hwprof stat: saved {entry_id} ]", file=sys.stderr)
    if last.exit_code is not None:
        return last.exit_code
    return 0
