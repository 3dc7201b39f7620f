"""`hwprof agent --cgroup` (sampled by the kernel) and `--comm` (dropped before symbolization): what is stored."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

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


def _stored(store_url: str, host: str, columns: str) -> set[tuple]:
    with ClickHouseStore.open(store_url) as store:
        return set(store.execute(f"SELECT DISTINCT {columns} FROM {{db}}.samples WHERE host = '{host}'"))


def test_the_agent_with_a_cgroup_stores_only_that_cgroups_process(store_url, demo_workload, cgroup_v2, tmp_path):
    """The same program inside and outside the cgroup: only the inside one is sampled, so nothing is filtered
    afterwards, and its rows carry its cgroup and its symbolized functions."""
    inside = cgroup_v2.start([str(demo_workload), "30"], stdout=subprocess.DEVNULL)
    outside = subprocess.Popen([str(demo_workload), "30"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        stats = _run_agent(store_url, tmp_path, "--cgroup", cgroup_v2.name, "--host", "cgroup-t")
    finally:
        for process in (inside, outside):
            process.kill()
            process.wait()
    assert _stored(store_url, "cgroup-t", "pid, cgroup") == {(inside.pid, f"/{cgroup_v2.name}")}
    assert stats["samples"] >= 20 and stats["filtered"] == 0, stats
    with ClickHouseStore.open(store_url) as store:
        merged = store.merged_profile(Selector(labels={"host": ("cgroup-t",)}), per_process=True)
        assert merged.total_samples == stats["samples"]
    names = {merged.frame_label(frame) for frame in range(len(merged.frame_kind))}
    assert "hot" in names and any(name.startswith("busy_caller") for name in names), sorted(names)[:40]


def test_an_unknown_cgroup_stops_the_agent_before_it_starts(store_url, tmp_path):
    result = subprocess.run([*HWPROF, "agent", "--store", store_url, "--cgroup", "hwprof-no-such-cgroup", "-d", "2",
                             "--spool-dir", str(tmp_path / "spool")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such cgroup: hwprof-no-such-cgroup" in result.stderr


def test_the_agent_with_comm_stores_only_that_program_and_counts_the_rest(store_url, demo_workload, tmp_path):
    """--comm keeps the named program's samples; every other process's samples are counted as outside the scope,
    not stored."""
    demo = subprocess.Popen([str(demo_workload), "30"], stdout=subprocess.DEVNULL)
    other = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    comm = demo_workload.name[:15]
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
