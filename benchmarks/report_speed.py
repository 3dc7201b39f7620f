"""Report speed and memory: `hwprof report` vs `perf report --stdio` on the same captures, in one run, per mode.

The capture is real: two threads recurse 40 to 70 frames deep through eight functions chosen by the bits of a
counter (nearly every stack distinct), sampled with cpu-clock every 50 us per thread with -g. hwprof starts cold
(-i FILE is decoded and symbolized every time, no cache). Runs alternate (hwprof, perf, hwprof, perf, ...); for
each tool the median CPU time (user + system of the process, from wait4) and the largest peak RSS are compared:

    mode             hwprof                            perf
    --no-children    report -i F --no-children         report -i F --stdio --no-children -g none
    children         report -i F                       report -i F --stdio --children -g none
    --folded         report -i F --folded              report -i F --stdio --children -g none

plus start-up (wall time of both on a 1k-sample capture of the same workload) and the cold web payload of the big
capture (decode + symbolize + build the page's payload, in one fresh process). Goals (issue 9): CPU at most 1.0x
perf's, peak memory at most 2x, start-up at most 3x perf's wall time, cold payload at most 2 s.

    .venv/bin/python benchmarks/report_speed.py [--samples 200000] [--reps 3] [--workdir DIR] [--modes ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Run:
    wall: float     # seconds
    cpu: float      # user + system seconds of the process
    rss_kib: int    # peak resident set
    ok: bool


def timed(argv: list[str], limit_gib: float | None = None) -> Run:
    """One run of argv (output discarded): wall and CPU seconds and peak RSS from wait4."""

    def limit() -> None:
        if limit_gib:
            size = int(limit_gib * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status) == 0)


def capture(tmp: Path, samples: int, hwprof: list[str], name: str = "deep.data") -> Path:
    binary = tmp / "deep"
    if not binary.exists():
        subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary),
                        str(HERE / "workloads" / "deep.c"), "-lpthread"], check=True)
    data = tmp / name
    threads = 2
    seconds = samples / (threads * 20000) * 1.15
    for _ in range(4):
        subprocess.run([*hwprof, "record", "-q", "-e", "cpu-clock", "-c", "50000", "-g", "-o", str(data), "--",
                        str(binary), f"{seconds:.1f}"], check=True)
        got = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                        capture_output=True, text=True, check=True).stdout)["samples"]
        if got >= samples:
            return data
        seconds *= samples / max(got, 1) * 1.1  # a busy machine gave the workload less CPU: run longer
    return data


MODES = {
    "--no-children": (["--no-children"], ["--no-children", "-g", "none"]),
    "children": ([], ["--children", "-g", "none"]),
    "--folded": (["--folded"], ["--children", "-g", "none"]),
}


def compare(name: str, ours: list[str], theirs: list[str], reps: int) -> tuple[float, float]:
    """Alternate both commands `reps` times; print medians and ratios; return (CPU ratio, memory ratio)."""
    runs: dict[str, list[Run]] = {"hwprof": [], "perf": []}
    for _ in range(reps):
        runs["hwprof"].append(timed(ours))
        runs["perf"].append(timed(theirs, 8.0))
    stats = {}
    for tool, rs in runs.items():
        stats[tool] = (statistics.median(r.wall for r in rs), statistics.median(r.cpu for r in rs),
                       max(r.rss_kib for r in rs) / 1024, all(r.ok for r in rs))
    cpu_ratio = stats["hwprof"][1] / max(stats["perf"][1], 1e-9)
    mem_ratio = stats["hwprof"][2] / max(stats["perf"][2], 1e-9)
    for tool, (wall, cpu, rss, ok) in stats.items():
        print(f"  {tool:<7} wall {wall:7.2f} s  cpu {cpu:7.2f} s  peak RSS {rss:8.1f} MiB{'' if ok else '  FAILED'}")
    print(f"  {name}: hwprof/perf CPU {cpu_ratio:.2f}x (goal <= 1.0), peak memory {mem_ratio:.2f}x (goal <= 2)")
    return cpu_ratio, mem_ratio


def cold_payload(hwprof_python: str, data: Path) -> tuple[float, float]:
    """Wall and CPU seconds to decode, symbolize and build the web payload of a never-opened capture, in a fresh
    process (imports included)."""
    code = ("import sys, time; t = time.perf_counter(); "
            "from hwprof.pipeline import decode_file; from hwprof.symbolize import Symbolizer; "
            "from hwprof.web.payload import build_payload, dumps_payload; "
            "p = decode_file(sys.argv[1], Symbolizer()); dumps_payload(build_payload(p)); "
            "print(time.perf_counter() - t, time.process_time())")
    out = subprocess.run([hwprof_python, "-c", code, str(data)], capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", help="keep the workload and captures here (reused when present)")
    parser.add_argument("--modes", nargs="*", default=[*MODES, "startup", "payload"],
                        help="which comparisons: --no-children children --folded startup payload")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None:
        print("needs perf (linux-perf) and gcc", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with open("/proc/loadavg") as f:
        print(f"load average at start: {' '.join(f.read().split()[:3])} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        data = tmp / "deep.data"
        if not data.exists():
            data = capture(tmp, args.samples, hwprof)
        info = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                         capture_output=True, text=True, check=True).stdout)
        print(f"capture: {info['samples']:,} samples, {data.stat().st_size / 1e6:.1f} MB, {info['quality']['line']}")
        for mode, (ours, theirs) in MODES.items():
            if mode in args.modes:
                print(f"{mode}: hwprof report {' '.join(ours)} vs perf report --stdio {' '.join(theirs)}")
                compare(mode, [*hwprof, "report", "-i", str(data), *ours],
                        [perf, "report", "-i", str(data), "--stdio", *theirs], args.reps)
        if "startup" in args.modes:
            small = tmp / "small.data"
            if not small.exists():
                small = capture(tmp, 1000, hwprof, "small.data")
            print("start-up (1k samples): hwprof report vs perf report --stdio")
            ours = [timed([*hwprof, "report", "-i", str(small)]).wall for _ in range(args.reps)]
            theirs = [timed([perf, "report", "-i", str(small), "--stdio"]).wall for _ in range(args.reps)]
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(f"  hwprof {statistics.median(ours):.2f} s, perf {statistics.median(theirs):.2f} s wall: "
                  f"{ratio:.2f}x (goal <= 3)")
        if "payload" in args.modes:
            runs = [cold_payload(sys.executable, data) for _ in range(args.reps)]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"cold web payload of the {info['samples']:,}-sample capture: {wall:.2f} s wall, {cpu:.2f} s CPU "
                  "(goal <= 2 s)")
    with open("/proc/loadavg") as f:
        print(f"load average at end: {' '.join(f.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
