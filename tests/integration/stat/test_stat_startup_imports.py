"""Start-up of a real `hwprof stat` run (issue 13): counting a command, with a generic or a named vendor event,
imports the counting stack and nothing for other commands or other output formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RUN_STAT = """
import io, sys
from hwprof.cli import main
sys.stdout = sys.stderr = io.StringIO()
code = main(sys.argv[1:])
modules = sorted(sys.modules)
import json
sys.__stdout__.write(json.dumps({"code": code, "modules": modules}))
"""
NOT_FOR_A_STAT_RUN = ("numpy", "flask", "elftools", "symbolic", "clickhouse_driver", "hwprof.web", "hwprof.symbolize",
                      "hwprof.pipeline", "hwprof.fleet", "hwprof.report", "hwprof.perf.abi_records",
                      "hwprof.events.metricplan", "hwprof.events.vendor_metrics", "hwprof.events.libpfm", "typing",
                      "difflib")


@pytest.mark.parametrize("events, cpuid", [("task-clock,page-faults", ""),
                                           ("task-clock,MEM_LOAD_RETIRED.L3_MISS:pp", "GenuineIntel-6-8F-8")])
def test_a_stat_run_imports_only_the_counting_stack(events: str, cpuid: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PERF_CPUID"}
    if cpuid:
        env["PERF_CPUID"] = cpuid
    proc = subprocess.run([sys.executable, "-c", RUN_STAT, "stat", "-e", events, "--", "/bin/true"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["code"] == 0
    loaded = sorted(m for m in result["modules"] if any(m == n or m.startswith(n + ".") for n in NOT_FOR_A_STAT_RUN))
    assert loaded == []
    assert "hwprof.collectors.counting" in result["modules"]  # it did count
