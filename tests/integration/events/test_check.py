"""`hwprof check` against this machine and against binaries built for the purpose."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwprof.perf.syscall import has_cpu_pmu, read_sysctl

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int __attribute__((noinline)) f1(int x){ int a[16]; for(int i=0;i<16;i++) a[i]=x*i; return a[x&15]; }
static int __attribute__((noinline)) f2(int x){ return f1(x)+f1(x+1); }
static long __attribute__((noinline)) f3(long n){ long s=0; for(long i=0;i<n;i++) s+=f2(i); return s; }
int __attribute__((noinline)) g4(int x){ char buf[64]; snprintf(buf,64,"%d",x); return atoi(buf); }
int main(int c, char**v){ long n = c>1? atol(v[1]):1000; printf("%ld %d\n", f3(n), g4(3)); fflush(stdout);
  if (c > 2) sleep(atoi(v[2])); return 0; }
"""


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("fp")
    source = root / "w.c"
    source.write_text(PROGRAM)
    flags = {
        "fp_debug": ["-O2", "-g", "-fno-omit-frame-pointer"],
        "nofp": ["-O2", "-fomit-frame-pointer"],
        "fp_stripped": ["-O2", "-fno-omit-frame-pointer", "-s"],
        "nofp_stripped": ["-O2", "-fomit-frame-pointer", "-s"],
        "fp_cet": ["-O2", "-fno-omit-frame-pointer", "-fcf-protection=full"],  # endbr64 before the prologue
        "nofp_cet": ["-O2", "-fomit-frame-pointer", "-fcf-protection=full"],
    }
    out = {}
    for name, extra in flags.items():
        subprocess.run(["gcc", *extra, "-o", str(root / name), str(source)], check=True)
        out[name] = root / name
    return out


def check_json(hwprof_cmd, *args, runner=None) -> dict:
    argv = [*hwprof_cmd, "check", "--json", *args]
    out = runner(argv) if runner else subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {c["key"]: c for c in json.loads(out.stdout)["checks"]}


def test_system_report_matches_the_machine(hwprof_cmd):
    checks = check_json(hwprof_cmd)
    for key in ("kernel", "cpu", "cpu_pmu", "hardware_events", "software_events", "privileges",
                "perf_event_paranoid", "kptr_restrict", "tracefs", "uprobe", "kprobe", "bpf", "sample_rate", "mlock",
                "sampling"):
        assert key in checks, key
        check = checks[key]
        assert check["status"] in ("ok", "no", "warn", "info")
        if check["status"] in ("no", "warn"):
            assert check["fix"], f"{key} says {check['status']} without saying why"
    assert checks["cpu_pmu"]["status"] == ("ok" if has_cpu_pmu() else "no")
    assert checks["cpu"]["data"]["vendor"] in open("/proc/cpuinfo").read()
    assert checks["perf_event_paranoid"]["data"]["level"] == read_sysctl("perf_event_paranoid")
    assert "task-clock" in checks["software_events"]["data"]["opened"]
    hw = checks["hardware_events"]["data"]
    assert ("cpu-cycles" in hw["opened"]) == has_cpu_pmu()
    assert (checks["kprobe"]["status"] == "no") == (not os.path.exists("/sys/bus/event_source/devices/kprobe")
                                                    and not os.path.exists("/sys/kernel/tracing/kprobe_events"))
    assert checks["bpf"]["data"]["btf"] == os.path.exists("/sys/kernel/btf/vmlinux")


def test_frame_pointers_and_debug_info(hwprof_cmd, builds):
    with_fp = check_json(hwprof_cmd, str(builds["fp_debug"]))
    assert with_fp["frame_pointers"]["status"] == "ok" and with_fp["frame_pointers"]["data"]["share"] >= 0.8
    assert with_fp["debug_info"]["status"] == "ok"
    without = check_json(hwprof_cmd, str(builds["nofp"]))
    assert without["frame_pointers"]["status"] == "no" and without["frame_pointers"]["data"]["share"] < 0.2
    assert without["debug_info"]["status"] == "no" and "-g" in without["debug_info"]["fix"]
    # Stripped of all function symbols: the .eh_frame_hdr table still finds the functions.
    stripped_fp = check_json(hwprof_cmd, str(builds["fp_stripped"]))["frame_pointers"]["data"]
    stripped_nofp = check_json(hwprof_cmd, str(builds["nofp_stripped"]))["frame_pointers"]["data"]
    assert stripped_fp["functions"] > 0 and stripped_fp["share"] >= 0.5
    assert stripped_nofp["share"] < 0.2
    assert check_json(hwprof_cmd, str(builds["fp_cet"]))["frame_pointers"]["status"] == "ok"
    assert check_json(hwprof_cmd, str(builds["nofp_cet"]))["frame_pointers"]["status"] == "no"


def test_process_target(hwprof_cmd, builds):
    proc = subprocess.Popen([str(builds["fp_debug"]), "10", "30"], stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        checks = check_json(hwprof_cmd, str(proc.pid))
        assert checks["target"]["data"] == {"path": str(builds["fp_debug"]), "pid": proc.pid}
        assert checks["frame_pointers"]["status"] == "ok"
        assert any("libc" in lib for lib in checks["libraries"]["data"]["libraries"])
        assert checks["jit"]["status"] == "info"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("target, message", [
    ("999999999", "no such process: 999999999"),
    ("/no/such/binary", "no such file or command: /no/such/binary"),
    ("/etc/hostname", "not an ELF binary"),
])
def test_bad_targets(hwprof_cmd, target, message):
    out = subprocess.run([*hwprof_cmd, "check", target], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwprof check: error: ") and message in lines[0]
    assert not out.stdout


def test_unprivileged_report(hwprof_cmd, run_unprivileged, builds):
    start = time.monotonic()
    checks = check_json(hwprof_cmd, runner=run_unprivileged)
    assert time.monotonic() - start < 30
    assert checks["privileges"]["data"]["euid"] == 65534
    assert checks["privileges"]["status"] == "warn"
    level = read_sysctl("perf_event_paranoid")
    if level is not None and level >= 2:
        assert checks["perf_event_paranoid"]["status"] == "warn"
        assert "perf_event_paranoid=1" in checks["perf_event_paranoid"]["fix"]
        assert checks["software_events"]["data"]["user_space_only"]
    assert checks["sampling"]["status"] == "ok" and checks["sampling"]["data"]["kernel"] is (level is not None
                                                                                         and level < 2)
    if not has_cpu_pmu():
        # The paranoid refusal must not hide the deeper cause.
        assert "no CPU PMU" in checks["hardware_events"]["fix"]
    if read_sysctl("unprivileged_bpf_disabled"):
        assert checks["bpf"]["status"] == "no" and "CAP_BPF" in checks["bpf"]["fix"]


def test_table_output(hwprof_cmd):
    out = subprocess.run([*hwprof_cmd, "check", sys.executable], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "perf_event_paranoid" in out.stdout and "Frame pointers" in out.stdout
    if not has_cpu_pmu():
        assert "-> no hardware counters" in out.stdout
