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
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import interleaved  # noqa: E402  (sibling modules, not a package)
from record_overhead import slowdown_report  # noqa: E402


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
        runs = interleaved(work, {
            "alone": [],
            "perf": [perf, "record", "-q", "--call-graph", "dwarf", "-F", "999", "-e", "cpu-clock",
                     "-o", str(tmp / "p.data"), "--"],
            "hwprof": [*hwprof, "record", "-q", "--call-graph", "dwarf", "-F", "999", "-e", "cpu-clock",
                       "-o", str(tmp / "h.data"), "--"],
        }, args.reps)
        slowdown_report(runs, args.reps)
        print(f"file size: perf {(tmp / 'p.data').stat().st_size / 1e6:.1f} MB, "
              f"hwprof {(tmp / 'h.data').stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
