"""record --off-cpu: what the capture holds, read by perf (the decoding side comes with the pipeline's stages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from record_helpers import need_perf, run_hwprof

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="off-CPU stacks need root (sched tracepoints)")


def facts(stdout: str) -> dict[str, int]:
    """The workloads' "key value" lines."""
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def record(tmp_path: Path, binary: Path, *args: str, extra: tuple[str, ...] = ()) -> tuple[Path, dict[str, int]]:
    data = tmp_path / "off.data"
    proc = run_hwprof("record", "--off-cpu", *extra, "-o", str(data), "--", str(binary), *args, timeout=180)
    return data, facts(proc.stdout)


def test_perf_script_reads_the_capture(workloads, tmp_path):
    perf = need_perf()
    data, truth = record(tmp_path, workloads["offcpu_lock"], "3")
    proc = subprocess.run([perf, "script", "-i", str(data), "--show-switch-events", "-F", "tid,event,trace"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    switches = [line for line in proc.stdout.splitlines() if "sched:sched_switch" in line]
    assert any(f"prev_pid={truth['tid_waiter']} " in line and "prev_state=S" in line for line in switches)
    assert any("PERF_RECORD_SWITCH" in line for line in proc.stdout.splitlines())


def test_an_unprivileged_user_gets_switch_records_and_a_clear_notice(workloads, tmp_path, run_unprivileged):
    os.chmod(tmp_path, 0o777)
    data = tmp_path / "user.data"
    proc = run_unprivileged([sys.executable, "-m", "hwprof", "record", "--off-cpu", "-o", str(data), "--",
                             str(workloads["offcpu_split"]), "4"])
    assert proc.returncode == 0, proc.stderr
    assert "tracepoints need root or CAP_PERFMON" in proc.stderr
    assert "context switches of the target" in proc.stderr
    perf = need_perf()
    script = subprocess.run([perf, "script", "-f", "-i", str(data), "--show-switch-events", "-F", "tid,event"],
                            capture_output=True, text=True, timeout=120)
    truth = facts(proc.stdout)
    lines = script.stdout.splitlines()
    assert any(str(truth["tid_main"]) in line and "PERF_RECORD_SWITCH OUT" in line for line in lines)
    assert not any("sched_switch" in line for line in lines)
