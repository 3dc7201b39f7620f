"""`hwprof record --call-graph dwarf` + `hwprof report` end to end on code built without frame pointers, with perf
as the oracle: perf must read and unwind hwprof's captures, and hwprof must unwind perf's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from hwprof.callgraph import DEFAULT_STACK_DUMP


def hwprof(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "hwprof", *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    return proc


def perf_bin() -> str:
    from shutil import which

    perf = which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make apt-test installs linux-perf)")
    return perf


def folded(path) -> Counter:
    out = hwprof("report", "-i", str(path), "--folded").stdout
    stacks: Counter = Counter()
    for line in out.splitlines():
        stack, _, count = line.rpartition(" ")
        stacks[stack] += int(count)
    return stacks


def split(stacks: Counter) -> tuple[float, int]:
    a = sum(c for s, c in stacks.items() if "caller_a;work" in s)
    b = sum(c for s, c in stacks.items() if "caller_b;work" in s)
    return 100.0 * a / max(a + b, 1), a + b


def perf_script_stacks(perf: str, path) -> list[list[str]]:
    """Each sample's frames (leaf first) as perf script prints them after unwinding."""
    out = subprocess.run([perf, "script", "-i", str(path), "-F", "ip,sym"], capture_output=True, text=True,
                         check=True).stdout
    samples, current = [], []
    for line in out.splitlines():
        if not line.strip():
            if current:
                samples.append(current)
            current = []
            continue
        parts = line.split(None, 1)
        current.append(parts[1].replace(" (inlined)", "") if len(parts) > 1 else "[unknown]")
    if current:
        samples.append(current)
    return samples


def test_three_to_one_split_without_frame_pointers(nofp_workloads, tmp_path):
    data = tmp_path / "dwarf.data"
    hwprof("record", "-q", "--call-graph", "dwarf", "-F", "2000", "-o", str(data), "--",
           str(nofp_workloads["split31"]), "60")
    stacks = folded(data)
    share, n = split(stacks)
    assert n > 1000
    assert abs(share - 75.0) <= 3.0, (share, stacks.most_common(5))
    report = json.loads(hwprof("report", "-i", str(data), "--json", "--limit", "0").stdout)
    main = sum(c for s, c in stacks.items() if ";main;" in f";{s};")
    assert main >= 0.97 * report["samples"]
    raw = json.loads(hwprof("report", "-i", str(data), "--raw", "--json", "--limit", "0").stdout)
    assert raw["quality"]["complete"] >= 0.97 * raw["samples"]  # --raw names nothing but still unwinds


def test_frame_pointer_mode_cannot_tell_the_callers_apart(nofp_workloads, tmp_path):
    """The reason dwarf exists: the same binary sampled with -g loses the callers."""
    data = tmp_path / "fp.data"
    hwprof("record", "-q", "--call-graph", "fp", "-F", "2000", "-o", str(data), "--",
           str(nofp_workloads["split31"]), "20")
    _share, n = split(folded(data))
    total = sum(folded(data).values())
    assert n < 0.5 * total


def test_perf_unwinds_hwprof_captures_to_the_same_depth(nofp_workloads, tmp_path):
    perf = perf_bin()
    data = tmp_path / "dwarf.data"
    hwprof("record", "-q", "--call-graph", "dwarf", "-F", "2000", "-o", str(data), "--",
           str(nofp_workloads["split31"]), "40")
    theirs = perf_script_stacks(perf, data)
    assert len(theirs) > 500
    perf_split = Counter(s[1] for s in theirs if len(s) > 2 and s[0] == "work")
    perf_share = 100.0 * perf_split["caller_a"] / max(perf_split["caller_a"] + perf_split["caller_b"], 1)
    our_share, _ = split(folded(data))
    assert abs(perf_share - our_share) <= 1.0
    perf_main = sum("main" in s for s in theirs) / len(theirs)
    ours = folded(data)
    our_main = sum(c for s, c in ours.items() if ";main;" in f";{s};") / sum(ours.values())
    assert perf_main > 0.95 and our_main >= perf_main - 0.01


def test_hwprof_unwinds_perf_record_dwarf_files_keeping_every_sample(nofp_workloads, tmp_path):
    perf = perf_bin()
    data = tmp_path / "perf-dwarf.data"
    subprocess.run([perf, "record", "-q", "--call-graph", "dwarf", "-e", "cpu-clock", "-F", "2000", "-o", str(data),
                    "--", str(nofp_workloads["split31"]), "40"], check=True, capture_output=True)
    stacks = folded(data)
    share, n = split(stacks)
    report = json.loads(hwprof("report", "-i", str(data), "--json", "--limit", "0").stdout)
    assert abs(share - 75.0) <= 3.0
    assert n >= 0.95 * report["samples"]  # every sample kept, not "without a stack"
    assert report["quality"]["complete"] >= 0.95 * report["samples"]


def test_a_small_stack_copy_is_reported_as_too_small(nofp_workloads, tmp_path):
    data = tmp_path / "small.data"
    hwprof("record", "-q", "--call-graph", "dwarf,16", "-F", "1000", "-o", str(data), "--",
           str(nofp_workloads["split31"]), "10")
    report = json.loads(hwprof("report", "-i", str(data), "--json", "--limit", "0").stdout)
    notes = " ".join(report["notes"])
    assert "stack copy too small" in notes and "--call-graph dwarf," in notes
    assert report["quality"]["truncated"] > 0.5 * report["samples"]
    assert DEFAULT_STACK_DUMP == 8192


def test_threads_signal_frames_and_the_vdso(nofp_workloads, tmp_path):
    """A thread's stack ends at clone3, a signal handler's runs through __restore_rt back into the interrupted
    loop and on to main, and clock_gettime's vdso frame unwinds with the vdso image's own CFI."""
    data = tmp_path / "frames.data"
    hwprof("record", "-q", "--call-graph", "dwarf", "-F", "4000", "-o", str(data), "--",
           str(nofp_workloads["frames"]))
    stacks = folded(data)
    total = sum(stacks.values())

    def share(pattern: str) -> int:
        return sum(c for s, c in stacks.items() if pattern in s)

    thread = sum(c for s, c in stacks.items() if s.split(";")[0] in ("clone3", "__clone3")
                 and "start_thread;thread_main;spin" in s)
    assert thread > 0.1 * total
    assert share("main;interrupted_loop;spin;__restore_rt;spin") > 0
    vdso = sum(c for s, c in stacks.items() if "main;ask_the_clock;" in s and s.endswith("__vdso_clock_gettime"))
    assert vdso > 0.05 * total
    report = json.loads(hwprof("report", "-i", str(data), "--json", "--limit", "0").stdout)
    assert report["quality"]["complete"] >= 0.98 * report["samples"]
