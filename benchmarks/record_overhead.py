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
sys.path.insert(0, str(HERE))

from measure import WorkloadRun, interleaved  # noqa: E402  (a sibling module, not a package)


def build(tmp: Path) -> Path:
    binary = tmp / "spin"
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(HERE / "workloads" / "spin.c")],
                   check=True)
    return binary


def slowdown_report(runs: dict[str, list[WorkloadRun]], reps: int, own_goal: str = "") -> None:
    """The lines both sampling-overhead benchmarks print: workload slowdown under each tool and the tools' own CPU,
    medians of the interleaved runs."""
    med = statistics.median
    alone = med(r.workload["cpu"] for r in runs["alone"])
    under = {tool: med(r.workload["cpu"] for r in runs[tool]) for tool in ("perf", "hwprof")}
    own = {tool: med(r.own_cpu for r in runs[tool]) for tool in ("perf", "hwprof")}
    print(f"workload CPU alone {alone:.3f}s; under perf {under['perf']:.3f}s; under hwprof {under['hwprof']:.3f}s "
          f"(medians of {reps}); load average {os.getloadavg()[0]:.2f}")
    slow_perf, slow_hw = under["perf"] / alone, under["hwprof"] / alone
    print(f"slowdown: perf {slow_perf:.3f}x, hwprof {slow_hw:.3f}x; hwprof/perf slowdown ratio "
          f"{slow_hw / slow_perf:.3f} (goal <= 1.0 within noise)")
    print(f"profiler's own CPU: perf {own['perf']:.3f}s, hwprof {own['hwprof']:.3f}s; "
          f"ratio hwprof/perf {own['hwprof'] / max(own['perf'], 1e-9):.2f}x{own_goal}")


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
        runs = interleaved(work, {
            "alone": [],
            "perf": [perf, "record", "-q", "-F", "999", "-g", "-e", "cpu-clock", "-o", str(tmp / "p.data"), "--"],
            "hwprof": [*hwprof, "record", "-q", "-F", "999", "-g", "-e", "cpu-clock", "-o", str(tmp / "h.data"),
                       "--"],
        }, args.reps)
        slowdown_report(runs, args.reps, " (goal <= 1.5x)")
        samples, lost = lost_at_4000hz_system_wide(binary, tmp, hwprof)
        print(f"system-wide -F 4000 -g for 5 s on {os.cpu_count()} busy CPUs: {samples} samples, {lost} lost "
              f"(goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
