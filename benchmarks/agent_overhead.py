"""`hwprof agent` against `perf record -a -F 19 -g` for the same minutes: CPU time and memory of each.

Both sample the whole machine at 19 Hz per CPU with call stacks while the demo workload keeps one CPU busy and, with
--fork-rate, a busy host's process churn runs beside it (benchmarks/workloads/busy_host.sh: short-lived pipelines of
coreutils; every start brings the kernel's fork, exec, mmap and exit records, which the agent follows and perf only
copies). perf writes its ring buffers to a file; the agent also decodes, symbolizes, aggregates and sends every 10 s
window to a ClickHouse server (started here, on this machine; its own CPU for the ingest is reported separately).

CPU and peak RSS come from benchmarks/measure.py (wait4 of each command's tree: the agent's sampler and its worker
process; perf and its threads; the largest single process's peak RSS). The agent's proportional set size (PSS: shared
pages split between the processes that map them), summed over its processes, is read every second while it runs:
the memory the agent costs the machine. The agent's own per-window CPU (stored with each window) separates the
start-up (imports, the first /proc snapshot, kallsyms, the first sight of every busy binary) from what a host pays
while the agent runs for days.

    .venv/bin/python benchmarks/agent_overhead.py [--minutes 5] [--fork-rate 20] [--call-graph dwarf]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from measure import run  # noqa: E402


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_starts() -> int:
    """Processes (and threads) created on this machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        return int(next(line for line in f if line.startswith("processes ")).split()[1])


class PssWatch:
    """The largest sum of PSS over the processes whose command line holds `marker`, sampled every second."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            total = 0
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        if self.marker not in f.read():
                            continue
                    with open(f"/proc/{entry}/smaps_rollup") as f:
                        total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
                except (OSError, StopIteration, ValueError):
                    continue
            self.peak_kib = max(self.peak_kib, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="per tool (default 5)")
    parser.add_argument("--fork-rate", type=int, default=20, metavar="N",
                        help="process starts per second of the busy-host churn beside the demo (default 20; 0: none)")
    parser.add_argument("--call-graph", choices=("fp", "dwarf"), default="fp")
    args = parser.parse_args()
    seconds = int(args.minutes * 60)
    from hwprof.fleet.localserver import LocalClickHouse

    tmp = Path(tempfile.mkdtemp(prefix="hwprof-agent-bench-"))
    workload = tmp / "demo-workload"
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", str(workload),
                    str(ROOT / "demo" / "workload.c")], check=True)
    server = LocalClickHouse(tmp / "clickhouse").start()
    demo = subprocess.Popen([str(workload), str(2 * seconds + 120)], stdout=subprocess.DEVNULL)
    churn = None
    if args.fork_rate:
        churn = subprocess.Popen(["sh", str(HERE / "workloads" / "busy_host.sh"), str(2 * seconds + 120),
                                  str(args.fork_rate)])
    graph = ["--call-graph", "dwarf"] if args.call_graph == "dwarf" else ["-g"]
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; {seconds} s per "
              f"tool; the demo workload on one CPU"
              + (f", busy-host churn at {args.fork_rate} starts/s" if args.fork_rate else ""), flush=True)
        perf = shutil.which("perf")
        if perf is None:
            raise SystemExit("perf is not installed (apt-get install linux-perf)")
        starts = process_starts()
        perf_run = run([perf, "record", "-a", "-F", "19", *graph, "-q", "-o", str(tmp / "perf.data"), "--",
                        "sleep", str(seconds)])
        perf_starts = (process_starts() - starts) / perf_run.wall
        perf_size = (tmp / "perf.data").stat().st_size
        print(f"perf record -a -F 19 {' '.join(graph)}: CPU {perf_run.cpu:7.2f} s "
              f"({100 * perf_run.cpu / perf_run.wall:.2f}% of one CPU), peak RSS {perf_run.peak_rss_mib:6.1f} MB, "
              f"file {perf_size / 1e6:.1f} MB; {perf_starts:.1f} process starts/s on the machine", flush=True)
        (tmp / "perf.data").unlink()
        server_before = process_cpu(server.process.pid)
        spool = tmp / "spool"
        starts = process_starts()
        with PssWatch(str(spool)) as pss:
            agent_run = run([sys.executable, "-m", "hwprof", "agent", "--store", server.url("bench"), "-F", "19",
                             *(["--call-graph", "dwarf"] if args.call_graph == "dwarf" else []),
                             "-d", str(seconds), "--spool-dir", str(spool)])
        agent_starts = (process_starts() - starts) / agent_run.wall
        server_cpu = process_cpu(server.process.pid) - server_before
        err = agent_run.stderr
        summary = next((line for line in err.splitlines() if "windows," in line), err.strip()[-300:])
        print(f"hwprof agent -F 19 {' '.join(graph)}: CPU {agent_run.cpu:7.2f} s "
              f"({100 * agent_run.cpu / agent_run.wall:.2f}% of one CPU), peak RSS {agent_run.peak_rss_mib:6.1f} MB "
              f"(largest process), peak PSS of its processes together {pss.peak_kib / 1024:.1f} MB; "
              f"{agent_starts:.1f} process starts/s on the machine", flush=True)
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
            # The agent measures its own CPU (both processes) per window: the first window carries the start-up;
            # the rest is what a host pays while the agent runs for days.
            cpu = [w["agent_cpu_ns"] / 1e9 for w in stored_windows]
            later = cpu[1:]
            span = sum(w["duration_ns"] for w in stored_windows[1:]) / 1e9
            print(f"  per window (agent's own CPU, ms): {', '.join(f'{1000 * c:.0f}' for c in cpu)}")
            if later and span:
                ordered = sorted(later)
                print(f"  after the first window: {sum(later):.2f} s over {span:.0f} s = "
                      f"{100 * sum(later) / span:.2f}% of one CPU (mean {1000 * sum(later) / len(later):.0f} ms, "
                      f"median {1000 * ordered[len(ordered) // 2]:.0f} ms per window); start-up and first window "
                      f"{agent_run.cpu - sum(later):.2f} s; worker RSS at the last window "
                      f"{stored_windows[-1]['agent_rss_bytes'] / 2**20:.0f} MB")
        stored = sum(t["bytes"] for t in usage.values())
        tables = ", ".join(f"{k} {v['rows']:,} rows" for k, v in usage.items())
        print(f"  stored: {stored / 1e3:.0f} kB on disk ({tables})")
        print(f"ratio agent/perf: CPU {agent_run.cpu / max(perf_run.cpu, 1e-9):.1f}x, "
              f"peak RSS {agent_run.peak_rss_mib / perf_run.peak_rss_mib:.1f}x")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        for proc in (demo, churn):
            if proc is not None:
                proc.kill()
                proc.wait()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
