"""`hwprof agent --cgroup` (the kernel samples only the cgroup) against the agent sampling the whole machine, with
`--comm` (other processes' samples dropped while decoding) and with no scope at all (every sample decoded and
symbolized: what the agent paid before, when --cgroup/--comm filtered the finished window).

One demo workload runs in a fresh cgroup (v2), a copy of it under another name runs outside and keeps the other
CPU busy, and the rest of the machine does what it does. The peer is `perf record -a -G CGROUP -F 19 -g` (it only
writes the cgroup's samples to a file). The three agents and perf run one after the other, round-robin
(`--reps`), each for the same seconds with 10 s windows into a ClickHouse server started here. Each prints:
its process tree's CPU and peak RSS (benchmarks/measure.py), what it stored and filtered, and its own CPU per
window as it measured and stored it: after the first window (start-up: imports, the /proc snapshot, the symbol
tables of every busy binary) that is what a host pays while the agent runs for days.

    .venv/bin/python benchmarks/agent_scope.py [--seconds 60] [--reps 2] [-F 19]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from measure import run  # noqa: E402

SUMMARY = re.compile(r"(?P<windows>\d+) windows, (?P<samples>[\d,]+) samples \((?P<lost>[\d,]+) lost, "
                     r"(?P<filtered>[\d,]+) outside the scope\)")


def make_cgroup() -> Path:
    from hwprof.system.cgroups import perf_cgroup_mount

    if os.geteuid() != 0:
        raise SystemExit("creating a cgroup and sampling the machine need root")
    mount = perf_cgroup_mount()
    path = Path(mount.path) / f"hwprof-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    return path


def remove_cgroup(path: Path) -> None:
    deadline = time.monotonic() + 10
    while (pids := (path / "cgroup.procs").read_text().split()) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    path.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per agent run (default 60: 6 windows)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("-F", "--freq", type=int, default=19)
    args = parser.parse_args()
    from hwprof.fleet.clickhouse import ClickHouseStore, Selector
    from hwprof.fleet.localserver import LocalClickHouse

    tmp = Path(tempfile.mkdtemp(prefix="hwprof-agent-scope-"))
    inside_bin, outside_bin = tmp / "service-inside", tmp / "other-work"
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", str(inside_bin),
                    str(ROOT / "demo" / "workload.c")], check=True)
    shutil.copy(inside_bin, outside_bin)
    server = LocalClickHouse(tmp / "clickhouse").start()
    cgroup = make_cgroup()
    total = int(3 * args.reps * (args.seconds + 30) + 60)
    inside = subprocess.Popen(["sh", "-c", f'echo $$ > "{cgroup}/cgroup.procs" && exec "$@"', "sh",
                               str(inside_bin), str(total)], stdout=subprocess.DEVNULL)
    outside = subprocess.Popen([str(outside_bin), str(total)], stdout=subprocess.DEVNULL)
    modes = {
        "whole machine, no scope": [],
        f"--comm {inside_bin.name}": ["--comm", inside_bin.name],
        f"--cgroup {cgroup.name}": ["--cgroup", cgroup.name],
    }
    url = server.url("scope")
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed (apt-get install linux-perf)")
    perf_runs = []
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; {args.seconds:.0f} s "
              f"per run at -F {args.freq}, {args.reps} rounds; {inside_bin.name} in the cgroup, {outside_bin.name} "
              "outside (each keeps a CPU busy)", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in modes}
        for rep in range(args.reps):
            for index, (name, scope) in enumerate(modes.items()):
                host = f"bench-{index}-{rep}"
                result = run([sys.executable, "-m", "hwprof", "agent", "--store", url, "-F", str(args.freq), "-d",
                              str(args.seconds), "--host", host, "--spool-dir", str(tmp / "spool"), *scope])
                match = SUMMARY.search(result.stderr)
                if match is None:
                    raise SystemExit(f"no summary from the agent: {result.stderr[-500:]}")
                with ClickHouseStore.open(url) as store:
                    windows = sorted(store.windows(Selector(labels={"host": (host,)})), key=lambda w: w["start_ns"])
                later = windows[1:]
                steady_cpu = sum(w["agent_cpu_ns"] for w in later) / 1e9
                steady_span = sum(w["duration_ns"] for w in later) / 1e9
                results[name].append({"cpu": result.cpu, "wall": result.wall, "rss": result.peak_rss_mib,
                                      "samples": int(match["samples"].replace(",", "")),
                                      "filtered": int(match["filtered"].replace(",", "")),
                                      "steady": steady_cpu / steady_span if steady_span else 0.0,
                                      "per_window_ms": 1000 * steady_cpu / len(later) if later else 0.0})
                r = results[name][-1]
                print(f"  round {rep + 1} {name:34s}: tree CPU {r['cpu']:6.2f} s ({100 * r['cpu'] / r['wall']:.2f}% "
                      f"of one CPU), peak RSS {r['rss']:5.0f} MB; stored {r['samples']:,} samples, "
                      f"{r['filtered']:,} outside the scope; after the first window {100 * r['steady']:.2f}% "
                      f"of one CPU ({r['per_window_ms']:.0f} ms per window)", flush=True)
            peer = run([perf, "record", "-q", "-e", "cpu-clock", "-F", str(args.freq), "-g", "-a", "-G", cgroup.name,
                        "-o", str(tmp / "perf.data"), "--", "sleep", str(args.seconds)])
            perf_runs.append(peer)
            print(f"  round {rep + 1} {'perf record -a -G':34s}: tree CPU {peer.cpu:6.2f} s "
                  f"({100 * peer.cpu / peer.wall:.2f}% of one CPU), peak RSS {peer.peak_rss_mib:5.0f} MB", flush=True)
        print("means over the rounds:")
        base = None
        for name, runs in results.items():
            cpu = sum(r["cpu"] for r in runs) / len(runs)
            steady = sum(r["steady"] for r in runs) / len(runs)
            window_ms = sum(r["per_window_ms"] for r in runs) / len(runs)
            rss = max(r["rss"] for r in runs)
            base = base or (cpu, steady)
            print(f"  {name:34s}: tree CPU {cpu:6.2f} s ({cpu / base[0]:.2f}x the unscoped agent), after the first "
                  f"window {100 * steady:.2f}% of one CPU ({window_ms:.0f} ms per window, "
                  f"{steady / base[1] if base[1] else 0:.2f}x), peak RSS {rss:.0f} MB")
        perf_cpu = sum(r.cpu for r in perf_runs) / len(perf_runs)
        perf_rss = max(r.peak_rss_mib for r in perf_runs)
        cgroup_runs = results[f"--cgroup {cgroup.name}"]
        agent_cpu = sum(r["cpu"] for r in cgroup_runs) / len(cgroup_runs)
        agent_rss = max(r["rss"] for r in cgroup_runs)
        print(f"  {'perf record -a -G':34s}: tree CPU {perf_cpu:6.2f} s, peak RSS {perf_rss:.0f} MB")
        print(f"ratio agent --cgroup / perf record -a -G: CPU {agent_cpu / max(perf_cpu, 1e-9):.1f}x, "
              f"peak RSS {agent_rss / max(perf_rss, 1e-9):.1f}x")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        for process in (inside, outside):
            process.kill()
            process.wait()
        remove_cgroup(cgroup)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
