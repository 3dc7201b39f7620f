#!/usr/bin/env python3
"""hwprof stat vs perf stat: the same workload, the same events, in one run; prints ratios, not times.

1. Workload overhead: a C program that mixes CPU work, page faults and write(2) calls measures its own wall
   time; it runs under `hwprof stat -e EVENTS` and `perf stat -e EVENTS` alternately (--reps times, who goes
   first alternating) and the ratio of the medians is printed (goal: within 2%, i.e. 0.98-1.02).
2. Start-up: `hwprof stat -e task-clock -- true` against `perf stat -e task-clock -- true`, wall time of the
   whole invocation, median of --startup-reps runs each.

    .venv/bin/python benchmarks/stat_overhead.py [--reps 9] [--startup-reps 21] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run  # noqa: E402  (a sibling module, not a package)

WORKLOAD_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    int fd = open("/dev/null", O_WRONLY);
    volatile unsigned long x = 0;
    long long start = now_ns(CLOCK_MONOTONIC), cpu_start = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < rounds; r++) {
        for (long i = 0; i < 3000000; i++) x += i * i;               /* CPU */
        char *p = mmap(0, 512 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        madvise(p, 512 * 4096, MADV_NOHUGEPAGE);
        for (int i = 0; i < 512; i++) p[i * 4096] = 1;              /* page faults */
        munmap(p, 512 * 4096);
        for (int i = 0; i < 2000; i++) if (write(fd, "x", 1) < 0) return 2;  /* syscalls */
    }
    printf("%lld %lld\n", now_ns(CLOCK_MONOTONIC) - start, now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_start);
    return 0;
}
"""


def build_workload(directory: Path) -> str:
    source = directory / "workload.c"
    source.write_text(WORKLOAD_C)
    binary = directory / "workload"
    subprocess.run(["cc", "-O1", "-o", str(binary), str(source)], check=True)
    return str(binary)


def workload_ns(tool: list[str], workload: list[str]) -> tuple[int, int]:
    """The workload's own (wall, CPU) time under `tool` (it prints them), so the tool's start-up is not in it."""
    argv = [*tool, "--", *workload] if tool else workload
    wall, cpu = run(argv).stdout.strip().splitlines()[-1].split()
    return int(wall), int(cpu)


def invocation_s(argv: list[str]) -> float:
    return run(argv).wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--startup-reps", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=40, help="workload size (about 12 ms per round)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None:
        print("perf is not installed (apt-get install linux-perf)", file=sys.stderr)
        return 1
    events = "task-clock,context-switches,cpu-migrations,page-faults"
    if os.geteuid() == 0:
        events += ",syscalls:sys_enter_write"  # a tracepoint firing 2000 times a round: per-event cost shows
    hwprof = [sys.executable, "-m", "hwprof", "stat", "-e", events]
    perf_stat = [perf, "stat", "-e", events]
    with tempfile.TemporaryDirectory() as tmp:
        workload = [build_workload(Path(tmp)), str(args.rounds)]
        workload_ns(perf_stat, workload)  # warm caches for both
        workload_ns(hwprof, workload)
        bare, under_perf, under_hwprof = [], [], []
        for rep in range(args.reps):
            # Alternate who goes first so a drift in machine load does not favour either tool.
            order = [(perf_stat, under_perf), (hwprof, under_hwprof)]
            for tool, into in order if rep % 2 == 0 else order[::-1]:
                into.append(workload_ns(tool, workload))
            bare.append(workload_ns([], workload))
    startup_perf, startup_hwprof, startup_python = [], [], []
    for _ in range(args.startup_reps):
        startup_perf.append(invocation_s([perf, "stat", "-e", "task-clock", "--", "true"]))
        startup_hwprof.append(invocation_s([sys.executable, "-m", "hwprof", "stat", "-e", "task-clock", "--", "true"]))
        startup_python.append(invocation_s([sys.executable, "-c", "pass"]))  # the floor any Python tool pays
    def ratio(a: list[tuple[int, int]], b: list[tuple[int, int]], which: int) -> float:
        return statistics.median(x[which] for x in a) / statistics.median(x[which] for x in b)

    result = {
        "events": events,
        "workload_ratio_hwprof_over_perf": ratio(under_hwprof, under_perf, 0),
        "workload_ratio_perf_over_bare": ratio(under_perf, bare, 0),
        "workload_ratio_hwprof_over_bare": ratio(under_hwprof, bare, 0),
        "workload_cpu_ratio_hwprof_over_perf": ratio(under_hwprof, under_perf, 1),
        "load_average": os.getloadavg()[0],
        "startup_ratio_hwprof_over_perf": statistics.median(startup_hwprof) / statistics.median(startup_perf),
        "startup_ratio_bare_python_over_perf": statistics.median(startup_python) / statistics.median(startup_perf),
        "reps": args.reps,
        "startup_reps": args.startup_reps,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"events: {events}   (1-minute load average at the end: {result['load_average']:.2f})")
    print(f"workload wall time, hwprof stat / perf stat: {result['workload_ratio_hwprof_over_perf']:.3f}  "
          f"(goal 0.98-1.02; median of {args.reps} alternating runs)")
    print(f"workload CPU time,  hwprof stat / perf stat: {result['workload_cpu_ratio_hwprof_over_perf']:.3f}  "
          "(less sensitive to other load on the machine)")
    print(f"workload wall time, perf stat / no tool:     {result['workload_ratio_perf_over_bare']:.3f}")
    print(f"workload wall time, hwprof stat / no tool:   {result['workload_ratio_hwprof_over_bare']:.3f}")
    print(f"start-up (stat -- true), hwprof / perf:      {result['startup_ratio_hwprof_over_perf']:.1f}x  "
          f"(median of {args.startup_reps})")
    print(f"start-up, bare 'python -c pass' / perf:      {result['startup_ratio_bare_python_over_perf']:.1f}x  "
          "(the interpreter's own floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
