"""--count against programs whose call counts are known, and against bpftrace on the same probe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from probe_helpers import hwprof_entries, probe_json, run_probe

pytestmark = pytest.mark.usefixtures("root_only")


@pytest.mark.parametrize("mechanism", ["auto", "pmu", "tracefs"])
def test_count_is_exact(programs, tmp_path, mechanism):
    doc = probe_json(tmp_path, "--mechanism", mechanism, "-u", f"{programs['calls']}:work", "--",
                     programs["calls"], "1000")
    (probe,) = doc["probes"]
    assert probe["hits"] == 1000
    assert probe["processes"][0]["hits"] == 1000
    assert doc["exit_status"] == 0
    assert hwprof_entries() == []


def test_threads_and_children_are_followed(programs, tmp_path):
    doc = probe_json(tmp_path, "-u", f"{programs['threads']}:work", "--", programs["threads"])
    (probe,) = doc["probes"]
    assert doc["exit_status"] == 0
    assert probe["hits"] == 100 + 200 + 300 + 50
    assert [p["hits"] for p in probe["processes"]] == [650]
    # the per-thread split: three threads calling work() 100, 200 and 300 times, the main thread 50 times
    assert sorted(t["hits"] for t in probe["threads"]) == [50, 100, 200, 300]
    main = next(t for t in probe["threads"] if t["tid"] == t["pid"])
    assert main["hits"] == 50 and main["comm"] == "threads"


def test_pmu_probes_never_break_forks(programs, tmp_path):
    """An inherited PMU probe makes the target's clone() fail (EFAULT): hwprof must not inherit PMU probes.
    With --mechanism pmu the command's first thread is probed, its threads run normally and are not probed."""
    doc = probe_json(tmp_path, "--mechanism", "pmu", "-u", f"{programs['threads']}:work", "--", programs["threads"])
    assert doc["exit_status"] == 0
    assert doc["probes"][0]["hits"] == 50
    assert any("first thread only" in note for note in doc["notes"])


def test_several_probes_and_return_probe(programs, tmp_path):
    doc = probe_json(tmp_path, "-u", f"{programs['calls']}:work", "-r", f"{programs['calls']}:work",
                     "-u", f"{programs['calls']}:main", "--", programs["calls"], "321")
    hits = {p["probe"].split(":", 1)[0] + ":" + p["probe"].rsplit(":", 1)[1]: p["hits"] for p in doc["probes"]}
    assert hits == {"uprobe:work": 321, "uretprobe:work": 321, "uprobe:main": 1}


def test_cxx_demangled_name(programs, tmp_path):
    doc = probe_json(tmp_path, "-u", f"{programs['cxx']}:shapes::area", "--", programs["cxx"])
    assert doc["probes"][0]["hits"] == 42


def test_library_by_name(programs, tmp_path):
    # write(2) through libc's write(): the program calls it exactly 25 times.
    doc = probe_json(tmp_path, "-u", "c:write", "--", programs["writes"], "25")
    assert doc["probes"][0]["probe"].endswith(":write")
    assert "libc.so" in doc["probes"][0]["probe"]
    assert doc["probes"][0]["hits"] == 25


def test_address_probe(programs, tmp_path):
    nm = subprocess.run(["nm", programs["calls"]], capture_output=True, text=True, check=True).stdout
    addr = next(line.split()[0] for line in nm.splitlines() if line.endswith(" work"))
    doc = probe_json(tmp_path, "-u", f"{programs['calls']}:0x{addr}", "--", programs["calls"], "77")
    assert doc["probes"][0]["hits"] == 77


def test_write_tracepoint_counts_syscalls(programs, tmp_path):
    doc = probe_json(tmp_path, "-t", "syscalls:sys_enter_write", "--", programs["writes"], "137")
    assert doc["probes"][0]["hits"] == 137


@pytest.mark.skipif(not shutil.which("bpftrace"), reason="bpftrace is not installed")
def test_same_count_as_bpftrace(programs, tmp_path):
    binary = programs["calls"]
    peer = subprocess.run(["bpftrace", "-e", f"uprobe:{binary}:work {{ @ = count(); }}", "-c", f"{binary} 4321"],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r"^@: (\d+)$", peer.stdout, re.M)
    assert match, peer.stdout + peer.stderr
    doc = probe_json(tmp_path, "-u", f"{binary}:work", "--", binary, "4321")
    assert doc["probes"][0]["hits"] == int(match.group(1)) == 4321


def test_system_wide_with_filter(programs, tmp_path):
    """System-wide (PMU, sampled breakdown): hits of the filtered command only."""
    import json
    import sys

    out = tmp_path / "sw.json"
    argv = [sys.executable, "-m", "hwprof", "probe", "--json", "-o", str(out), "-d", "4", "--filter", "comm=calls",
            "-u", f"{programs['calls']}:work"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "attached" in line, line
    subprocess.run([programs["calls"], "555"], check=True, capture_output=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = json.loads(out.read_text())
    (probe,) = doc["probes"]
    assert probe["mechanism"] == "pmu"
    assert probe["hits"] == 555
    assert probe["processes"][0]["comm"] == "calls"


def test_text_output_names_probe_and_process(programs):
    proc = run_probe("-u", f"{programs['calls']}:work", "--", programs["calls"], "12")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"uprobe:\S+:work\s+12\s", proc.stdout)
    assert re.search(r"\d+\s+\*\s+calls\s+12", proc.stdout)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_process_renamed_on_another_cpu_keeps_its_last_name(tmp_path):
    """exec names the process on CPU 1, prctl renames it on CPU 0: each COMM record lands in its CPU's ring, and
    the name shown is the later one, whichever ring is read last."""
    cpus = sorted(os.sched_getaffinity(0))
    script = (f"import ctypes, os; os.sched_setaffinity(0, {{{cpus[0]}}}); "
              "ctypes.CDLL(None).prctl(15, b'renamed', 0, 0, 0); os.write(1, b'.')")
    for _ in range(5):
        doc = probe_json(tmp_path, "-t", "syscalls:sys_enter_write", "--", "taskset", "-c", str(cpus[1]),
                         sys.executable, "-c", script)
        (process,) = doc["probes"][0]["processes"]
        assert process["comm"] == "renamed" and process["hits"] == 1
