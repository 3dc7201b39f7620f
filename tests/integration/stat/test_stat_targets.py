"""Attaching to running processes and threads, stopping with Ctrl-C, and every kind of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import pytest
from stat_helpers import child_pids, comm, event, hwprof_stat, perf_fds, wait_until

HWPROF = [sys.executable, "-m", "hwprof", "stat"]


class Threads:
    """The threads.c target: started, then released once hwprof holds its counters (see attach())."""

    def __init__(self, programs, spin_ms: int = 300, late: int = 2) -> None:
        self.proc = subprocess.Popen([programs["threads"], str(spin_ms), str(late)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "ready\n"
        self.pid = self.proc.pid
        self.tids = sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))

    def attach(self, *argv: str, fds: int) -> subprocess.Popen:
        """Start `hwprof stat ARGV`, wait until it holds `fds` perf fds, then let the target's threads run."""
        hw = subprocess.Popen([*HWPROF, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: perf_fds(hw.pid) >= fds or hw.poll() is not None, what="hwprof to attach")
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return hw

    def finish(self) -> str:
        out, _ = self.proc.communicate(timeout=60)
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def finished(hw: subprocess.Popen) -> tuple[dict, str]:
    _, err = hw.communicate(timeout=60)
    assert hw.returncode == 0, err
    return json.loads(err), err


def test_attach_counts_threads_born_later_and_the_process_survives(programs, schema):
    # One helper thread exists at attach; two more start after it. All three burn 300 ms of CPU each, so
    # task-clock is ~900 ms only if the late threads (inherited counters) were counted too.
    target = Threads(programs, spin_ms=300, late=2)
    try:
        hw = target.attach("-p", str(target.pid), "--json", "-e", "task-clock,context-switches", fds=4)
        out = target.finish()
        doc, _ = finished(hw)
    finally:
        target.kill()
    jsonschema.validate(doc, schema)
    assert target.proc.returncode == 0 and out == "done\n"   # detached cleanly, finished intact
    assert event(doc, "task-clock")["value"] == pytest.approx(900, rel=0.15)
    assert doc["target"] == f"process id '{target.pid}'"


def test_attach_per_thread_rows(programs, schema):
    target = Threads(programs, spin_ms=400, late=2)
    try:
        hw = target.attach("-p", str(target.pid), "--per-thread", "--json", "-e", "task-clock", fds=2)
        target.finish()
        doc, _ = finished(hw)
    finally:
        target.kill()
    jsonschema.validate(doc, schema)
    rows = doc["per_thread"]
    assert {r["pid"] for r in rows} == {target.pid}
    assert len(rows) == 4  # main, the early helper, and the two late threads found by re-scans
    early = next(r for r in rows if r["tid"] == target.tids[1])
    assert early["events"][0]["value"] == pytest.approx(400, rel=0.15)   # counted from before it started
    # Late threads are counted from their discovery (a re-scan every 0.1 s): most of their 400 ms.
    late = [r for r in rows if r["tid"] not in target.tids]
    assert all(r["events"][0]["value"] > 100 for r in late)


def test_attach_with_timeout_and_interval(programs):
    target = Threads(programs, spin_ms=5000, late=1)
    try:
        hw = target.attach("-p", str(target.pid), "-I", "200", "--timeout", "700", "--json", "-e", "task-clock",
                           fds=2)
        doc, _ = finished(hw)
        # rows at 200, 400, 600 ms and a partial one at 700 ms (fewer if a starved machine merges ticks)
        assert 2 <= len(doc["intervals"]) <= 4
        assert 0.69e9 < doc["duration_ns"] < 3e9
    finally:
        target.kill()


def test_tid_target(programs):
    target = Threads(programs, spin_ms=300, late=1)
    helper = target.tids[1]
    try:
        hw = target.attach("-t", str(helper), "--json", "-e", "task-clock", fds=1)
        target.finish()
        doc, _ = finished(hw)
    finally:
        target.kill()
    assert event(doc, "task-clock")["value"] == pytest.approx(300, rel=0.15)  # only the helper's 300 ms


def test_sigint_on_attach_prints_what_was_counted(programs):
    target = Threads(programs, spin_ms=20000, late=1)
    try:
        hw = target.attach("-p", str(target.pid), "--json", "-e", "task-clock", fds=2)
        time.sleep(0.5)
        hw.send_signal(signal.SIGINT)
        doc, err = finished(hw)
    finally:
        target.kill()
    assert doc["interrupted"] is True and "Traceback" not in err
    assert event(doc, "task-clock")["value"] > 10   # it spun after attach (how much depends on the load)


def test_sigint_stops_a_command_and_prints_counts(programs):
    hw = subprocess.Popen([*HWPROF, "-e", "task-clock", "--", programs["spin"], "60000", "0", "wall"],
                          stderr=subprocess.PIPE, text=True)
    wait_until(lambda: any(comm(c) == "spin" for c in child_pids(hw.pid)), what="the command to start")
    time.sleep(0.3)
    hw.send_signal(signal.SIGINT)  # only hwprof gets it: it passes it on to the command
    _, err = hw.communicate(timeout=60)
    assert hw.returncode == 128 + signal.SIGINT
    assert "task-clock" in err and "seconds time elapsed" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message, code", [
    (("-e", "cyles", "--", "true"), "unknown event 'cyles' (did you mean: cycles", 1),
    (("-e", "{cycles,instructions", "--", "true"), "unbalanced", 1),
    (("-e", "task-clock:zz", "--", "true"), "error:", 1),
    (("-p", "999999999", "-e", "task-clock"), "no such process: 999999999", 1),
    (("-t", "999999999", "-e", "task-clock"), "no such thread: 999999999", 1),
    (("--", "definitely-not-a-command-xyz"), "command not found: definitely-not-a-command-xyz", 127),
    (("-e", "task-clock"), "nothing to count", 2),
    (("-o", "/nonexistent-dir/x.txt", "--", "true"), "cannot write /nonexistent-dir/x.txt", 1),
])
def test_bad_input_is_one_line(argv, message, code):
    proc = hwprof_stat(*argv)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwprof stat: error: ") and message in lines[0], proc.stderr


def test_exec_failures_exit_126_like_a_shell(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\x01 not a program")
    garbage.chmod(0o755)
    plain = tmp_path / "plain.sh"
    plain.write_text("echo hi\n")
    for path, message in ((garbage, "Exec format error"), (plain, "Permission denied"), (tmp_path, "directory")):
        proc = hwprof_stat("-e", "task-clock", "--", str(path))
        assert proc.returncode == 126
        assert proc.stderr.startswith(f"hwprof stat: error: cannot execute {path}: ")
        assert message in proc.stderr and "\n" not in proc.stderr.strip()


def test_unprivileged_system_wide_gets_paranoid_advice(run_unprivileged, hwprof_cmd):
    paranoid = int(open("/proc/sys/kernel/perf_event_paranoid").read())
    if paranoid < 1:
        pytest.skip(f"perf_event_paranoid is {paranoid}: unprivileged system-wide counting is allowed here")
    proc = run_unprivileged([*hwprof_cmd, "stat", "-a", "-e", "task-clock", "--", "true"])
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "\n" not in line and "perf_event_paranoid is" in line and "run as root" in line


def test_unprivileged_tracepoint_is_refused_clearly(run_unprivileged, hwprof_cmd):
    proc = run_unprivileged([*hwprof_cmd, "stat", "-e", "syscalls:sys_enter_write", "--", "true"])
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("hwprof stat: error: ") and "root" in line


def test_unprivileged_falls_back_to_user_space_like_perf(run_unprivileged, hwprof_cmd):
    proc = run_unprivileged([*hwprof_cmd, "stat", "-e", "task-clock,page-faults", "--", "true"])
    assert proc.returncode == 0, proc.stderr
    assert "task-clock:u" in proc.stderr and "page-faults:u" in proc.stderr
