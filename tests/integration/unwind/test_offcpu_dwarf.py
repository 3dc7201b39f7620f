"""`hwprof record --off-cpu --call-graph dwarf`: the off-CPU samples (sched:sched_switch, which carry tracepoint RAW
data between the callchain and the user registers) are unwound like on-CPU ones, so a blocked stack in code without
frame pointers reaches its caller and main."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="off-CPU stacks need root (sched tracepoints)")


def hwprof(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "hwprof", *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_off_cpu_stacks_are_unwound_through_code_without_frame_pointers(nofp_workloads, tmp_path):
    data = tmp_path / "off.data"
    hwprof("record", "--off-cpu", "--call-graph", "dwarf", "-o", str(data), "--",
           str(nofp_workloads["offcpu_nofp"]), "10")
    out = hwprof("report", "-i", str(data), "--off-cpu", "--folded").stdout
    rows = [line.rpartition(" ") for line in out.splitlines() if line.strip()]
    blocked = {stack: int(weight) for stack, _, weight in rows if "nanosleep" in stack}
    assert blocked, out
    # Root first: main calls sleep_in_caller, which blocks in libc's nanosleep and then in the kernel.
    through_caller = {s: w for s, w in blocked.items() if "main;sleep_in_caller;" in s}
    assert through_caller, "no off-CPU stack reaches the caller and main:\n" + "\n".join(blocked)
    # Nearly all of the ten 20 ms sleeps (200 ms, in us) are attributed through the caller, not cut at libc.
    assert sum(through_caller.values()) >= 0.9 * sum(blocked.values()), blocked
    assert sum(through_caller.values()) >= 150_000, blocked
