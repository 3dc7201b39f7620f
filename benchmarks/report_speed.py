"""Report speed and memory: `hwprof report` vs `perf report --stdio` on the same captures, in one run, per mode.

The capture is real: two threads recurse 40 to 70 frames deep through eight functions chosen by the bits of a
counter (nearly every stack distinct), sampled with cpu-clock every 50 us per thread with -g. hwprof starts cold
(-i FILE is decoded and symbolized every time, no cache). Runs alternate (hwprof, perf, hwprof, perf, ...); for
each tool the median CPU time (user + system of the process, from wait4) and the largest peak RSS are compared:

    mode             hwprof                            perf
    --no-children    report -i F --no-children         report -i F --stdio --no-children -g none
    children         report -i F                       report -i F --stdio --children -g none
    --folded         report -i F --folded              report -i F --stdio --children -g none

plus start-up (wall time of both on a 1k-sample capture of the same workload) and the cold web payload of the big
capture (decode + symbolize + build the page's payload, in one fresh process). Goals (issue 9): CPU at most 1.0x
perf's, peak memory at most 2x, start-up at most 3x perf's wall time, cold payload at most 2 s.

    .venv/bin/python benchmarks/report_speed.py [--samples 200000] [--reps 3] [--workdir DIR] [--modes ...]
        [--before OTHER_VENV/bin/python]
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
from measure import Run, run  # noqa: E402  (a sibling module, not a package)


def timed(argv: list[str], limit_gib: float | None = None) -> Run:
    """One run of argv, output discarded: wall and CPU seconds and peak RSS from its own wait4 (measure.run)."""
    return run(argv, limit_as_gib=limit_gib, check=False, keep_output=False)


def byte_compile(python: str) -> None:
    """An installed package carries compiled bytecode; an editable checkout under PYTHONDONTWRITEBYTECODE would be
    compiled from source on every run (~0.2 s of CPU here), which is not what users see. Compile the sources the
    given Python imports hwprof from (its subpackages may live in sibling folders: editable mapping)."""
    where = subprocess.run([python, "-P", "-c", "import os, hwprof, hwprof.collectors, hwprof.symbolize, hwprof.web; "
                            "print(*(os.path.dirname(m.__file__) for m in (hwprof, hwprof.collectors, "
                            "hwprof.symbolize, hwprof.web)))"], capture_output=True, text=True, check=True)
    subprocess.run([python, "-m", "compileall", "-q", *where.stdout.split()], capture_output=True, check=False,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})


def capture(tmp: Path, samples: int, hwprof: list[str], name: str = "deep.data") -> Path:
    binary = tmp / "deep"
    if not binary.exists():
        subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary),
                        str(HERE / "workloads" / "deep.c"), "-lpthread"], check=True)
    data = tmp / name
    threads = 2
    seconds = samples / (threads * 20000) * 1.15
    for _ in range(4):
        subprocess.run([*hwprof, "record", "-q", "-e", "cpu-clock", "-c", "50000", "-g", "-o", str(data), "--",
                        str(binary), f"{seconds:.1f}"], check=True)
        got = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                        capture_output=True, text=True, check=True).stdout)["samples"]
        if got >= samples:
            return data
        seconds *= samples / max(got, 1) * 1.1  # a busy machine gave the workload less CPU: run longer
    return data


MODES = {
    "--no-children": (["--no-children"], ["--no-children", "-g", "none"]),
    "children": ([], ["--children", "-g", "none"]),
    "--folded": (["--folded"], ["--children", "-g", "none"]),
}


def compare(name: str, tools: dict[str, list[str]], reps: int) -> dict[str, tuple[float, float]]:
    """Alternate the commands (hwprof, perf, and a baseline hwprof if given) `reps` times; print medians and each
    hwprof's ratios to perf; return {tool: (CPU ratio, memory ratio)}."""
    runs: dict[str, list[Run]] = {tool: [] for tool in tools}
    for _ in range(reps):
        for tool, argv in tools.items():
            runs[tool].append(timed(argv, 8.0 if tool == "perf" else None))
    stats = {}
    for tool, rs in runs.items():
        stats[tool] = (statistics.median(r.wall for r in rs), statistics.median(r.cpu for r in rs),
                       max(r.peak_rss_mib for r in rs), all(r.ok for r in rs))
    for tool, (wall, cpu, rss, ok) in stats.items():
        print(f"  {tool:<7} wall {wall:7.2f} s  cpu {cpu:7.2f} s  peak RSS {rss:8.1f} MiB{'' if ok else '  FAILED'}")
    ratios = {}
    for tool in tools:
        if tool == "perf":
            continue
        cpu_ratio = stats[tool][1] / max(stats["perf"][1], 1e-9)
        mem_ratio = stats[tool][2] / max(stats["perf"][2], 1e-9)
        ratios[tool] = (cpu_ratio, mem_ratio)
        print(f"  {name}: {tool}/perf CPU {cpu_ratio:.2f}x (goal <= 1.0), peak memory {mem_ratio:.2f}x (goal <= 2)")
    return ratios


def cold_payload(hwprof_python: str, data: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds and peak RSS (MiB) to decode, symbolize and build the web payload of a never-opened
    capture, in a fresh process (imports included)."""
    code = ("import sys; from hwprof.pipeline import decode_file; from hwprof.symbolize import Symbolizer; "
            "from hwprof.web.payload import build_payload, dumps_payload; "
            "dumps_payload(build_payload(decode_file(sys.argv[1], Symbolizer())))")
    result = run([hwprof_python, "-P", "-c", code, str(data)], keep_output=False)  # -P: the install, not ./
    return result.wall, result.cpu, result.peak_rss_mib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", help="keep the workload and captures here (reused when present)")
    parser.add_argument("--modes", nargs="*", default=[m.lstrip("-") for m in MODES] + ["startup", "payload"],
                        help="which comparisons: no-children children folded startup payload")
    parser.add_argument("--before", metavar="PYTHON",
                        help="a Python whose `-m hwprof` is a baseline install (e.g. a copy of .venv pointed at an "
                             "older checkout): measured in the same alternation, for before/after numbers")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None or shutil.which("gcc") is None:
        print("needs perf (linux-perf) and gcc", file=sys.stderr)
        return 2
    hwprof = [sys.executable, "-m", "hwprof"]
    for python in (sys.executable, *([args.before] if args.before else [])):
        byte_compile(python)
    with open("/proc/loadavg") as f:
        print(f"load average at start: {' '.join(f.read().split()[:3])} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        data = tmp / "deep.data"
        if not data.exists():
            data = capture(tmp, args.samples, hwprof)
        info = json.loads(subprocess.run([*hwprof, "report", "-i", str(data), "--json", "--raw", "--limit", "1"],
                                         capture_output=True, text=True, check=True).stdout)
        print(f"capture: {info['samples']:,} samples, {data.stat().st_size / 1e6:.1f} MB, {info['quality']['line']}")
        for mode, (ours, theirs) in MODES.items():
            if mode.lstrip("-") in args.modes:
                print(f"{mode}: hwprof report {' '.join(ours)} vs perf report --stdio {' '.join(theirs)}")
                tools = {"hwprof": [*hwprof, "report", "-i", str(data), *ours]}
                if args.before:
                    tools["before"] = [args.before, "-P", "-m", "hwprof", "report", "-i", str(data), *ours]
                tools["perf"] = [perf, "report", "-i", str(data), "--stdio", *theirs]
                compare(mode, tools, args.reps)
        if "startup" in args.modes:
            small = tmp / "small.data"
            if not small.exists():
                small = capture(tmp, 1000, hwprof, "small.data")
            print("start-up (1k samples): hwprof report vs perf report --stdio")
            ours = [timed([*hwprof, "report", "-i", str(small)]).wall for _ in range(args.reps)]
            theirs = [timed([perf, "report", "-i", str(small), "--stdio"]).wall for _ in range(args.reps)]
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(f"  hwprof {statistics.median(ours):.2f} s, perf {statistics.median(theirs):.2f} s wall: "
                  f"{ratio:.2f}x (goal <= 3)")
        if "payload" in args.modes:
            pythons = {"hwprof": sys.executable, **({"before": args.before} if args.before else {})}
            runs: dict[str, list[tuple[float, float, float]]] = {tool: [] for tool in pythons}
            for _ in range(args.reps):
                for tool, python in pythons.items():
                    runs[tool].append(cold_payload(python, data))
            for tool, rs in runs.items():
                wall, cpu = statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)
                print(f"cold web payload of the {info['samples']:,}-sample capture ({tool}): {wall:.2f} s wall, "
                      f"{cpu:.2f} s CPU (goal <= 2 s), peak RSS {max(r[2] for r in rs):.1f} MiB")
    with open("/proc/loadavg") as f:
        print(f"load average at end: {' '.join(f.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
