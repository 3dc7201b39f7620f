"""`--call-graph dwarf` capture overhead: a CPU-bound workload built without frame pointers, alone, under
`perf record --call-graph dwarf -F 999` and under `hwprof record --call-graph dwarf -F 999`.

Same method as record_overhead.py (whose helpers it uses): the workload reports its own CPU time (sampling
interrupts and the 8 KiB stack copies are charged to it), each profiler's own CPU is its process tree's minus the
workload's, runs are interleaved and medians compared. Also the bytes written per sample.

    .venv/bin/python benchmarks/dwarf_overhead.py [--reps 5] [--rounds 600]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from record_overhead import tree_cpu  # noqa: E402  (a sibling script, not a package)


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
        binary = tmp / "spin"
        subprocess.run(["gcc", "-O2", "-fomit-frame-pointer", "-o", str(binary), str(HERE / "workloads" / "spin.c")],
                       check=True)
        work = [str(binary), str(args.rounds * 4)]  # -O2 runs the loop about 4x faster than record_overhead's -O0
        alone, under_perf, under_hw, perf_own, hw_own = [], [], [], [], []
        for _ in range(args.reps):
            _, cpu, _ = tree_cpu(work)
            alone.append(cpu)
            total, cpu, _ = tree_cpu([perf, "record", "-q", "--call-graph", "dwarf", "-F", "999", "-e", "cpu-clock",
                                      "-o", str(tmp / "p.data"), "--", *work])
            under_perf.append(cpu)
            perf_own.append(total - cpu)
            total, cpu, _ = tree_cpu([*hwprof, "record", "-q", "--call-graph", "dwarf", "-F", "999", "-e",
                                      "cpu-clock", "-o", str(tmp / "h.data"), "--", *work])
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
              f"ratio hwprof/perf {med(hw_own) / med(perf_own):.2f}x")
        print(f"file size: perf {(tmp / 'p.data').stat().st_size / 1e6:.1f} MB, "
              f"hwprof {(tmp / 'h.data').stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
