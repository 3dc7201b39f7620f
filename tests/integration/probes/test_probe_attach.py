"""Rule: attached to a process (-p), hwprof waits in poll(2) even after the thread whose event owns a ring exits.

A ring fd whose task exited reports POLLHUP for ever; polled again, it made every poll return at once and hwprof
spun on a CPU until the end (2.0 s of CPU in a 4 s probe where 0.3 s is normal). The target below gives its
short-lived thread the lowest thread id (as wrapped pids do: /proc/sys/kernel/ns_last_pid, root only), so that
thread's events own the rings. perf stat counts hwprof's poll(2) calls.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from probe_helpers import probe_argv

TARGET = r"""
import os, sys, threading, time
open("/proc/sys/kernel/ns_last_pid", "w").write("300")
worker = threading.Thread(target=time.sleep, args=(1.0,))
worker.start()
tids = sorted(int(t) for t in os.listdir(f"/proc/{os.getpid()}/task"))
print(tids[0] < os.getpid(), flush=True)
sys.stdin.readline()
end = time.time() + 30
while time.time() < end:
    os.getppid()
    time.sleep(0.001)
"""


def test_a_thread_exiting_under_an_attached_probe_does_not_make_it_spin(root_only):
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make apt-test installs linux-perf)")
    target = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert target.stdout.readline().strip() == "True", "the short-lived thread did not get the lowest id"
        target.stdin.write("go\n")
        target.stdin.flush()
        done = subprocess.run([perf, "stat", "-x,", "-e", "syscalls:sys_enter_poll", "--",
                               *probe_argv("-t", "syscalls:sys_enter_getppid", "-p", str(target.pid), "-d", "4")],
                              capture_output=True, text=True, timeout=120)
    finally:
        target.kill()
        target.wait()
    assert done.returncode == 0, done.stderr
    polls = int(next(line for line in done.stderr.splitlines() if "sys_enter_poll" in line).split(",")[0])
    assert polls < 1000, f"{polls} poll(2) calls in a 4 s probe: it spins"  # every 100 ms and on data: ~50-200
    hits = next(line for line in done.stdout.splitlines() if line.strip().startswith(str(target.pid)))
    assert int(hits.split()[-1]) > 100
