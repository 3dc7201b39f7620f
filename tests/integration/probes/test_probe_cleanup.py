"""Leave no trace: tracefs probe definitions are gone after normal exit, Ctrl-C, SIGTERM and SIGHUP, and a SIGKILLed
hwprof's leftovers are removed by the next start; the probed process keeps running with correct output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from probe_helpers import hwprof_entries, probe_argv, run_probe

pytestmark = pytest.mark.usefixtures("root_only")

ROUND_SUM = sum(i * 3 + 1 for i in range(100))


@pytest.fixture
def target(programs):
    proc = subprocess.Popen([programs["forever"]], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("round 0 ")
    yield proc
    proc.kill()
    out, _ = proc.communicate()
    # every round the target printed while probes came and went has the right checksum
    for line in out.splitlines():
        assert line.endswith(f" sum {ROUND_SUM}"), line


def _start(programs, target, *extra):
    proc = subprocess.Popen(probe_argv("--mechanism", "tracefs", "-p", str(target.pid), "-u",
                                       f"{programs['forever']}:work", *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "attached" in line, line + proc.stderr.read()
    assert hwprof_entries(), "the tracefs mechanism should have defined a probe while running"
    return proc


def test_normal_exit(programs, target):
    proc = run_probe("--mechanism", "tracefs", "-d", "0.5", "-p", str(target.pid), "-u",
                     f"{programs['forever']}:work")
    assert proc.returncode == 0, proc.stderr
    assert hwprof_entries() == []
    assert target.poll() is None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_interrupted(programs, target, signum):
    proc = _start(programs, target)
    time.sleep(0.5)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    hits = int(out.split("\n")[1].split()[1])
    # Rounds of 100 calls, 20 ms apart; the stop may land inside one when the machine is loaded.
    assert hits >= 100
    assert hwprof_entries(proc.pid) == []
    assert target.poll() is None


def test_hangup_on_a_command_closes_then_removes_and_hangs_up_the_command(programs, tmp_path):
    """A terminal hang-up that reaches hwprof alone (a SIGHUP sent to it): the probes are closed before they are
    removed (a removal of an open probe fails with EBUSY), the report is written, and the command gets the SIGHUP
    a terminal would have sent it, not a SIGKILL."""
    out = tmp_path / "probe.json"
    proc = subprocess.Popen(probe_argv("--mechanism", "tracefs", "--json", "-o", str(out), "-u",
                                       f"{programs['forever']}:work", "--", programs["forever"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not hwprof_entries(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    time.sleep(0.5)  # the command runs some rounds under the probe
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert hwprof_entries(proc.pid) == []
    doc = json.loads(out.read_text())
    assert doc["exit_status"] == 128 + signal.SIGHUP, err
    assert doc["probes"][0]["hits"] >= 100


def test_sigkill_then_next_start_cleans_up(programs, target):
    proc = _start(programs, target)
    proc.kill()
    proc.wait(timeout=30)
    leftovers = hwprof_entries()
    assert leftovers and f"hwprof_{proc.pid}/" in leftovers[0]
    assert target.poll() is None
    # the next hwprof (any probe run using tracefs) removes the dead one's group at its start
    again = run_probe("--mechanism", "tracefs", "-u", f"{programs['calls']}:work", "--", programs["calls"], "3")
    assert again.returncode == 0, again.stderr
    assert hwprof_entries() == []
    assert target.poll() is None


def test_target_output_unchanged_under_probe(programs, target):
    proc = run_probe("-d", "0.5", "-p", str(target.pid), "-u", f"{programs['forever']}:work", "--latency")
    assert proc.returncode == 0, proc.stderr
    assert "calls" in proc.stdout
    assert sys.platform.startswith("linux")
