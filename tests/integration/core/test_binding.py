"""The ctypes binding against the running kernel: software events count, errors say why."""

import errno
import os
import sys
import textwrap

import pytest

from hwprof.perf import abi, syscall
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import read_counters

GROUP_FMT = (abi.ReadFormat.TOTAL_TIME_ENABLED | abi.ReadFormat.TOTAL_TIME_RUNNING | abi.ReadFormat.ID
             | abi.ReadFormat.GROUP)


def test_group_of_software_events_counts_this_process():
    leader_attr = PerfEventAttr(type=abi.PerfType.SOFTWARE, config=abi.SwEvent.TASK_CLOCK, disabled=1,
                                read_format=GROUP_FMT)
    leader = syscall.perf_event_open(leader_attr, 0, -1, name="task-clock")
    member = syscall.perf_event_open(
        PerfEventAttr(type=abi.PerfType.SOFTWARE, config=abi.SwEvent.PAGE_FAULTS_MIN, read_format=GROUP_FMT),
        0, -1, leader, name="minor-faults")
    try:
        syscall.enable(leader, group=True)
        pages = bytearray(64 << 20)  # touching 64 MiB faults in thousands of pages
        for i in range(0, len(pages), 4096):
            pages[i] = 1
        syscall.disable(leader, group=True)
        clock, faults = read_counters(leader, GROUP_FMT, 2)
        assert clock.raw > 1_000_000  # at least a millisecond of task time
        assert faults.raw >= (64 << 20) // 4096 * 0.9
        assert faults.id == syscall.event_id(member)
        syscall.reset(leader, group=True)
        clock2, _ = read_counters(leader, GROUP_FMT, 2)
        assert clock2.raw < clock.raw
    finally:
        os.close(member)
        os.close(leader)


@pytest.mark.skipif(syscall.has_cpu_pmu(), reason="this machine has a CPU PMU: hardware events open here")
def test_hardware_event_without_pmu_says_so():
    with pytest.raises(syscall.PerfOpenError) as info:
        syscall.perf_event_open(PerfEventAttr(type=abi.PerfType.HARDWARE, config=abi.HwEvent.CPU_CYCLES),
                                0, -1, name="cycles")
    assert info.value.unsupported
    assert "cycles" in str(info.value) and "no CPU PMU" in str(info.value)


def test_missing_process():
    with pytest.raises(syscall.PerfOpenError, match="no such process: 4194303") as info:
        syscall.perf_event_open(PerfEventAttr(type=abi.PerfType.SOFTWARE, config=0), 4194303, -1)
    assert info.value.errno == errno.ESRCH


def test_invalid_frequency_names_the_field():
    attr = PerfEventAttr(type=abi.PerfType.SOFTWARE, config=0, freq=1, sample_freq=10**9, disabled=1)
    with pytest.raises(syscall.PerfOpenError, match="perf_event_max_sample_rate"):
        syscall.perf_event_open(attr, 0, -1, name="cpu-clock")


def test_raise_fd_limit_reaches_hard_limit():
    import resource

    syscall.raise_fd_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard


def test_unprivileged_system_wide_gets_paranoid_advice(run_unprivileged):
    if (syscall.read_sysctl("perf_event_paranoid") or 0) < 1:
        pytest.skip("perf_event_paranoid < 1 lets anyone count system-wide here")
    code = textwrap.dedent("""
        from hwprof.perf import syscall
        from hwprof.perf.attr import PerfEventAttr
        try:
            syscall.perf_event_open(PerfEventAttr(type=1, config=0), -1, 0, name="cpu-clock")
        except syscall.PerfOpenError as e:
            print(e)
    """)
    out = run_unprivileged([sys.executable, "-c", code])
    assert "perf_event_paranoid" in out.stdout and "system-wide" in out.stdout, out.stdout + out.stderr
