"""Sampling overhead: a CPU-bound workload alone, under `perf record -F 999 -g`, under `hwprof record -F 999 -g`.

Why CPU times and not wall time: the benchmark machine is shared, and a busy neighbour stretches wall time without
any profiler doing anything. The workload reports its own CPU time (getrusage at exit: sampling interrupts and
callchain walks are charged to it), and each profiler's own CPU time is the CPU of its whole process tree minus
the workload's. Runs are interleaved (alone, perf, hwprof, alone, ...) and medians compared.

Also: a system-wide capture at 4000 Hz on every CPU with both CPUs busy must lose no samples.

    .venv/bin/python benchmarks/record_overhead.py [--reps 5] [--rounds 600]
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

HERE = Path(__file__).resolve().parent


def build(tmp: Path) -> Path:
    binary = tmp / "spin"
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(HERE / "workloads" / "spin.c")],
                   check=True)
    return binary


def run_tree(argv: list[str]) -> tuple[float, str]:
    """Run argv; return the workload's own CPU seconds (from its timing line) and stderr."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {err.strip()}")
    line = next((x for x in out.splitlines() if x.startswith("elapsed=")), None)
    if line is None:
        raise SystemExit(f"no timing line from the workload: {out!r}")
    fields = dict(part.split("=") for part in line.split())
    return float(fields["cpu"]), err


def tree_cpu(argv: list[str]) -> tuple[float, float, str]:
    """CPU of the process tree of argv (via RUSAGE_CHILDREN deltas) and the workload's own CPU."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    workload_cpu, err = run_tree(argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return total, workload_cpu, err


def lost_at_4000hz_system_wide(binary: Path, tmp: Path, hwprof: list[str]) -> tuple[int, int]:
    """hwprof record -a -F 4000 -g while two workloads keep both CPUs busy: (samples, lost)."""
    busy = [subprocess.Popen([str(binary), "100000"], stdout=subprocess.DEVNULL) for _ in range(os.cpu_count() or 2)]
    try:
        out = tmp / "sw.data"
        subprocess.run([*hwprof, "record", "-q", "-a", "-F", "4000", "-g", "-d", "5", "-o", str(out)],
                       capture_output=True, text=True, check=True)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    report = json.loads(subprocess.run([*hwprof, "report", "-i", str(out), "--json", "--raw", "--limit", "1"],
                                       capture_output=True, text=True, check=True).stdout)
    return report["samples"], report["lost"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=600, help="workload size (600 ~ 1 s of CPU)")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None:
        print("needs perf (linux-perf) and gcc", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        binary = build(tmp)
        work = [str(binary), str(args.rounds)]
        alone, under_perf, under_hw, perf_own, hw_own = [], [], [], [], []
        for _ in range(args.reps):
            _, cpu, _ = tree_cpu(work)
            alone.append(cpu)
            total, cpu, _ = tree_cpu([perf, "record", "-q", "-F", "999", "-g", "-e", "cpu-clock",
                                      "-o", str(tmp / "p.data"), "--", *work])
            under_perf.append(cpu)
            perf_own.append(total - cpu)
            total, cpu, _ = tree_cpu([*hwprof, "record", "-q", "-F", "999", "-g", "-e", "cpu-clock",
                                      "-o", str(tmp / "h.data"), "--", *work])
            under_hw.append(cpu)
            hw_own.append(total - cpu)
        med = statistics.median
        slow_perf = med(under_perf) / med(alone)
        slow_hw = med(under_hw) / med(alone)
        print(f"workload CPU alone {med(alone):.3f}s; under perf {med(under_perf):.3f}s; "
              f"under hwprof {med(under_hw):.3f}s (medians of {args.reps})")
        print(f"slowdown: perf {slow_perf:.3f}x, hwprof {slow_hw:.3f}x; hwprof/perf slowdown ratio "
              f"{slow_hw / slow_perf:.3f} (goal <= 1.0 within noise)")
        print(f"profiler's own CPU: perf {med(perf_own):.3f}s, hwprof {med(hw_own):.3f}s; "
              f"ratio hwprof/perf {med(hw_own) / med(perf_own):.2f}x (goal <= 1.5x)")
        samples, lost = lost_at_4000hz_system_wide(binary, tmp, hwprof)
        print(f"system-wide -F 4000 -g for 5 s on {os.cpu_count()} busy CPUs: {samples} samples, {lost} lost "
              f"(goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
