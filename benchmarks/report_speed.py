"""Report speed: `hwprof report` vs `perf report --stdio` on the same 200k-sample capture with deep stacks.

The capture is real: two threads recurse 40 to 70 frames deep through eight functions chosen by the bits of a
counter (nearly every stack distinct), sampled with cpu-clock every 50 us per thread with -g. hwprof starts cold
(-i FILE is decoded and symbolized every time, no cache). Runs alternate; medians of wall time and each process's
peak RSS (wait4) are compared.

What perf runs: `perf report --stdio` as is (children on, call graph text) needs more than 20 GiB on this capture
and is not run by default (--perf-default runs it under a 16 GiB address-space limit). The like-for-like
comparison is `--children -g none` (the same self/total table hwprof prints); `--no-children` (self table with
call graphs) runs under an 8 GiB limit.

    .venv/bin/python benchmarks/report_speed.py [--samples 200000] [--reps 3] [--workdir DIR]
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
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(argv: list[str], limit_gib: float | None = None) -> tuple[float, int, bool]:
    """Wall seconds, peak RSS (KiB) and success of one run of argv (output discarded)."""

    def limit() -> None:
        if limit_gib:
            size = int(limit_gib * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status) == 0


def capture(tmp: Path, samples: int, hwprof: list[str]) -> Path:
    binary = tmp / "deep"
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(HERE / "workloads" / "deep.c"),
                    "-lpthread"], check=True)
    data = tmp / "deep.data"
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", help="keep the workload and capture here (reused when present)")
    parser.add_argument("--perf-default", action="store_true",
                        help="also run plain 'perf report --stdio' (needs > 16 GiB on this capture)")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None:
        print("needs perf (linux-perf) and gcc", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        data = tmp / "deep.data"
        if not data.exists():
            data = capture(tmp, args.samples, hwprof)
        info = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                         capture_output=True, text=True, check=True).stdout)
        print(f"capture: {info['samples']:,} samples, {data.stat().st_size / 1e6:.1f} MB, {info['quality']['line']}")
        runs: dict[str, tuple[list[str], float | None]] = {
            "hwprof report": ([*hwprof, "report", "-i", str(data)], None),
            "perf report --children -g none": ([perf, "report", "-i", str(data), "--stdio", "--children", "-g",
                                                "none"], None),
            "perf report --no-children": ([perf, "report", "-i", str(data), "--stdio", "--no-children"], 8.0),
        }
        if args.perf_default:
            runs["perf report (default)"] = ([perf, "report", "-i", str(data), "--stdio"], 16.0)
        results: dict[str, list[tuple[float, int, bool]]] = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, (argv, limit) in runs.items():
                results[name].append(timed(argv, limit))
        base = statistics.median(t for t, _, _ in results["perf report --children -g none"])
        for name, rs in results.items():
            ok = all(good for _, _, good in rs)
            seconds = statistics.median(t for t, _, _ in rs)
            rss = max(m for _, m, _ in rs)
            status = "" if ok else "  FAILED (memory limit)"
            print(f"{name:<32} {seconds:7.2f} s  peak RSS {rss / 1024:8.1f} MiB  "
                  f"time vs perf --children -g none {seconds / base:.2f}x{status}")
        print("goal: hwprof report at most 1.0x perf's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
