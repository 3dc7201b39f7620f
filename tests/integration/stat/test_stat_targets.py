"""Attaching to running processes and threads, stopping with Ctrl-C, and every kind of bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import jsonschema
import pytest
from stat_helpers import event, hwprof_stat

HWPROF = [sys.executable, "-m", "hwprof", "stat"]


def start_threads(programs, delay_ms=400, spin_ms=300, n=2) -> subprocess.Popen:
    proc = subprocess.Popen([programs["threads"], str(delay_ms), str(spin_ms), str(n)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_attach_counts_threads_born_later_and_the_process_survives(programs, stat_json, schema):
    # One helper thread exists at attach; two more start 800 ms later. All three burn 300 ms of CPU each, so
    # task-clock is ~900 ms only if the late threads (inherited counters) were counted too.
    target = start_threads(programs, delay_ms=800)
    doc, proc = stat_json("-p", str(target.pid), "-e", "task-clock,context-switches")
    out, _ = target.communicate(timeout=30)
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(doc, schema)
    assert target.returncode == 0 and out == "done\n"      # detached cleanly, finished intact
    assert event(doc, "task-clock")["value"] == pytest.approx(900, rel=0.2)
    assert doc["target"] == f"process id '{target.pid}'"


def test_attach_per_thread_rows(programs, stat_json, schema):
    target = start_threads(programs, delay_ms=300, spin_ms=400, n=2)
    doc, proc = stat_json("-p", str(target.pid), "--per-thread", "-e", "task-clock")
    target.communicate(timeout=30)
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(doc, schema)
    rows = doc["per_thread"]
    assert {r["pid"] for r in rows} == {target.pid}
    assert len(rows) >= 4  # main, early helper, and the two late threads found by re-scans
    # Every spinning thread shows its own time; late ones from their discovery (<= 0.1 s after birth) on.
    busy = [r for r in rows if (r["events"][0]["value"] or 0) > 150]
    assert len(busy) >= 3


def test_attach_with_timeout_and_interval(programs, stat_json):
    target = start_threads(programs, delay_ms=100, spin_ms=1500, n=1)
    try:
        doc, proc = stat_json("-p", str(target.pid), "-I", "200", "--timeout", "700", "-e", "task-clock")
        assert proc.returncode == 0, proc.stderr
        assert 3 <= len(doc["intervals"]) <= 4
        assert 0.5e9 < doc["duration_ns"] < 1.0e9
    finally:
        target.communicate(timeout=30)
    assert target.returncode == 0


def test_tid_target(programs, stat_json):
    target = start_threads(programs, delay_ms=600, spin_ms=300, n=1)
    tids = sorted(int(t) for t in __import__("os").listdir(f"/proc/{target.pid}/task"))
    helper = [t for t in tids if t != target.pid][0]
    doc, proc = stat_json("-t", str(helper), "-e", "task-clock")
    target.communicate(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert event(doc, "task-clock")["value"] == pytest.approx(300, rel=0.25)  # only the helper's spin


def test_sigint_on_attach_prints_what_was_counted(programs):
    target = start_threads(programs, delay_ms=50, spin_ms=3000, n=1)
    try:
        hw = subprocess.Popen([*HWPROF, "-p", str(target.pid), "--json", "-e", "task-clock"],
                              stderr=subprocess.PIPE, text=True)
        time.sleep(0.8)
        hw.send_signal(signal.SIGINT)
        _, err = hw.communicate(timeout=20)
    finally:
        target.kill()
        target.communicate()
    assert hw.returncode == 0, err
    doc = json.loads(err)
    assert doc["interrupted"] is True
    assert event(doc, "task-clock")["value"] > 50  # it spun for ~0.5 s after attach (less on a loaded box)


def test_sigint_stops_a_command_and_prints_counts(programs):
    hw = subprocess.Popen([*HWPROF, "-e", "task-clock", "--", programs["spin"], "10000", "0", "wall"],
                          stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
    hw.send_signal(signal.SIGINT)  # only hwprof gets it: it passes it on to the command
    _, err = hw.communicate(timeout=20)
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
    for path, message in ((garbage, "Exec format error"), (plain, "permission denied"), (tmp_path, "directory")):
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
