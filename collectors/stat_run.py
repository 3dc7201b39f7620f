"""The counting run behind `hwprof stat`: open the counters, start or attach the target, wait for its end, a
deadline, an interval tick or a stop signal, and turn the readings into results (totals, breakdowns, intervals).

The CLI (hwprof/commands/_stat_run.py) parses options and renders; this module is the collector, as
collectors/sampling.py is for `hwprof record`.
"""

from __future__ import annotations

import math
import os
import select
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hwprof.collectors.count_results import breakdown, display_factor, readings, totals_slice
from hwprof.collectors.counting import CountingSession, EventSlot, Snapshot, Target

from hwprof.errors import HwprofError
from hwprof.metrics import Metric, derive
from hwprof.stat_output import EventResult, Slice, StatResult
from hwprof.system.launch import HeldCommand
from hwprof.system.procfs import process_exists
from hwprof.system.stopping import StopSignals
from hwprof.units import Nanoseconds

SIGINT_FORWARD_DELAY_S = 0.2   # a terminal's Ctrl-C reaches the command itself; only forward if it did not
POLL_S = 0.1                   # how often -p/-t targets are checked for new or finished threads


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
    inherit: bool = True
    delay_ms: int = 0


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


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None


def run_once(groups: Sequence, opts: StatOptions, emit: Callable[[Slice], None] | None = None) -> RunOutcome:
    target = opts.target
    command = HeldCommand(target.command) if target.command else None
    delayed = bool(opts.delay_ms)
    session = CountingSession(groups, target, per_thread=opts.per_thread, inherit=opts.inherit,
                              enable_on_exec=not delayed)
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
        with StopSignals() as signals:
            # The interval baseline is read before anything counts, so the first row misses nothing.
            baseline = session.read() if opts.interval_ms else None
            t0 = time.monotonic_ns()
            if command:
                if target.system_wide and not delayed:
                    session.enable()
                command.start(signals)
                fd = _pidfd(command.pid)
                if fd is not None:
                    pidfds[command.pid] = fd
            else:
                if not delayed:
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


def _wait_loop(session: CountingSession, opts: StatOptions, command: HeldCommand | None, pidfds: dict[int, int],
               signals: StopSignals, t0: int, baseline: Snapshot | None,
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
    forward_sig = signal.SIGINT
    forwarded: int | None = None
    terminated = False
    end_ns: int | None = None
    watch_tasks = bool(target.pids or target.tids) and not command
    enable_at = t0 + opts.delay_ms * 1_000_000 if opts.delay_ms else None

    def stop_target() -> bool:
        """Time is up: an attached target's counting ends now (True: leave the loop); a command is asked to end
        with SIGTERM and the loop waits for it to exit."""
        nonlocal end_ns, terminated
        if command is None:
            end_ns = now
            return True
        if not terminated:
            command.send(signal.SIGTERM)
            terminated = True
        return False

    while True:
        now = time.monotonic_ns()
        wakes = [w for w in (next_tick, deadline, forward_at, enable_at) if w is not None]
        if watch_tasks:
            wakes.append(now + int(POLL_S * 1e9))
        timeout = max(0.0, (min(wakes) - now) / 1e9) if wakes else None
        try:
            ready, _, _ = select.select([signals.fd, *pidfds.values()], [], [], timeout)
        except InterruptedError:
            ready = []
        now = time.monotonic_ns()
        if signals.fd in ready:
            for sig in signals.drain():
                interrupted = True
                if command is None:
                    end_ns = now
                    break
                # A terminal's Ctrl-C already reached the command; a signal sent to hwprof alone is passed on
                # (after a moment, or at once when it is repeated); one more after that kills the command.
                if forwarded is None and forward_at is None:
                    forward_at = now + int(SIGINT_FORWARD_DELAY_S * 1e9)
                    forward_sig = sig
                elif forwarded is None:
                    command.send(sig)
                    forwarded, forward_at = sig, None
                else:
                    command.send(signal.SIGKILL)
            if command is None and end_ns is not None:
                break
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
        if command is None and target.tids and not any(process_exists(t) for t in target.tids):
            end_ns = now
            break
        if forward_at is not None and now >= forward_at and command is not None:
            command.send(forward_sig)
            forwarded, forward_at = forward_sig, None
        if deadline is not None and now >= deadline:
            if stop_target():
                break
            deadline = None
        if enable_at is not None and now >= enable_at:
            session.enable()
            enable_at = None
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
                if stop_target():
                    break
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




def run_stat_session(groups: Sequence, opts: StatOptions, emit: Callable[[Slice], None] | None = None) -> StatResult:
    """Every run of `-r N` (stopping early when one was interrupted), combined into one result."""
    outcomes: list[RunOutcome] = []
    for _ in range(opts.repeat):
        outcome = run_once(groups, opts, emit)
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
    return StatResult(
        target=opts.target.describe(), events=events, metrics=metrics, duration_ns=int(mean_duration),
        duration_stddev_ns=duration_stddev, command=opts.target.command, exit_code=last.exit_code,
        runs=len(outcomes),
        user_ns=int(last.rusage.ru_utime * 1e9) if last.rusage else None,
        system_ns=int(last.rusage.ru_stime * 1e9) if last.rusage else None,
        per_thread=last.per_thread, per_cpu=last.per_cpu, intervals=tuple(last.intervals),
        interrupted=any(o.interrupted for o in outcomes), notes=tuple(notes),
    )
