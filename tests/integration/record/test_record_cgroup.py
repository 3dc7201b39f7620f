"""`hwprof record -a -G CGROUP`: the kernel samples only while the cgroup's tasks run, as `perf record -a -G`."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from record_helpers import need_perf, run_hwprof

from hwprof.pipeline import decode_file

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="cgroups are Linux's")


def _wait_for_file(path: Path, run: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert run.poll() is None, run.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _perf_pids(perf: str, data: Path) -> Counter:
    out = subprocess.run([perf, "script", "-i", str(data), "-F", "pid"], capture_output=True, text=True,
                         check=True).stdout
    return Counter(int(line) for line in out.split())


def _callers_share(report: dict) -> float:
    rows = {row["keys"][-1]: row["total_percent"] for row in report["rows"]}
    return 100.0 * rows["caller_a"] / (rows["caller_a"] + rows["caller_b"])


def _perf_callers_share(perf: str, data: Path) -> float:
    out = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--children", "--sort", "symbol", "-g",
                          "none"], capture_output=True, text=True, check=True).stdout
    share = {}
    for line in out.splitlines():
        match = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[\.\]\s+(caller_[ab])\b", line)
        if match:
            share[match[2]] = float(match[1])
    return 100.0 * share["caller_a"] / (share["caller_a"] + share["caller_b"])


def test_only_the_cgroups_process_is_sampled_symbolized_and_perf_agrees(workloads, cgroup_v2, tmp_path):
    """The same program runs inside and outside the cgroup. The inside one starts outside after the capture began
    and is moved in: its code was mapped outside, so only the side-band of every task (perf's tracking event)
    names its functions. hwprof and perf, recording the same cgroup at the same time, see that one process
    only, about as many samples, and its 3:1 split of callers."""
    perf = need_perf()
    ours, theirs = tmp_path / "ours.data", tmp_path / "perf.data"
    outside = subprocess.Popen([str(workloads["split"]), "1000000"], stdout=subprocess.DEVNULL)
    hwprof_run = subprocess.Popen([sys.executable, "-m", "hwprof", "record", "-q", "-a", "-G", cgroup_v2.name,
                                   "-e", "cpu-clock", "-F", "499", "-g", "-o", str(ours)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    perf_run = subprocess.Popen([perf, "record", "-q", "-e", "cpu-clock", "-F", "499", "-a", "-G", cgroup_v2.name,
                                 "-g", "-o", str(theirs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_file(ours, hwprof_run)
        _wait_for_file(theirs, perf_run)
        time.sleep(1.5)  # the /proc snapshot and the enable come after the file is created
        inside = subprocess.Popen([str(workloads["split"]), "3000"], stdout=subprocess.DEVNULL)
        time.sleep(0.1)
        cgroup_v2.move(inside.pid)
        assert inside.wait(timeout=300) == 0
        time.sleep(0.3)
    finally:
        for run in (hwprof_run, perf_run):
            run.send_signal(signal.SIGINT)
        outside.kill()
        outside.wait()
    _, err = hwprof_run.communicate(timeout=120)
    assert hwprof_run.returncode == 0, err
    _, perf_err = perf_run.communicate(timeout=120)
    assert perf_run.returncode in (0, -signal.SIGINT, 130), perf_err

    from hwprof.symbolize import Symbolizer

    profile = decode_file(ours, Symbolizer())
    our_pids = Counter(profile.sample_pid.tolist())
    perf_pids = _perf_pids(perf, theirs)
    assert set(our_pids) == {inside.pid}, our_pids
    assert set(perf_pids) == {inside.pid}, perf_pids
    assert 0.8 <= our_pids[inside.pid] / perf_pids[inside.pid] <= 1.25, (our_pids, perf_pids)
    assert our_pids[inside.pid] >= 400, our_pids  # the 3:1 share below then has a binomial sd near 2 points

    import json

    report = json.loads(run_hwprof("report", "--json", "--limit", "0", "-i", str(ours)).stdout)
    share = _callers_share(report)
    assert abs(share - 75.0) <= 7.0, share
    assert abs(share - _perf_callers_share(perf, theirs)) <= 7.0, share


def test_a_process_in_a_child_cgroup_is_sampled(workloads, cgroup_v2, tmp_path):
    """The kernel's cgroup match is recursive (perf_cgroup_match: cgroup_is_descendant)."""
    child = cgroup_v2.child("inner")
    data = tmp_path / "child.data"
    busy = child.start([str(workloads["split"]), "1000000"], stdout=subprocess.DEVNULL)
    try:
        run_hwprof("record", "-q", "-a", "-G", cgroup_v2.name, "-e", "cpu-clock", "-F", "499", "-d", "1.5",
                   "-o", str(data))
    finally:
        busy.kill()
        busy.wait()
    pids = Counter(decode_file(data).sample_pid.tolist())
    assert set(pids) == {busy.pid} and pids[busy.pid] >= 20, pids


def test_an_unknown_cgroup_is_one_line_and_a_failure(tmp_path):
    result = run_hwprof("record", "-a", "-G", "hwprof-no-such-cgroup", "-d", "0.2", "-o", str(tmp_path / "x.data"),
                        check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert "no such cgroup: hwprof-no-such-cgroup" in result.stderr
    assert not (tmp_path / "x.data").exists()


def test_an_unprivileged_user_gets_the_paranoid_line(cgroup_v2, run_unprivileged, hwprof_cmd):
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    if paranoid < 1:
        pytest.skip(f"perf_event_paranoid is {paranoid}: unprivileged per-CPU sampling is allowed here")
    result = run_unprivileged([*hwprof_cmd, "record", "-a", "-G", cgroup_v2.name, "-e", "cpu-clock", "-d", "0.3",
                               "-o", "/tmp/hwprof-unprivileged-cgroup.data"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "perf_event_paranoid" in errors[0] and "process" not in errors[0], result.stderr
