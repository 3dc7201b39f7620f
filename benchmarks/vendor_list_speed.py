#!/usr/bin/env python3
"""hwprof list and named-event resolution vs perf list: the same machine, in one run; prints ratios.

Commands timed (wall time, CPU time of the child and its children, peak RSS), median of --reps runs each,
who goes first alternating:
1. `perf list` vs `hwprof list` (everything, each event opened once to mark it).
2. `perf list` vs `PERF_CPUID=<Sapphire Rapids> hwprof list vendor` (400+ named events decoded from the
   shipped data and encoded; another model's events are listed, not opened).
3. `perf list` vs `PERF_CPUID=<Sapphire Rapids> hwprof stat -e task-clock,MEM_LOAD_RETIRED.L3_MISS:pp -- true`
   (start-up, vendor data load, event resolution and a full counting run).
Goal (issue 13): each hwprof time under 2x perf list's. Also prints the shipped vendor data size, and the floor:
`hwprof --version` (interpreter start-up and the CLI's imports, nothing listed) against the same perf list.
Byte-compile first (`python -m compileall hwprof collectors symbolize web`, as pip does for a wheel) when the
environment sets PYTHONDONTWRITEBYTECODE, or every run pays for compiling the sources.

    .venv/bin/python benchmarks/vendor_list_speed.py [--reps 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

SPR = "GenuineIntel-6-8F-8"
DATA = Path(__file__).resolve().parent.parent / "hwprof" / "events" / "data"


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, user+sys CPU s, peak RSS KiB) of one run."""
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({os.waitstatus_to_exitcode(status)})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def compare(name: str, ours: list[str], ours_env: dict, theirs: list[str], reps: int) -> dict:
    base = {k: v for k, v in os.environ.items() if k != "PERF_CPUID"}
    runs: dict[str, list[tuple[float, float, int]]] = {"hwprof": [], "perf": []}
    for rep in range(reps):
        order = [("hwprof", ours, {**base, **ours_env}), ("perf", theirs, base)]
        for label, argv, env in order if rep % 2 == 0 else order[::-1]:
            runs[label].append(measure(argv, env))
    out = {"case": name}
    for label, values in runs.items():
        out[f"{label}_wall_s"] = statistics.median(v[0] for v in values)
        out[f"{label}_cpu_s"] = statistics.median(v[1] for v in values)
        out[f"{label}_rss_kib"] = statistics.median(v[2] for v in values)
    out["wall_ratio"] = out["hwprof_wall_s"] / out["perf_wall_s"]
    out["cpu_ratio"] = out["hwprof_cpu_s"] / out["perf_cpu_s"]
    out["rss_ratio"] = out["hwprof_rss_kib"] / out["perf_rss_kib"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed")
    hwprof = [sys.executable, "-m", "hwprof"]
    cases = [
        compare("floor: hwprof --version", [*hwprof, "--version"], {}, [perf, "list"], args.reps),
        compare("list (everything)", [*hwprof, "list"], {}, [perf, "list"], args.reps),
        compare("list vendor (SPR via PERF_CPUID)", [*hwprof, "list", "vendor"], {"PERF_CPUID": SPR},
                [perf, "list"], args.reps),
        compare("stat named event (SPR)", [*hwprof, "stat", "-e", "task-clock,MEM_LOAD_RETIRED.L3_MISS:pp", "--",
                                           "/bin/true"], {"PERF_CPUID": SPR}, [perf, "list"], args.reps),
    ]
    size = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"cases": cases, "data_bytes": size, "loadavg": load}, indent=1))
        return 0
    print(f"machine load (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.reps} runs each, medians")
    for c in cases:
        print(f"{c['case']:<36} hwprof {c['hwprof_wall_s'] * 1e3:7.1f} ms wall {c['hwprof_cpu_s'] * 1e3:7.1f} ms CPU "
              f"{c['hwprof_rss_kib'] / 1024:6.1f} MiB | perf list {c['perf_wall_s'] * 1e3:7.1f} ms wall "
              f"{c['perf_cpu_s'] * 1e3:7.1f} ms CPU {c['perf_rss_kib'] / 1024:6.1f} MiB | "
              f"ratio wall {c['wall_ratio']:.2f} CPU {c['cpu_ratio']:.2f} RSS {c['rss_ratio']:.2f}")
    print(f"shipped vendor data: {size / 1e6:.2f} MB ({DATA})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
