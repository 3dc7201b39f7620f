"""The counting collector used directly (as hwprof.count does), on this very process."""

from __future__ import annotations

import os

from hwprof.collectors.counting import CountingSession, Target

from hwprof.events import EventGroup, EventSpec, parse_events
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.syscall import has_cpu_pmu


def test_package_scope_events_are_refused_for_tasks_not_faked():
    # A stand-in for power/energy-pkg/: what matters is the package scope (cpus set), which no task can have.
    package = EventSpec("power/energy-pkg/", PerfEventAttr(type=1, config=1), "power", cpus=(0,))
    groups = [*parse_events("task-clock"), EventGroup((package,))]
    with CountingSession(groups, Target(pids=(os.getpid(),))) as session:
        session.open()
        session.enable()
        sum(range(100_000))
        snap = session.read()
    clock, pkg = session.slots
    assert clock.supported and snap.total(clock.index).raw > 0
    assert not pkg.supported and "system-wide (-a)" in pkg.error


def test_unsupported_group_member_leaves_the_rest_counting():
    groups = parse_events("{task-clock,cycles,page-faults}")
    with CountingSession(groups, Target(pids=(os.getpid(),))) as session:
        session.open()
        session.enable()
        bytearray(1 << 20)
        snap = session.read()
    clock, cycles, faults = session.slots
    assert clock.supported and faults.supported
    assert snap.total(clock.index).raw > 0 and snap.total(faults.index).enabled > 0
    if has_cpu_pmu():
        assert cycles.supported and snap.total(cycles.index).raw > 0
    else:
        assert not cycles.supported and "no CPU PMU" in cycles.error and snap.total(cycles.index) is None
