"""Off-CPU capture: what `hwprof record --off-cpu` adds to a sampling session, and why.

- Switch-out, with the blocked thread's stack and task state: `sched:sched_switch` sampled at every hit with
  CALLCHAIN and RAW. Opened on a task target (inherited, per CPU) it fires only when a target thread is switched
  out, in that thread's context (current is prev), so the callchain is the blocked thread's kernel and user stack,
  and the RAW payload's prev_state says sleeping (S), uninterruptible (D) or preempted (R+).
- Switch-in: PERF_RECORD_SWITCH records (attr.context_switch on the sampling event): a record without the
  SWITCH_OUT bit says "this thread runs again at time t", for task targets and, as SWITCH_CPU_WIDE, system-wide.
- Who woke it (`--wakeups`): `sched:sched_waking`, which fires at the start of try_to_wake_up() in the waker's
  context. (`sched_wakeup` may fire later on the wakee's CPU, from an IPI, in whatever task runs there, so its stack
  would not be the waker's.) Its callchain is the waker's stack, its RAW pid the wakee. On a task target only
  wakeups done by target threads are seen; wakers outside it (interrupts, other processes) need -a.
- Sample times in CLOCK_MONOTONIC (use_clockid): the capture's start and stop go into the file (SAMPLE_TIME) in
  the same clock, so a thread still blocked at the stop is blocked until then.

Unprivileged users get the context-switch records only: tracepoints need root or CAP_PERFMON whatever
kernel.perf_event_paranoid says (their ids live in root's tracefs and their RAW payload is kernel data), while
switch records are allowed for one's own processes. That still gives each thread's off-CPU time and its split
into preempted and blocked (the record's PREEMPT bit), without stacks and without telling S from D.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hwprof.errors import HwprofError
from hwprof.events import parse_events

SWITCH_EVENT = "sched:sched_switch"
WAKING_EVENT = "sched:sched_waking"
CLOCKID = time.CLOCK_MONOTONIC
HIGH_SWITCH_RATE = 10_000  # switch-ins per second above which the summary warns about the cost


@dataclass(frozen=True)
class OffCpuPlan:
    """The extra events of an off-CPU capture, and what the user must be told about it."""

    extra_events: str | None      # tracepoints sampled at every hit, or None (switch records only)
    with_stacks: bool
    notices: tuple[str, ...] = ()


def plan_capture(wakeups: bool, privileged: bool | None = None) -> OffCpuPlan:
    """Tracepoints with stacks for root/CAP_PERFMON; the switch-record fallback, with a notice, for others."""
    if privileged is None:
        from hwprof.preflight import _privileged

        privileged = _privileged()
    wanted = [SWITCH_EVENT] + ([WAKING_EVENT] if wakeups else [])
    if privileged:
        try:
            parse_events(",".join(wanted))
        except HwprofError as exc:
            return _fallback(f"the sched tracepoints cannot be used ({exc})")
        return OffCpuPlan(",".join(wanted), with_stacks=True)
    return _fallback("tracepoints need root or CAP_PERFMON")


def _fallback(why: str) -> OffCpuPlan:
    return OffCpuPlan(None, with_stacks=False, notices=(
        f"off-CPU stacks: {why}; recording context-switch records only: off-CPU time per thread, split into "
        "preempted and blocked, without stacks (run as root for stacks, S/D states and --wakeups)",))


def data_pages() -> int | None:
    """Ring pages per CPU for an off-CPU capture: every switch writes a stack and two switch records (~300 bytes at
    100k switches/s: 30 MB/s), so root gets 4x the sampling default (4 MiB per CPU: over 100 ms of slack for a
    reader that a loaded machine schedules late); others keep the default, which their lock limit bounds."""
    import os

    from hwprof.collectors.sampling import default_data_pages

    return 4 * default_data_pages() if os.geteuid() == 0 else None


def summary(switches: int, duration_ns: int, lost: int) -> list[str]:
    """Lines for record's summary: the switch rate, and a warning where it is high or records were lost."""
    seconds = max(duration_ns, 1) / 1e9
    rate = switches / seconds
    lines = [f"off-CPU: {switches:,} context switches of the target ({rate:,.0f}/s)"]
    if lost:
        lines.append(f"off-CPU: {lost:,} records were LOST at this rate: blocked times of the threads concerned "
                     "are incomplete (raise -m, or record fewer threads)")
    elif rate >= HIGH_SWITCH_RATE:
        lines.append(f"off-CPU: a high switch rate (>= {HIGH_SWITCH_RATE:,}/s) costs the workload time: every "
                     "switch writes a stack")
    return lines
