"""`hwprof agent --cgroup` (sampled by the kernel) and `--comm` (dropped before symbolization): what is stored."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from hwprof.fleet.clickhouse import ClickHouseStore, Selector

HWPROF = [sys.executable, "-m", "hwprof"]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent samples the whole machine: needs root")
SCOPE = re.compile(r"(?P<samples>[\d,]+) samples \((?P<lost>[\d,]+) lost, (?P<filtered>[\d,]+) outside the scope\)")


def _run_agent(store_url: str, tmp_path, *args: str) -> dict[str, int]:
    result = subprocess.run([*HWPROF, "agent", "--store", store_url, "-F", "99", "--window", "2", "-d", "5",
                             "--spool-dir", str(tmp_path / "spool"), *args], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    match = SCOPE.search(result.stderr)
    assert match, result.stderr
    return {key: int(value.replace(",", "")) for key, value in match.groupdict().items()}


def _wait_for_windows(store_url: str, host: str, run: subprocess.Popen, at_least: int = 1) -> None:
    deadline = time.monotonic() + 120
    while True:
        with ClickHouseStore.open(store_url) as store:
            if len(store.windows(Selector(labels={"host": (host,)}))) >= at_least:
                return
        assert run.poll() is None, run.communicate()[1]
        assert time.monotonic() < deadline, f"fewer than {at_least} windows stored in 120 s"
        time.sleep(0.3)


def _stored(store_url: str, host: str, columns: str) -> set[tuple]:
    with ClickHouseStore.open(store_url) as store:
        return set(store.execute(f"SELECT DISTINCT {columns} FROM {{db}}.samples WHERE host = '{host}'"))


def test_the_agent_with_a_cgroup_stores_only_that_cgroups_processes(store_url, demo_workload, cgroup_v2, tmp_path):
    """The same program inside and outside the cgroup, and a third copy moved in while the agent runs (its code
    was mapped outside, so the kernel never reports it to the cgroup's events: the agent reads it from /proc).
    Only the cgroup's two are sampled, so nothing is filtered afterwards; their rows carry the cgroup and their
    symbolized functions."""
    inside = cgroup_v2.start([str(demo_workload), "30"], stdout=subprocess.DEVNULL)
    outside = subprocess.Popen([str(demo_workload), "30"], stdout=subprocess.DEVNULL)
    moved = subprocess.Popen([str(demo_workload), "30"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        run = subprocess.Popen([*HWPROF, "agent", "--store", store_url, "-F", "99", "--window", "2",
                                "--send-interval", "2", "-d", "30", "--spool-dir", str(tmp_path / "spool"),
                                "--cgroup", cgroup_v2.name, "--host", "cgroup-t"], stderr=subprocess.PIPE, text=True)
        _wait_for_windows(store_url, "cgroup-t", run)  # the first window's snapshot of the cgroup was taken
        cgroup_v2.move(moved.pid)
        _wait_for_windows(store_url, "cgroup-t", run, at_least=3)
        run.send_signal(signal.SIGTERM)
        err = run.communicate(timeout=180)[1]
    finally:
        for process in (inside, outside, moved):
            process.kill()
            process.wait()
    assert run.returncode == 0, err
    stats = {key: int(value.replace(",", "")) for key, value in SCOPE.search(err).groupdict().items()}
    cgroup = f"/{cgroup_v2.name}"
    assert _stored(store_url, "cgroup-t", "pid, cgroup") == {(inside.pid, cgroup), (moved.pid, cgroup)}
    assert stats["samples"] >= 20 and stats["filtered"] == 0, stats
    with ClickHouseStore.open(store_url) as store:
        assert store.merged_profile(Selector(labels={"host": ("cgroup-t",)})).total_samples == stats["samples"]
        for pid in (inside.pid, moved.pid):
            merged = store.merged_profile(Selector(labels={"host": ("cgroup-t",), "pid": (str(pid),)}))
            names = {merged.frame_label(frame) for frame in range(len(merged.frame_kind))}
            assert "hot" in names and any(name.startswith("busy_caller") for name in names), (pid, sorted(names))


def test_an_unknown_cgroup_stops_the_agent_before_it_starts(store_url, tmp_path):
    result = subprocess.run([*HWPROF, "agent", "--store", store_url, "--cgroup", "hwprof-no-such-cgroup", "-d", "2",
                             "--spool-dir", str(tmp_path / "spool")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such cgroup: hwprof-no-such-cgroup" in result.stderr


def test_the_agent_with_comm_stores_only_that_program_and_counts_the_rest(store_url, demo_workload, tmp_path):
    """--comm keeps the named program's samples; every other process's samples are counted as outside the scope,
    not stored."""
    program = tmp_path / f"scope{uuid.uuid4().hex[:8]}"  # a name no other process of the machine has
    shutil.copy(demo_workload, program)
    demo = subprocess.Popen([str(program), "30"], stdout=subprocess.DEVNULL)
    other = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    comm = program.name
    try:
        time.sleep(0.3)
        stats = _run_agent(store_url, tmp_path, "--comm", comm, "--host", "comm-t")
    finally:
        for process in (demo, other):
            process.kill()
            process.wait()
    assert _stored(store_url, "comm-t", "pid, comm") == {(demo.pid, comm)}
    assert stats["samples"] >= 20 and stats["filtered"] >= 20, stats
    with ClickHouseStore.open(store_url) as store:
        (window, *_) = store.windows(Selector(labels={"host": ("comm-t",)}))
        total_filtered = sum(w["filtered"] for w in store.windows(Selector(labels={"host": ("comm-t",)})))
    assert total_filtered == stats["filtered"] and window["filtered"] >= 0
