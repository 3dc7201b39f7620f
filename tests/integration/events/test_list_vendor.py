"""`hwprof list` for the named events and metrics of a CPU model, and refreshing the Intel data."""

from __future__ import annotations

import json
import os
import subprocess

from hwprof.perf.syscall import has_cpu_pmu


def run(hwprof_cmd, *args, env=None):
    full = {**os.environ, **(env or {})}
    return subprocess.run([*hwprof_cmd, "list", *args], capture_output=True, text=True, env=full, timeout=120)


def test_search_words_select_topic_and_text(hwprof_cmd):
    out = run(hwprof_cmd, "--json", "cache", "miss", env={"PERF_CPUID": "GenuineIntel-6-8F-8"})
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)
    vendor = {e["name"]: e for e in entries if e["kind"] == "vendor"}
    assert "L2_RQSTS.MISS" in vendor and vendor["L2_RQSTS.MISS"]["topic"] == "Cache"
    assert all("miss" in (e["name"] + e["description"]).lower() for e in entries)
    assert {e["kind"] for e in entries} == {"cache", "vendor"}
    # Another model's encodings are listed but never opened on this CPU
    assert all(e["openable"] is False and "PERF_CPUID=GenuineIntel-6-8F-8 (SPR) is not this CPU" in e["reason"]
               for e in vendor.values())


def test_this_machines_events_are_opened_to_mark_them(hwprof_cmd):
    out = run(hwprof_cmd, "--json", "vendor", env={"PERF_CPUID": ""})
    entries = json.loads(out.stdout)
    if not entries:
        return  # a CPU model no shipped source describes
    if not has_cpu_pmu():
        assert all(e["openable"] is False and "no CPU PMU" in e["reason"] for e in entries)
    table = run(hwprof_cmd, "vendor", env={"PERF_CPUID": ""})
    assert "events [" in table.stdout and "why not:" in table.stdout or has_cpu_pmu()


def test_metrics_and_groups(hwprof_cmd):
    out = run(hwprof_cmd, "metric", "TopdownL1", env={"PERF_CPUID": "GenuineIntel-6-8F-8"})
    assert out.returncode == 0, out.stderr
    for name in ("Frontend_Bound", "Backend_Bound", "Bad_Speculation", "Retiring"):
        assert name in out.stdout
    assert "[level 1]" in out.stdout
    amd = run(hwprof_cmd, "--json", "metric", env={"PERF_CPUID": "AuthenticAMD-25-11-1"})
    names = {e["name"] for e in json.loads(amd.stdout)}
    assert {"frontend_bound", "backend_bound", "retiring", "bad_speculation"} <= names


def test_refresh_from_a_perfmon_checkout(hwprof_cmd, tmp_path):
    """A minimal perfmon tree (mapfile + one model); after the refresh that model's event resolves."""
    src = tmp_path / "perfmon"
    (src / "TST" / "events").mkdir(parents=True)
    (src / "LICENSE").write_text("BSD-3-Clause test licence\n")
    (src / "mapfile.csv").write_text("Family-model,Version,Filename,EventType,Core Type,Native Model ID,"
                                     "Core Role Name\nGenuineIntel-6-FE,V1,/TST/events/test_core.json,core,,,\n")
    (src / "TST" / "events" / "test_core.json").write_text(json.dumps({"Header": {"Version": "1"}, "Events": [
        {"EventCode": "0x12", "UMask": "0x34", "EventName": "TEST_EVENT.ONE", "BriefDescription": "a test event",
         "Counter": "0,1", "SampleAfterValue": "1000", "CounterMask": "2"}]}))
    data = tmp_path / "xdg"
    out = run(hwprof_cmd, "--refresh-perfmon", str(src), env={"XDG_DATA_HOME": str(data)})
    assert out.returncode == 0, out.stderr
    assert (data / "hwprof" / "perfmon" / "LICENSE").read_text() == "BSD-3-Clause test licence\n"
    listed = run(hwprof_cmd, "--json", "vendor", env={"XDG_DATA_HOME": str(data), "PERF_CPUID": "GenuineIntel-6-FE-1"})
    entries = json.loads(listed.stdout)
    assert [(e["name"], e["encoding"]) for e in entries] == [("TEST_EVENT.ONE", "event=0x12,umask=0x34,cmask=0x2")]
    bad = run(hwprof_cmd, "--refresh-perfmon", str(tmp_path / "nothing"), env={"XDG_DATA_HOME": str(data)})
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "not a perfmon checkout" in bad.stderr


def test_bad_perf_cpuid_is_one_line(hwprof_cmd):
    out = run(hwprof_cmd, "vendor", env={"PERF_CPUID": "garbage"})
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "VENDOR-FAMILY-MODEL" in out.stderr


def test_arm64_model_by_midr(hwprof_cmd):
    out = run(hwprof_cmd, "--json", "vendor", "cache", env={"PERF_CPUID": "0x00000000411fd401"})
    entries = {e["name"]: e for e in json.loads(out.stdout)}
    assert entries["L1D_CACHE_REFILL"]["encoding"] == "event=0x3" and entries["L1D_CACHE_REFILL"]["pmu"] == \
        "armv8_pmuv3_0"
