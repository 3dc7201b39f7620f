"""Helpers shared by the stat integration tests (a module of its own: conftest is not importable by name)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "unit" / "stat" / "stat.schema.json"


def hwprof_stat(*argv: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwprof", "stat", *argv], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def event(doc: dict, name: str) -> dict:
    # Unprivileged at perf_event_paranoid 2, events fall back to user space only and are named 'NAME:u'.
    matches = [e for e in doc["events"] if e["name"] in (name, name + ":u")]
    assert matches, f"{name} not in {[e['name'] for e in doc['events']]}"
    return matches[0]


def perf_stat_values(argv: list[str], events: str) -> dict[str, float]:
    """perf stat -x, on the same work: event name -> value (perf is the oracle)."""
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make test installs linux-perf)")
    proc = subprocess.run([perf, "stat", "-x", ",", "-e", events, "--", *argv], capture_output=True, text=True,
                          timeout=60)
    values = {}
    for line in proc.stderr.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[0] and fields[0][0].isdigit():
            values[fields[2].removesuffix(":u")] = float(fields[0])
    return values


def perf_fds(pid: int) -> int:
    """How many perf_event fds process `pid` holds (0 once it is gone)."""
    import os

    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                    count += 1
            except OSError:
                continue
    except OSError:
        return 0
    return count


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll: a loaded CI machine can take seconds to start an interpreter, so tests wait for facts, not time."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def child_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""
