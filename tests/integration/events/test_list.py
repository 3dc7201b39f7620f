"""`hwprof list` against this machine: what it marks openable must really open, and what it refuses must not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from hwprof.perf.syscall import has_cpu_pmu, read_sysctl


def run_list(hwprof_cmd, *args, runner=None):
    argv = [*hwprof_cmd, "list", *args]
    if runner is not None:
        return runner(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_software_events_open_and_hardware_matches_the_pmu(hwprof_cmd):
    out = run_list(hwprof_cmd, "--json", "sw", "hw", "cache", "tool")
    assert out.returncode == 0, out.stderr
    entries = {e["name"]: e for e in json.loads(out.stdout)}
    assert entries["task-clock"]["openable"] is True and entries["task-clock"]["aliases"] == []
    assert entries["cpu-cycles"]["aliases"] == ["cycles"]
    assert entries["L1-dcache-load-misses"]["encoding"] == "type=3,config=0x10000"
    if has_cpu_pmu():
        assert entries["cpu-cycles"]["openable"] is True
    else:
        assert entries["cpu-cycles"]["openable"] is False
        assert "no CPU PMU" in entries["cpu-cycles"]["reason"]
    assert entries["duration_time"]["kind"] == "tool"


@pytest.mark.skipif(os.geteuid() != 0, reason="tracefs is readable by root only")
def test_tracepoint_glob_opens_each(hwprof_cmd):
    out = run_list(hwprof_cmd, "--json", "sched:sched_switch")
    entries = json.loads(out.stdout)
    assert [e["name"] for e in entries] == ["sched:sched_switch"]
    assert entries[0]["openable"] is True and "probed with" not in entries[0]["reason"]
    table = run_list(hwprof_cmd, "tracepoint", "sched:sched_sw*")
    assert "sched:sched_switch" in table.stdout and "[yes]" in table.stdout


def test_no_match_is_one_line_error(hwprof_cmd):
    out = run_list(hwprof_cmd, "no_such_event_anywhere")
    assert out.returncode == 1
    assert out.stderr.strip() == "hwprof list: error: no event matches 'no_such_event_anywhere'"


def test_unprivileged_user_sees_user_space_only(hwprof_cmd, run_unprivileged):
    if (read_sysctl("perf_event_paranoid", 2) or 0) < 2:
        pytest.skip("perf_event_paranoid < 2: unprivileged users may count the kernel here")
    out = run_list(hwprof_cmd, "--json", "sw", runner=run_unprivileged)
    assert out.returncode == 0, out.stderr
    clock = next(e for e in json.loads(out.stdout) if e["name"] == "task-clock")
    assert clock["openable"] is True and clock["user_space_only"] is True
    assert "perf_event_paranoid is 2" in clock["reason"]


PERF = shutil.which("perf")


@pytest.mark.skipif(PERF is None, reason="perf (Debian package linux-perf) is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="perf lists tracepoints only where tracefs is readable (root)")
@pytest.mark.parametrize("perf_kind, kinds, openable_only", [
    ("sw", ("software", "tool"), False),
    ("pmu", ("pmu",), False),
    ("tracepoint", ("tracepoint",), False),
    # perf lists the hardware and cache events that open here (is_event_supported): so must we mark them.
    ("hw", ("hardware",), True),
    ("cache", ("cache",), True),
])
def test_same_events_as_perf_list(perf_kind, kinds, openable_only):
    from hwprof.events.catalog import build_catalog

    dump = subprocess.run([PERF, "list", "--raw-dump", perf_kind], capture_output=True, text=True, timeout=120)
    theirs = set(dump.stdout.split())
    entries = build_catalog(kinds, probe=openable_only)
    if openable_only:
        entries = [e for e in entries if e.openable is not None and e.openable.ok]
    ours = {e.name for e in entries}
    if perf_kind == "hw":
        ours |= {alias for e in entries for alias in e.aliases}  # perf lists "cpu-cycles OR cycles" as two names
    assert ours == theirs, (sorted(theirs - ours)[:10], sorted(ours - theirs)[:10])
