"""Off-CPU capture overhead on a context-switch-heavy workload (~50k switches per second): the workload alone,
under `perf record -e sched:sched_switch -g`, under perf recording what hwprof --off-cpu records (`-e cpu-clock
-F 4000 -e sched:sched_switch -g --switch-events -k mono`: on-CPU samples and switch records too), and under
`hwprof record --off-cpu`.

What is compared: the workload's own wall time (its clock around the ping-pong; each switch costs a tracepoint
sample with a kernel+user callchain under both tools, plus switch records under hwprof), its own CPU time, the
profiler's own CPU time (the process tree's CPU minus the workload's) and the peak RSS of the run (wait4's ru_maxrss:
the largest process of the tree, i.e. the profiler). Runs are interleaved (alone, perf, hwprof, alone, ...) and
medians compared, since the machine is shared. Lost records are reported: at this rate a slow reader loses them.

    .venv/bin/python benchmarks/offcpu_overhead.py [--reps 5] [--rounds 50000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import interleaved  # noqa: E402  (a sibling module, not a package)


def build(tmp: Path) -> Path:
    binary = tmp / "switcher"
    subprocess.run(["gcc", "-O2", "-fno-omit-frame-pointer", "-o", str(binary),
                    str(HERE / "workloads" / "switcher.c"), "-lpthread"], check=True)
    return binary


def lost(stderr: str) -> int:
    """hwprof: "(N samples, M LOST)"; perf: "Processed N events and lost M chunks!" / "lost M events"."""
    return sum(int((a or b).replace(",", "")) for a, b in re.findall(r"([\d,]+) LOST|[Ll]ost ([\d,]+)", stderr))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=50000, help="ping-pong rounds (2 switches each)")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None:
        print("needs perf (linux-perf) and gcc", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("needs root (sched tracepoints)", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        work = [str(build(tmp)), str(args.rounds)]
        runs = interleaved(work, {
            "alone": [],
            "perf": [perf, "record", "-q", "-e", "sched:sched_switch", "-g", "-o", str(tmp / "p.data"), "--"],
            "perf-same": [perf, "record", "-q", "-e", "cpu-clock", "-F", "4000", "-e", "sched:sched_switch", "-g",
                          "--switch-events", "-k", "mono", "-o", str(tmp / "q.data"), "--"],
            "hwprof": [*hwprof, "record", "--off-cpu", "-o", str(tmp / "h.data"), "--"],
        }, args.reps)
        med = statistics.median

        def m(tool: str, key: str) -> float:
            values = {"tree_cpu": lambda r: r.run.cpu, "maxrss_kib": lambda r: r.run.peak_rss_kib,
                      "lost": lambda r: lost(r.run.stderr)}
            return med(values[key](r) if key in values else r.workload[key] for r in runs[tool])

        alone = m("alone", "elapsed")
        print(f"workload: {args.rounds} rounds, {m('alone', 'rate'):,.0f} switches/s alone; load average "
              f"{os.getloadavg()[0]:.2f}; medians of {args.reps} interleaved runs")
        for tool in ("alone", "perf", "perf-same", "hwprof"):
            own = m(tool, "tree_cpu") - m(tool, "cpu")
            print(f"  {tool:9s} workload wall {m(tool, 'elapsed'):.3f}s ({m(tool, 'elapsed') / alone:.2f}x), "
                  f"workload CPU {m(tool, 'cpu'):.3f}s, tool CPU {max(own, 0):.3f}s, peak RSS "
                  f"{m(tool, 'maxrss_kib') / 1024:.1f} MiB, lost {m(tool, 'lost'):.0f}")
        slow_perf = m("perf", "elapsed") / alone
        slow_hw = m("hwprof", "elapsed") / alone
        slow_same = m("perf-same", "elapsed") / alone
        print(f"slowdown: perf {slow_perf:.2f}x, perf recording the same {slow_same:.2f}x, hwprof --off-cpu "
              f"{slow_hw:.2f}x; hwprof/perf {slow_hw / slow_perf:.2f}, hwprof/perf-same {slow_hw / slow_same:.2f}")
        own_perf = max(m("perf", "tree_cpu") - m("perf", "cpu"), 1e-9)
        own_hw = max(m("hwprof", "tree_cpu") - m("hwprof", "cpu"), 0)
        print(f"tool CPU ratio hwprof/perf {own_hw / own_perf:.2f}x; peak RSS ratio "
              f"{m('hwprof', 'maxrss_kib') / max(m('perf', 'maxrss_kib'), 1):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
