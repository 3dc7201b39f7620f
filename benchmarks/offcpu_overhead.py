"""Off-CPU capture overhead on a context-switch-heavy workload (~50k switches per second): the workload alone,
under `perf record -e sched:sched_switch -g`, under perf recording what hwprof --off-cpu records (`-e cpu-clock
-F 4000 -e sched:sched_switch -g --switch-events -k mono`: on-CPU samples and switch records too), and under
`hwprof record --off-cpu`.

What is compared: the workload's own wall time (its clock around the ping-pong; each switch costs a tracepoint
sample with a kernel+user callchain under both tools, plus switch records under hwprof), its own CPU time, the
profiler's own CPU time (the process tree's CPU minus the workload's) and the peak RSS of the run (GNU time's %M:
the largest process of the tree, i.e. the profiler). Runs are interleaved (alone, perf, hwprof, alone, ...) and
medians compared, since the machine is shared. Lost records are reported: at this rate a slow reader loses them.

    .venv/bin/python benchmarks/offcpu_overhead.py [--reps 5] [--rounds 50000]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(tmp: Path) -> Path:
    binary = tmp / "switcher"
    subprocess.run(["gcc", "-O2", "-fno-omit-frame-pointer", "-o", str(binary),
                    str(HERE / "workloads" / "switcher.c"), "-lpthread"], check=True)
    return binary


def run(argv: list[str]) -> dict[str, float]:
    """Run argv under GNU time; the workload's timing fields, the tree's CPU, the peak RSS (KiB) and stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib=%M", *argv], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.strip()[-500:]}")
    line = next((x for x in proc.stdout.splitlines() if x.startswith("elapsed=")), None)
    if line is None:
        raise SystemExit(f"no timing line from the workload: {proc.stdout!r}")
    out = {k: float(v) for k, v in (part.split("=") for part in line.split())}
    out["tree_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = [x for x in proc.stderr.splitlines() if x.startswith("maxrss_kib=")]
    out["maxrss_kib"] = float(rss[-1].split("=")[1]) if rss else 0.0
    # hwprof: "(N samples, M LOST)"; perf: "Processed N events and lost M chunks!" / "lost M events"
    lost = re.findall(r"([\d,]+) LOST|[Ll]ost ([\d,]+)", proc.stderr)
    out["lost"] = float(sum(int((a or b).replace(",", "")) for a, b in lost))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=50000, help="ping-pong rounds (2 switches each)")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None or not os.path.exists("/usr/bin/time"):
        print("needs perf (linux-perf), gcc and GNU time", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("needs root (sched tracepoints)", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        work = [str(build(tmp)), str(args.rounds)]
        runs: dict[str, list[dict[str, float]]] = {"alone": [], "perf": [], "perf-same": [], "hwprof": []}
        for _ in range(args.reps):
            runs["alone"].append(run(work))
            runs["perf"].append(run([perf, "record", "-q", "-e", "sched:sched_switch", "-g", "-o",
                                     str(tmp / "p.data"), "--", *work]))
            runs["perf-same"].append(run([perf, "record", "-q", "-e", "cpu-clock", "-F", "4000", "-e",
                                          "sched:sched_switch", "-g", "--switch-events", "-k", "mono", "-o",
                                          str(tmp / "q.data"), "--", *work]))
            runs["hwprof"].append(run([*hwprof, "record", "--off-cpu", "-o", str(tmp / "h.data"), "--", *work]))
        med = statistics.median

        def m(tool: str, key: str) -> float:
            return med(r[key] for r in runs[tool])

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
