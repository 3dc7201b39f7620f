#!/usr/bin/env python3
"""hwprof list and named-event resolution vs perf list: the same machine, in one run; prints ratios.

Commands timed (wall time, CPU time of the child and its children, peak RSS), median of --reps runs each,
who goes first alternating:
1. `perf list` vs `hwprof list` (everything, each event opened once to mark it).
2. `perf list` vs `PERF_CPUID=<Sapphire Rapids> hwprof list vendor` (400+ named events decoded from the
   shipped data and encoded; another model's events are listed, not opened).
3. `perf list` vs `PERF_CPUID=<Sapphire Rapids> hwprof stat -e task-clock,MEM_LOAD_RETIRED.L3_MISS:pp -- true`
   (start-up, vendor data load, event resolution and a full counting run).
Goal (issue 13): each hwprof time under 2x perf list's. Also prints two floors against the same perf list: the
interpreter alone (`python -c pass`) and `hwprof --version` (the interpreter, the CLI's imports and every
command's parser); and the wheel's size with the vendor data in it.

hwprof runs as users run it, through its `hwprof` console script, installed two ways (--install):
- wheel: the wheel built from this tree (`pip wheel`), unpacked into a fresh venv as pip installs it, its modules
  byte-compiled; the dependencies come from this venv's site-packages through a .pth path line.
- editable: this venv's editable install (`make venv`): setuptools' import finder adds ~20-35 ms to every
  start (pathlib, importlib.util, ... at site time), which a user's install does not have.
CPU time and peak RSS are the command's own (measure.run: wait4() in a small C launcher, workloads/rusage_exec.c;
a child of this Python process would report at least this process's RSS as its peak).
Byte-compile first (`python -m compileall hwprof collectors symbolize web`, as pip does for a wheel) when the
environment sets PYTHONDONTWRITEBYTECODE, or every editable run pays for compiling the sources.

    .venv/bin/python benchmarks/vendor_list_speed.py [--reps 9] [--install both|wheel|editable] [--baseline REV]
                                                     [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run  # noqa: E402  (a sibling module, not a package)

SPR = "GenuineIntel-6-8F-8"
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "hwprof" / "events" / "data"
# What pip writes as the console script of `[project.scripts] hwprof = "hwprof.cli:main"`.
CONSOLE_SCRIPT = """#!{python}
import sys
from hwprof.cli import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""


# perf 6.1's `perf list` here dies of SIGSEGV about once in 30 runs (also outside this script); such a run is
# run again (at most this many times per measurement) and counted in the output, never timed.
PEER_CRASH_RETRIES = 3
peer_crashes: list[str] = []




def measure(argv: list[str], env: dict[str, str], retry_crash: bool = False) -> tuple[float, float, int]:
    """(wall s, user+sys CPU s, peak RSS KiB) of one run (measure.run: the command's own CPU and peak, from the
    rusage launcher; wall includes the launcher's fork, the same for both tools)."""
    for _attempt in range(PEER_CRASH_RETRIES + 1):
        result = run(argv, env=env, check=False, keep_output=False)
        if result.returncode < 0 and retry_crash:
            peer_crashes.append(f"{' '.join(argv)}: signal {-result.returncode}")
            continue
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({result.returncode})")
        return result.wall, result.cpu, result.peak_rss_kib
    raise SystemExit(f"{' '.join(argv)} crashed {PEER_CRASH_RETRIES + 1} times in a row")


def compare(name: str, ours: dict[str, list[str]], ours_env: dict, theirs: list[str], reps: int) -> list[dict]:
    """One case for every install in `ours` (install -> argv) and perf, round-robin with a rotating first runner:
    on a shared machine a busy neighbour then slows them alike. One row per install, against the same perf runs."""
    base = {k: v for k, v in os.environ.items() if k != "PERF_CPUID"}
    runners = [(label, argv, {**base, **ours_env}) for label, argv in ours.items()] + [("perf", theirs, base)]
    runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label, _, _ in runners}
    for rep in range(reps):
        shift = rep % len(runners)
        for label, argv, env in runners[shift:] + runners[:shift]:
            runs[label].append(measure(argv, env, retry_crash=label == "perf"))

    def medians(label: str) -> tuple[float, float, float]:
        return tuple(statistics.median(v[i] for v in runs[label]) for i in range(3))  # type: ignore[return-value]

    def least_cpu(label: str) -> float:
        return min(v[1] for v in runs[label])

    perf_wall, perf_cpu, perf_rss = medians("perf")
    out = []
    for label in ours:
        wall, cpu, rss = medians(label)
        out.append({"case": name, "install": label, "hwprof_wall_s": wall, "hwprof_cpu_s": cpu, "hwprof_rss_kib": rss,
                    "perf_wall_s": perf_wall, "perf_cpu_s": perf_cpu, "perf_rss_kib": perf_rss,
                    "wall_ratio": wall / perf_wall, "cpu_ratio": cpu / perf_cpu, "rss_ratio": rss / perf_rss,
                    # the least CPU of the runs: what the work costs with the least interference from neighbours
                    "hwprof_min_cpu_s": least_cpu(label), "perf_min_cpu_s": least_cpu("perf"),
                    "min_cpu_ratio": least_cpu(label) / least_cpu("perf")})
    return out


def build_wheel(into: Path, revision: str | None = None) -> Path:
    """The wheel of this tree (or of a git revision of it), built as `pip wheel` builds it (isolated build
    environment), from a copy: setuptools writes build/ and *.egg-info into the tree it builds."""
    source = into / "source"
    if revision is None:
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache",
            ".ruff_cache"))
    else:
        source.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(into), str(source)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return next(into.glob("hwprof-*.whl"))


def install_wheel(wheel: Path, into: Path) -> tuple[str, str]:
    """A fresh venv with the wheel unpacked into its site-packages (a pure wheel: what pip does), compiled as pip
    compiles it, and this venv's site-packages on its path for the dependencies. Returns (python, hwprof script)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(into)], check=True)
    python = str(into / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True,
                          capture_output=True, text=True).stdout.strip()
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    Path(site, "hwprof-benchmark-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([python, "-m", "compileall", "-q", str(Path(site, "hwprof"))], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    script = into / "bin" / "hwprof"
    script.write_text(CONSOLE_SCRIPT.format(python=python))
    script.chmod(0o755)
    return python, str(script)


def wheel_data_bytes(wheel: Path) -> tuple[int, int]:
    """(compressed bytes of hwprof/events/data/ in the wheel, the wheel's size)."""
    with zipfile.ZipFile(wheel) as archive:
        data = sum(i.compress_size for i in archive.infolist() if i.filename.startswith("hwprof/events/data/"))
    return data, wheel.stat().st_size


def run_cases(installs: dict[str, tuple[str, str]], perf: str, reps: int) -> list[dict]:
    """Every case for every install (label -> (python, hwprof script)), each case interleaved across them."""
    named = ["stat", "-e", "task-clock,MEM_LOAD_RETIRED.L3_MISS:pp", "--", "/bin/true"]
    cases = [
        ("floor: python -c pass", lambda python, hwprof: [python, "-c", "pass"], {}),
        ("floor: hwprof --version", lambda python, hwprof: [hwprof, "--version"], {}),
        ("list (everything)", lambda python, hwprof: [hwprof, "list"], {}),
        ("list vendor (SPR via PERF_CPUID)", lambda python, hwprof: [hwprof, "list", "vendor"], {"PERF_CPUID": SPR}),
        ("stat named event (SPR)", lambda python, hwprof: [hwprof, *named], {"PERF_CPUID": SPR}),
    ]
    out: list[dict] = []
    for name, argv, env in cases:
        out += compare(name, {label: argv(*paths) for label, paths in installs.items()}, env, [perf, "list"], reps)
    return sorted(out, key=lambda row: list(installs).index(row["install"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--install", choices=("both", "wheel", "editable"), default="both")
    parser.add_argument("--baseline", metavar="REV",
                        help="also measure the wheel of this git revision (before/after in one run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed")
    wheel_sizes: tuple[int, int] | None = None
    with tempfile.TemporaryDirectory(prefix="hwprof-list-bench-") as tmp:
        installs: dict[str, tuple[str, str]] = {}
        if args.baseline:
            wheel = build_wheel(Path(tmp, "dist-baseline"), args.baseline)
            installs[f"wheel@{args.baseline}"] = install_wheel(wheel, Path(tmp, "venv-baseline"))
        if args.install in ("both", "wheel"):
            wheel = build_wheel(Path(tmp, "dist"))
            wheel_sizes = wheel_data_bytes(wheel)
            installs["wheel"] = install_wheel(wheel, Path(tmp, "venv"))
        if args.install in ("both", "editable"):
            script = str(Path(sys.executable).parent / "hwprof")
            if not os.path.exists(script):
                raise SystemExit(f"{script} is missing: run 'make venv' (an editable install) first")
            installs["editable"] = (sys.executable, script)
        cases = run_cases(installs, perf, args.reps)
    size = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"cases": cases, "data_bytes": size, "wheel_data_and_size_bytes": wheel_sizes,
                          "loadavg": load, "peer_crashes": peer_crashes}, indent=1))
        return 0
    print(f"machine load (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.reps} runs each, medians")
    for c in cases:
        print(f"{c['install']:<15} {c['case']:<33} hwprof {c['hwprof_wall_s'] * 1e3:6.1f} ms wall "
              f"{c['hwprof_cpu_s'] * 1e3:6.1f} ms CPU {c['hwprof_rss_kib'] / 1024:5.1f} MiB | perf list "
              f"{c['perf_wall_s'] * 1e3:6.1f} ms wall {c['perf_cpu_s'] * 1e3:6.1f} ms CPU "
              f"{c['perf_rss_kib'] / 1024:5.1f} MiB | ratio wall {c['wall_ratio']:.2f} CPU {c['cpu_ratio']:.2f} "
              f"RSS {c['rss_ratio']:.2f} | least CPU {c['hwprof_min_cpu_s'] * 1e3:6.1f} / "
              f"{c['perf_min_cpu_s'] * 1e3:5.1f} ms = {c['min_cpu_ratio']:.2f}")
    print(f"shipped vendor data: {size / 1e6:.2f} MB in the tree ({DATA})")
    if wheel_sizes is not None:
        print(f"wheel: {wheel_sizes[1] / 1e6:.2f} MB, of which the vendor data {wheel_sizes[0] / 1e6:.2f} MB")
    if peer_crashes:
        print(f"perf crashed {len(peer_crashes)} time(s) and was run again (not timed): {'; '.join(peer_crashes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
