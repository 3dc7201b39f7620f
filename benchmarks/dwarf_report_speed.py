"""Report of a 30k-sample `--call-graph dwarf` capture: `hwprof report` vs `perf report` on the same file.

The capture is real and hard to unwind: Debian's python3.11 (no frame pointers, deep native stacks: the evaluator
re-entered per Python call) running a JSON/regex workload, recorded by hwprof with 8 KiB stack copies at 4000 Hz.
Both tools unwind every sample from its stack copy: perf with libdw/libunwind one sample at a time, hwprof with
its vectorised walk. CPU time (user + sys, from wait4) and peak RSS per run; runs alternate, medians compared.
hwprof runs cold (an empty cache directory: unwind tables and symbol indexes built) and warm (the same cache).

    .venv/bin/python benchmarks/dwarf_report_speed.py [--samples 30000] [--reps 3] [--workdir DIR]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Run, run  # noqa: E402  (a sibling module, not a package)

WORKLOAD = """
import json, re, sys
def work(n):
    d = {}
    for i in range(n):
        s = json.dumps({"k": i, "v": [i, str(i), {"x": [i] * 3}]})
        d[i % 97] = re.sub(r"\\d", "x", s)
    return sorted(d.values())
for _ in range(int(sys.argv[1])): work(20000)
"""


def capture(tmp: Path, samples: int, hwprof: list[str]) -> Path:
    script = tmp / "work.py"
    script.write_text(WORKLOAD)
    data = tmp / "dwarf.data"
    rounds = max(1, samples // 1500)
    for _ in range(4):
        subprocess.run([*hwprof, "record", "-q", "--call-graph", "dwarf", "-F", "4000", "-e", "cpu-clock", "-o",
                        str(data), "--", "/usr/bin/python3.11", str(script), str(rounds)], check=True,
                       stdout=subprocess.DEVNULL)
        got = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                        capture_output=True, text=True, check=True).stdout)["samples"]
        if got >= samples:
            return data
        rounds = int(rounds * samples / max(got, 1) * 1.1) + 1
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=30_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", help="keep the capture here (reused when present)")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or not Path("/usr/bin/python3.11").exists():
        print("needs perf (linux-perf) and Debian's python3.11", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        data = tmp / "dwarf.data"
        if not data.exists():
            data = capture(tmp, args.samples, hwprof)
        info = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                         capture_output=True, text=True, check=True).stdout)
        print(f"capture: {info['samples']:,} samples, {data.stat().st_size / 1e6:.1f} MB, {info['quality']['line']}")
        cache = tmp / "cache"
        runs = {
            "hwprof report (cold cache)": [*hwprof, "report", "-i", str(data)],
            "hwprof report (warm cache)": [*hwprof, "report", "-i", str(data)],
            "perf report --stdio": [perf, "report", "-i", str(data), "--stdio"],
            "perf report --children -g none": [perf, "report", "-i", str(data), "--stdio", "--children", "-g",
                                               "none"],
        }
        results: dict[str, list[Run]] = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, argv in runs.items():
                if "cold" in name:
                    shutil.rmtree(cache, ignore_errors=True)
                env = {**os.environ, "HWPROF_CACHE_DIR": str(cache)}
                results[name].append(run(argv, env=env, check=False, keep_output=False))
        med = statistics.median
        base_cpu = med(r.cpu for r in results["perf report --stdio"])
        base_rss = max(r.peak_rss_kib for r in results["perf report --stdio"])
        for name, rs in results.items():
            ok = all(r.ok for r in rs)
            cpu = med(r.cpu for r in rs)
            rss = max(r.peak_rss_kib for r in rs)
            print(f"{name:<32} wall {med(r.wall for r in rs):6.2f} s  CPU {cpu:6.2f} s  peak RSS {rss / 1024:7.1f} MiB"
                  f"  CPU vs perf report {cpu / base_cpu:.2f}x  RSS {rss / base_rss:.2f}x{'' if ok else '  FAILED'}")
        print("goal: hwprof report at most 1.0x perf report's CPU time and 2x its peak memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
