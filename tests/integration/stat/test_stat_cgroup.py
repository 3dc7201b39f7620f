"""`hwprof stat -a -G CGROUP`: counters that count only while the cgroup's tasks run, as `perf stat -a -G`."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest
from stat_helpers import hwprof_stat

SPIN_MS = 800


def _task_clock_ms(stderr: str) -> float:
    values = [float(fields[0]) for fields in (line.split(",") for line in stderr.splitlines())
              if len(fields) > 3 and fields[2] in ("task-clock", "task-clock:u") and fields[0][:1].isdigit()]
    assert len(values) == 1, stderr
    return values[0]


def test_a_cgroups_task_clock_is_the_cpu_time_of_its_processes_and_perf_agrees(programs, cgroup_v2):
    """A process that burns 800 ms of CPU in a child cgroup (the match is recursive) while another one burns CPU
    outside: the cgroup's task-clock is those 800 ms, hwprof's and perf's (counting at the same time) within 10%."""
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make test installs linux-perf)")
    outside = subprocess.Popen([programs["spin"], "600000"])
    ours = subprocess.Popen([sys.executable, "-m", "hwprof", "stat", "-a", "-G", cgroup_v2.name, "-e", "task-clock",
                             "-x", ","], stderr=subprocess.PIPE, text=True)
    theirs = subprocess.Popen([perf, "stat", "-a", "-e", "task-clock", "-G", cgroup_v2.name, "-x", ","],
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # both are counting (hwprof's start-up is a Python import)
        assert ours.poll() is None and theirs.poll() is None
        inside = cgroup_v2.child("inner").start([programs["spin"], str(SPIN_MS)])
        assert inside.wait(timeout=120) == 0
        time.sleep(0.3)
    finally:
        for run in (ours, theirs):
            run.send_signal(signal.SIGINT)
        outside.kill()
        outside.wait()
    our_err = ours.communicate(timeout=60)[1]
    their_err = theirs.communicate(timeout=60)[1]
    assert ours.returncode == 0, our_err
    our_ms, their_ms = _task_clock_ms(our_err), _task_clock_ms(their_err)
    assert abs(our_ms - SPIN_MS) <= 0.1 * SPIN_MS, (our_ms, their_ms)
    assert abs(our_ms - their_ms) <= 0.1 * their_ms, (our_ms, their_ms)


def test_an_unknown_cgroup_is_one_line_and_a_failure():
    result = hwprof_stat("-a", "-G", "hwprof-no-such-cgroup", "-e", "task-clock", "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such cgroup: hwprof-no-such-cgroup" in result.stderr


def test_an_unprivileged_user_gets_the_paranoid_line(cgroup_v2, run_unprivileged, hwprof_cmd):
    from pathlib import Path

    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    if paranoid < 1:
        pytest.skip(f"perf_event_paranoid is {paranoid}: unprivileged per-CPU counting is allowed here")
    result = run_unprivileged([*hwprof_cmd, "stat", "-a", "-G", cgroup_v2.name, "-e", "task-clock", "--", "true"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "perf_event_paranoid" in result.stderr, result.stderr
