#!/usr/bin/env python3
"""Per-hit overhead of a uprobe: `hwprof probe --count` against bpftrace's `@ = count()` on the same function.

A C function is called N times (default 1M) by a program that times its own loop (wall and CPU time), run bare,
under `hwprof probe --count -u BIN:hit -- BIN N` (default mechanism: a tracefs probe, since the command could
start threads; and once more with `--mechanism pmu`) and under `bpftrace -e 'uprobe:BIN:hit { @ = count(); }'
-c ...`, interleaved, R rounds. Overhead per hit = (probed loop time - bare loop time) / N, medians over rounds;
printed as the ratio hwprof/bpftrace (goal: <= 1.2). Both tools' counts are checked to be exactly N.

    .venv/bin/python benchmarks/probe_overhead.py [--calls 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def loop_times(stdout: str) -> tuple[int, int]:
    match = re.search(r"wall_ns=(\d+) cpu_ns=(\d+)", stdout)
    if not match:
        raise SystemExit(f"probe_overhead: target printed no timing: {stdout!r}")
    return int(match.group(1)), int(match.group(2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("probe_overhead: uprobes need root")
    if not shutil.which("bpftrace"):
        raise SystemExit("probe_overhead: bpftrace is not installed")
    work = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    binary = work / "probe_target"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "workloads" / "probe_target.c")], check=True)
    n = str(args.calls)
    def hwprof(mechanism: str) -> list[str]:
        return [sys.executable, "-m", "hwprof", "probe", "--count", "--mechanism", mechanism, "--json", "-o",
                str(work / "out.json"), "-u", f"{binary}:hit", "--", str(binary), n]

    bpftrace = ["bpftrace", "-e", f"uprobe:{binary}:hit {{ @ = count(); }}", "-c", f"{binary} {n}"]
    samples: dict[str, list[tuple[int, int]]] = {"bare": [], "hwprof": [], "hwprof-pmu": [], "bpftrace": []}
    load = os.getloadavg()[0]
    for round_ in range(args.rounds):
        bare = subprocess.run([str(binary), n], capture_output=True, text=True, check=True)
        samples["bare"].append(loop_times(bare.stdout))
        for name, mechanism in (("hwprof", "auto"), ("hwprof-pmu", "pmu")):
            ours = subprocess.run(hwprof(mechanism), capture_output=True, text=True, check=True)
            hits = json.loads((work / "out.json").read_text())["probes"][0]["hits"]
            assert hits == args.calls, f"hwprof ({mechanism}) counted {hits}, expected {args.calls}"
            samples[name].append(loop_times(ours.stdout))
        peer = subprocess.run(bpftrace, capture_output=True, text=True, check=True)
        count = int(re.search(r"^@: (\d+)$", peer.stdout, re.M).group(1))
        assert count == args.calls, f"bpftrace counted {count}, expected {args.calls}"
        samples["bpftrace"].append(loop_times(peer.stdout))
        print(f"round {round_ + 1}: " + "  ".join(f"{k} wall {v[-1][0] / 1e6:.0f} ms cpu {v[-1][1] / 1e6:.0f} ms"
                                                   for k, v in samples.items()), flush=True)
    print(f"\n{args.calls} calls, {args.rounds} rounds, medians; 1-min load average at start {load:.1f}")
    ratios = {}
    for index, clock in ((1, "cpu"), (0, "wall")):
        bare = statistics.median(s[index] for s in samples["bare"])
        per_hit = {tool: (statistics.median(s[index] for s in samples[tool]) - bare) / args.calls
                   for tool in ("hwprof", "hwprof-pmu", "bpftrace")}
        ratios[clock] = per_hit["hwprof"] / per_hit["bpftrace"]
        print(f"{clock:>4}: per-hit overhead hwprof {per_hit['hwprof']:.0f} ns (tracefs probe, the default for a "
              f"command), hwprof --mechanism pmu {per_hit['hwprof-pmu']:.0f} ns, bpftrace {per_hit['bpftrace']:.0f} ns"
              f"  ->  hwprof/bpftrace {ratios[clock]:.3f}, pmu/bpftrace "
              f"{per_hit['hwprof-pmu'] / per_hit['bpftrace']:.3f}")
    print(f"RATIO (cpu) {ratios['cpu']:.3f}  goal <= 1.2: {'met' if ratios['cpu'] <= 1.2 else 'NOT met'}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
