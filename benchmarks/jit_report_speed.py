"""Report of a JIT's `--call-graph dwarf` capture: `hwprof report` on perf's file as recorded (it reads the jitdump
itself) vs perf's own workflow, `perf inject --jit` (one ELF file per code-load record) then `perf report`.

The capture is real: Node (`--perf-prof --perf-prof-unwinding-info --interpreted-frames-native-stack`) running
tests/integration/unwind/workloads/rec31.js (JavaScript recursion under two callers, 3:1), recorded by
`perf record -k 1 --call-graph dwarf -F 999`. Both tools unwind every sample from its stack copy through the JIT
code with the CFI V8 wrote. CPU time (user + sys, from wait4) and peak RSS per run; medians over --reps.

    .venv/bin/python benchmarks/jit_report_speed.py [--seconds 3] [--reps 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Run, run  # noqa: E402  (a sibling module, not a package)

WORKLOAD = Path(__file__).resolve().parents[1] / "tests" / "integration" / "unwind" / "workloads" / "rec31.js"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--workdir", help="keep the capture here (reused when present)")
    args = parser.parse_args()
    perf, node = shutil.which("perf"), shutil.which("node")
    if perf is None or node is None:
        print("needs perf (linux-perf) and node (nodejs)", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        data, injected = tmp / "node.data", tmp / "node.jit.data"
        if not data.exists():  # Node writes jit-PID.dump into its working directory, perf inject its ELF files there
            subprocess.run([perf, "record", "-q", "-N", "-k", "1", "--call-graph", "dwarf", "-F", "999", "-o",
                            str(data), "--", node, "--perf-prof", "--perf-prof-unwinding-info",
                            "--interpreted-frames-native-stack", str(WORKLOAD), str(args.seconds)], cwd=tmp, check=True)
        injects: list[Run] = []
        if not injected.exists():
            injects.append(run([perf, "inject", "--jit", "-i", str(data), "-o", str(injected)]))
        elfs = len(list(tmp.glob("jitted-*.so")))
        print(f"capture: {data.stat().st_size / 1e6:.1f} MB, {len(list(tmp.glob('jit-*.dump')))} jitdump, "
              f"perf inject made {elfs:,} ELF files")
        cache = tmp / "cache"
        runs = {
            "hwprof report (perf's file)": [*hwprof, "report", "-i", str(data)],
            "perf report --stdio (injected)": [perf, "report", "-i", str(injected), "--stdio"],
        }
        results: dict[str, list[Run]] = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, argv in runs.items():
                env = {**os.environ, "HWPROF_CACHE_DIR": str(cache)}
                results[name].append(run(argv, env=env, check=False, keep_output=False))
        med = statistics.median
        base = results["perf report --stdio (injected)"]
        base_cpu, base_rss = med(r.cpu for r in base), max(r.peak_rss_kib for r in base)
        for name, rs in [*results.items(), *([("perf inject --jit (once)", injects)] if injects else [])]:
            ok = all(r.ok for r in rs)
            cpu, rss = med(r.cpu for r in rs), max(r.peak_rss_kib for r in rs)
            print(f"{name:<32} wall {med(r.wall for r in rs):7.2f} s  CPU {cpu:7.2f} s  peak RSS "
                  f"{rss / 1024:7.1f} MiB  CPU vs perf report {cpu / base_cpu:.2f}x  RSS {rss / base_rss:.2f}x"
                  f"{'' if ok else '  FAILED'}")
        print(f"load average: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
