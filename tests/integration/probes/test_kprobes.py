"""kprobes and kretprobes. This machine's kernel has none: these run in the VM tier (tests/vm), which boots
Debian's stock kernel under qemu and runs this file there, so each probe type is shown on a real kernel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from probe_helpers import hwprof_entries, probe_json, run_probe

HAS_KPROBES = os.path.exists("/sys/bus/event_source/devices/kprobe") or \
    os.path.exists("/sys/kernel/tracing/kprobe_events")

pytestmark = [
    pytest.mark.usefixtures("root_only"),
    pytest.mark.skipif(not HAS_KPROBES, reason="this kernel has no kprobes: covered by the VM tier (make vm-test)"),
]

N = 123


@pytest.mark.parametrize("mechanism", ["pmu", "tracefs"])
def test_kprobe_counts_syscalls(programs, tmp_path, mechanism):
    """ksys_write runs once per write(2): the program makes exactly N of them."""
    doc = probe_json(tmp_path, "--mechanism", mechanism, "-k", "ksys_write", "-K", "ksys_write", "--",
                     programs["writes"], str(N))
    hits = {p["kind"]: p["hits"] for p in doc["probes"]}
    assert hits == {"kprobe": N, "kretprobe": N}
    assert hwprof_entries() == []


def test_kprobe_matches_perf_stat_tracepoint(programs, tmp_path):
    perf = subprocess.run(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_write", programs["writes"], str(N)],
                          capture_output=True, text=True, timeout=120)
    value = int(perf.stderr.strip().splitlines()[-1].split(",")[0])
    doc = probe_json(tmp_path, "-k", "ksys_write", "--", programs["writes"], str(N))
    assert doc["probes"][0]["hits"] == value == N


@pytest.mark.skipif(not shutil.which("bpftrace"), reason="bpftrace is not installed")
def test_kprobe_matches_bpftrace(programs, tmp_path):
    peer = subprocess.run(["bpftrace", "-e", "kprobe:ksys_write /pid == cpid/ { @ = count(); }",
                           "-c", f"{programs['writes']} {N}"], capture_output=True, text=True, timeout=300)
    match = re.search(r"^@: (\d+)$", peer.stdout, re.M)
    assert match, peer.stdout + peer.stderr
    doc = probe_json(tmp_path, "-k", "ksys_write", "--", programs["writes"], str(N))
    assert doc["probes"][0]["hits"] == int(match.group(1)) == N


def test_kretprobe_latency(programs, tmp_path):
    doc = probe_json(tmp_path, "--latency", "--unit", "ns", "-k", "ksys_write", "--", programs["writes"], str(N))
    (lat,) = doc["latency"]
    assert lat["calls"] == N, {k: doc[k] for k in ("latency", "probes", "lost", "notes")}
    assert 0 < lat["min_ns"] <= lat["p50_ns"] <= lat["p99_ns"] <= lat["max_ns"]


def test_kprobe_stacks_reach_user_space(programs, tmp_path):
    env = {**os.environ, "HWPROF_HOME": str(tmp_path / "store")}
    out = tmp_path / "folded.txt"
    proc = run_probe("--stacks", "-o", str(out), "-k", "ksys_write", "--", programs["writes"], "7", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == 7
    assert any(";ksys_write" in line and "main" in line for line in lines), lines


def test_kprobe_args(programs, tmp_path):
    """fetch-args on a kprobe (tracefs): ksys_write(fd, buf, count) with count == 1."""
    doc = probe_json(tmp_path, "--args", "-k", "ksys_write count=%dx:u64", "--", programs["writes"], "4")
    assert [h["args"]["count"] for h in doc["hits"]] == [1, 1, 1, 1]
    assert hwprof_entries() == []
