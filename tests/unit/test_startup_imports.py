"""Start-up: what `hwprof --help`, `hwprof list` and resolving one named event import and load.

Every CLI start pays for each module it imports (issue 13: `hwprof list` and event resolution within 2x `perf list`'s
time). These rules keep the heavy or unneeded ones out of those paths: the web app, numpy, the symbolizer, the
ClickHouse client, the collectors, and the stdlib modules only an error or an option needs. Each case runs in a
fresh interpreter (sys.modules of this test process says nothing about a start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "flask", "werkzeug", "jinja2", "elftools", "symbolic", "clickhouse_driver",
         "hwprof.web", "hwprof.symbolize", "hwprof.collectors", "hwprof.pipeline", "hwprof.fleet", "hwprof.report")
# Needed only for an error message (difflib), an option (json: --json), or by a type checker (typing).
ONLY_WHEN_NEEDED = ("difflib", "typing", "signal", "secrets", "socket", "textwrap")

RUN_CLI = """
import io, sys
from hwprof.cli import main
sys.stdout = sys.stderr = io.StringIO()
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
modules = sorted(sys.modules)  # before this script's own json import
import json
sys.__stdout__.write(json.dumps({"code": code, "modules": modules}))
"""


def _modules_after(argv: list[str], env: dict[str, str] | None = None, code: str = RUN_CLI) -> tuple[object, set[str]]:
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    return result["code"], set(result["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_help_imports_no_event_code_and_nothing_heavy() -> None:
    code, modules = _modules_after(["--help"])
    assert code == 0
    not_for_help = tuple(m for m in ONLY_WHEN_NEEDED if m != "textwrap")  # argparse wraps the help with it
    assert _loaded(modules, HEAVY + not_for_help + ("hwprof.events", "dataclasses", "json", "ctypes")) == []


@pytest.mark.parametrize("argv", [["list", "--no-probe"], ["list", "sw", "--no-probe"], ["list", "vendor",
                                                                                           "--no-probe"]])
def test_list_imports_nothing_heavy(argv: list[str]) -> None:
    code, modules = _modules_after(argv, {"PERF_CPUID": "GenuineIntel-6-8F-8"})
    assert code == 0
    assert _loaded(modules, HEAVY + ONLY_WHEN_NEEDED) == []
    # the metric evaluator and the perfmon converter are other commands' code; no record is decoded; nothing is
    # opened, so no event string is parsed
    assert _loaded(modules, ("hwprof.events.metricplan", "hwprof.events.metricexpr", "hwprof.events.perfmon_build",
                             "hwprof.events.libpfm", "hwprof.perf.abi_records", "hwprof.events.parser")) == []


RESOLVE_ONE = """
import sys
from hwprof.events import parse_events
from hwprof.events import vendor
groups = parse_events(sys.argv[1])
modules = sorted(sys.modules)
model = vendor.current_model()
import json
sys.stdout.write(json.dumps({"code": [hex(e.attr.config) for g in groups for e in g.events],
                             "modules": modules, "files": vendor._load.cache_info().currsize,
                             "names": vendor.all_event_names.cache_info().currsize,
                             "built": len(model._built), "all_built": "_events" in model.__dict__}))
"""


@pytest.mark.parametrize("cpuid, event, config", [
    ("GenuineIntel-6-8F-8", "MEM_LOAD_RETIRED.L3_MISS:pp", "0x20d1"),
    ("GenuineIntel-6-55-7", "MEM_LOAD_RETIRED.L3_MISS", "0x20d1"),  # Cascade Lake: 1,336 events
    ("AuthenticAMD-25-1-1", "ls_dc_accesses", "0x40"),
])
def test_resolving_one_named_event_loads_one_table(cpuid: str, event: str, config: str) -> None:
    proc = subprocess.run([sys.executable, "-c", RESOLVE_ONE, event], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PERF_CPUID": cpuid})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["code"] == [config]
    assert result["files"] == 1   # this model's core events only: no metric table, no other model
    assert result["names"] == 0   # every model's name list is read only to explain an unknown name
    assert result["built"] == 1 and not result["all_built"]  # one event built from its record, not the whole table
    modules = set(result["modules"])
    assert _loaded(modules, HEAVY + ONLY_WHEN_NEEDED + ("hwprof.events.metricplan", "hwprof.events.libpfm",
                                                       "hwprof.perf.abi_records", "hwprof.events.vendor_metrics")) == []
