"""Report speed: `hwprof report` vs `perf report --stdio` on the same 200k-sample capture with deep stacks.

The capture is real: two threads recurse 40 to 70 frames deep through eight functions chosen by the bits of a
counter (many distinct deep stacks), sampled with cpu-clock every 50 us per thread with -g. Both reports start
cold (no hwprof cache: -i FILE is decoded every time) and are run alternately; medians of wall time and each
process's peak RSS (wait4) are compared.

    .venv/bin/python benchmarks/report_speed.py [--samples 200000] [--reps 3] [--keep FILE]
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run of argv, output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:3]} failed: {err.strip()}")
    return elapsed, usage.ru_maxrss


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
    parser.add_argument("--input", help="use this capture instead of recording one")
    parser.add_argument("--keep", help="copy the capture here")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None:
        print("needs perf (linux-perf) and gcc", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        data = Path(args.input) if args.input else capture(tmp, args.samples, hwprof)
        if args.keep:
            shutil.copyfile(data, args.keep)
        info = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                         capture_output=True, text=True, check=True).stdout)
        print(f"capture: {info['samples']:,} samples, {data.stat().st_size / 1e6:.1f} MB, {info['quality']['line']}")
        runs = {"hwprof report": [*hwprof, "report", "-i", str(data)],
                "hwprof report --folded": [*hwprof, "report", "-i", str(data), "--folded"],
                "perf report --stdio": [perf, "report", "-i", str(data), "--stdio"]}
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, argv in runs.items():
                results[name].append(timed(argv))
        med = {name: (statistics.median(t for t, _ in r), max(m for _, m in r)) for name, r in results.items()}
        base = med["perf report --stdio"][0]
        for name, (seconds, rss) in med.items():
            print(f"{name:<24} {seconds:7.2f} s  peak RSS {rss / 1024:7.1f} MiB  "
                  f"time ratio vs perf {seconds / base:.2f}x")
        print("goal: hwprof report at most 1.0x perf's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
