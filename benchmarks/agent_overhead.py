"""`hwprof agent` against `perf record -a -F 19 -g` for the same minutes: CPU time and peak memory of each.

Both sample the whole machine at 19 Hz per CPU with call stacks while the demo workload keeps one CPU busy. perf
only writes its ring buffers to a file; the agent also decodes, symbolizes, aggregates and sends every 10 s window
to a ClickHouse server (started here, on this machine; its own CPU for the ingest is reported separately).

CPU is the process tree's (RUSAGE_CHILDREN deltas: the agent's sampler and its worker process; perf and its
threads); peak RSS is the largest single process of the tree (ru_maxrss), as the agent also reports it itself.

    .venv/bin/python benchmarks/agent_overhead.py [--minutes 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def tree_run(argv: list[str]) -> tuple[float, float, str, float]:
    """Run argv to completion: (CPU seconds of its tree, peak RSS MB of one of its processes, stderr, wall s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, after.ru_maxrss / 1024, proc.stderr, wall


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    seconds = int(args.minutes * 60)
    from hwprof.fleet.localserver import LocalClickHouse

    tmp = Path(tempfile.mkdtemp(prefix="hwprof-agent-bench-"))
    workload = tmp / "demo-workload"
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", str(workload),
                    str(ROOT / "demo" / "workload.c")], check=True)
    server = LocalClickHouse(tmp / "clickhouse").start()
    demo = subprocess.Popen([str(workload), str(3 * seconds + 60)], stdout=subprocess.DEVNULL)
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
              f"{seconds} s per run, demo workload on one CPU", flush=True)
        perf = shutil.which("perf")
        if perf is None:
            raise SystemExit("perf is not installed (apt-get install linux-perf)")
        perf_cpu, perf_rss, _, perf_wall = tree_run(
            [perf, "record", "-a", "-F", "19", "-g", "-q", "-o", str(tmp / "perf.data"), "--", "sleep",
             str(seconds)])
        perf_size = (tmp / "perf.data").stat().st_size
        print(f"perf record -a -F 19 -g : CPU {perf_cpu:7.2f} s ({100 * perf_cpu / perf_wall:.2f}% of one CPU), "
              f"peak RSS {perf_rss:6.1f} MB, file {perf_size / 1e6:.1f} MB", flush=True)
        server_before = process_cpu(server.process.pid)
        agent_cpu, agent_rss, err, agent_wall = tree_run(
            [sys.executable, "-m", "hwprof", "agent", "--store", server.url("bench"), "-F", "19", "-d",
             str(seconds), "--spool-dir", str(tmp / "spool")])
        server_cpu = process_cpu(server.process.pid) - server_before
        summary = next((line for line in err.splitlines() if "windows," in line), err.strip()[-300:])
        print(f"hwprof agent -F 19 (-g) : CPU {agent_cpu:7.2f} s ({100 * agent_cpu / agent_wall:.2f}% of one CPU), "
              f"peak RSS {agent_rss:6.1f} MB", flush=True)
        print(f"  its summary: {summary.removeprefix('hwprof agent: ')}")
        for line in err.splitlines():
            if line != summary and "no debug info" not in line and "falling back" not in line:
                print(f"  agent said: {line}")
        windows = int(re.search(r"(\d+) windows", summary)[1]) if "windows" in summary else 0
        print(f"  ClickHouse server CPU for the ingest: {server_cpu:.2f} s over {windows} windows")
        from hwprof.fleet.clickhouse import ClickHouseStore

        with ClickHouseStore.open(server.url("bench")) as store:
            usage = store.disk_usage()
            stored_windows = sorted(store.windows(), key=lambda w: w["start_ns"])
        if stored_windows:
            # The agent measures its own CPU (both processes) per window: the first window carries the start-up
            # (imports, the first /proc snapshot, kallsyms, symbol tables of every busy binary); the rest is what
            # a host pays while the agent runs for days.
            cpu = [w["agent_cpu_ns"] / 1e9 for w in stored_windows]
            later = cpu[1:]
            span = sum(w["duration_ns"] for w in stored_windows[1:]) / 1e9
            print(f"  per window (agent's own CPU, s): {', '.join(f'{c:.3f}' for c in cpu)}")
            if later and span:
                print(f"  after the first window: {sum(later):.2f} s over {span:.0f} s = "
                      f"{100 * sum(later) / span:.2f}% of one CPU (mean {1000 * sum(later) / len(later):.0f} ms "
                      f"per window); worker RSS at the last window {stored_windows[-1]['agent_rss_bytes'] / 2**20:.0f}"
                      " MB")
        stored = sum(t["bytes"] for t in usage.values())
        tables = ", ".join(f"{k} {v['rows']:,} rows" for k, v in usage.items())
        print(f"  stored: {stored / 1e3:.0f} kB on disk ({tables})")
        print(f"ratio agent/perf: CPU {agent_cpu / max(perf_cpu, 1e-9):.1f}x, peak RSS {agent_rss / perf_rss:.1f}x")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        demo.kill()
        demo.wait()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
