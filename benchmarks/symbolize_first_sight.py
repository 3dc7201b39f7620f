#!/usr/bin/env python3
"""First sight of a binary: what the symbolizer pays the first time a sample lands in it, and once it is cached.

`hwprof agent` meets every binary of a machine; the first sample in each builds its symbol table (.symtab/.dynsym,
PLT, .eh_frame's unnamed functions) and, where it has DWARF, its SymCache index, then caches both on disk. Per binary,
one process each (measure.run: CPU of the process and its peak RSS):

  hwprof first    a fresh Symbolizer and an empty cache directory symbolize one address of the binary
  hwprof agent    the first run as hwprof agent's symbolizer does it: the DWARF index built after the symbol
                  table rather than beside it (a lower peak RSS, more wall time)
  hwprof cached   the same with the cache filled by the first run
  baseline first  the first run with hwprof's code of --baseline REV (git archive of that revision), e.g. the
                  commit before the numpy build, so before and after are measured in one run
  nm -n           the peer for the symbol table: binutils reads and sorts the same symbols (-D: a stripped binary's)
  addr2line -f    the peer for one address with DWARF (binaries that have it)

`build` is the CPU the symbolize call itself took inside the process (all threads), without Python's start and
imports. Each command runs --repeat times, interleaved; the best run counts (the machine is shared).

  .venv/bin/python benchmarks/symbolize_first_sight.py [--baseline REV] [--repeat N] [BINARY ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from measure import run  # noqa: E402  (a sibling module, not a package)

CHILD = r"""
import sys, time
binary, cache = sys.argv[1], sys.argv[2]
import numpy as np
from hwprof.symbolize import Symbolizer
from hwprof.symbolize.elf import open_image
code = next(seg for seg in open_image(binary).segments if seg.executable)
offset = np.array([code.offset + code.filesz // 2], dtype=np.uint64)
start = time.process_time()
options = {"overlap_index_builds": False} if sys.argv[3:] == ["agent"] else {}
chain = Symbolizer(cache_dir=cache, debuginfod=False, **options).symbolize_offsets(binary, offset)[0]
print(f"build={time.process_time() - start:.4f} name={chain[-1].function}")
"""


def default_binaries() -> list[str]:
    numpy_core = sorted(glob.glob(os.path.join(os.path.dirname(_numpy_file()), "_core", "_multiarray_umath*.so")))
    libdir = sysconfig.get_config_var("LIBDIR") or "/usr/lib/x86_64-linux-gnu"
    candidates = ["/usr/bin/node", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "/usr/lib/chromium/chromium",
                  os.path.join(libdir, "libpython3.11.so.1.0"), *numpy_core[:1], "/usr/lib/x86_64-linux-gnu/libc.so.6",
                  "/usr/bin/bash"]
    return [path for path in candidates if os.path.exists(path)]


def _numpy_file() -> str:
    import numpy

    return numpy.__file__


def baseline_tree(rev: str, into: Path) -> Path:
    """hwprof's packages at `rev`, laid out as installed (hwprof/symbolize, hwprof/collectors, hwprof/web)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "hwprof", "symbolize", "collectors", "web"],
                             capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for folder in ("symbolize", "collectors", "web"):
        os.replace(into / folder, into / "hwprof" / folder)
    return into


def _build_cpu(stdout: str) -> tuple[float, str]:
    fields = dict(part.split("=", 1) for part in stdout.split(maxsplit=1))
    return float(fields["build"]), fields.get("name", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", help="a git revision whose hwprof to measure beside this one")
    args = parser.parse_args()
    binaries = args.binaries or default_binaries()
    nm, addr2line = shutil.which("nm"), shutil.which("addr2line")
    if not nm or not addr2line:
        sys.exit("needs nm and addr2line (binutils)")
    work = Path(tempfile.mkdtemp(prefix="hwprof-firstsight-"))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    old_env = None
    if args.baseline:
        old_env = {**env, "PYTHONPATH": str(baseline_tree(args.baseline, work / "baseline"))}
    python = [sys.executable, "-P", "-c", CHILD]  # -P: not the checkout in the current directory before PYTHONPATH
    for warm_env in (env, old_env):  # compile each tree's modules once, as an installed package has them
        if warm_env is not None:
            run([*python, "/usr/bin/true", str(work / "warm")], env=warm_env)
    print(f"best of {args.repeat}; CPU s (process) / build s (the symbolize call) / peak RSS MiB")
    header = f"{'binary':<22}{'MB':>6}  {'tool':<16}{'cpu s':>8}{'build s':>9}{'RSS MiB':>9}{'cpu/nm':>8}{'rss/nm':>8}"
    print(header)
    try:
        for binary in binaries:
            results: dict[str, list[tuple[float, float, float, str]]] = {}
            for rep in range(args.repeat):
                def record(name: str, argv: list[str], run_env=None, build: bool = False, keep=True,
                           into=results) -> None:
                    measured = run(argv, env=run_env, keep_output=keep)
                    cpu_inside, label = _build_cpu(measured.stdout) if build else (float("nan"), "")
                    into.setdefault(name, []).append((measured.cpu, cpu_inside, measured.peak_rss_mib, label))

                fresh = work / f"cache-{rep}"
                if old_env is not None:
                    record("baseline first", [*python, binary, str(work / f"old-{rep}")], old_env, build=True)
                record("hwprof first", [*python, binary, str(fresh)], env, build=True)
                record("hwprof agent", [*python, binary, str(work / f"agent-{rep}"), "agent"], env, build=True)
                record("hwprof cached", [*python, binary, str(fresh)], env, build=True)
                record("nm -n", [nm, "-n", *_dynamic_if_stripped(binary), binary], keep=False)
                address = _middle_of_text(binary)
                record("addr2line -f", [addr2line, "-f", "-i", "-e", binary, address], keep=False)
                shutil.rmtree(fresh, ignore_errors=True)
                shutil.rmtree(work / f"agent-{rep}", ignore_errors=True)
                shutil.rmtree(work / f"old-{rep}", ignore_errors=True)
            best = {name: (min(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs), runs[0][3])
                    for name, runs in results.items()}
            ref_cpu, _, ref_rss, _ = best["nm -n"]
            size = os.path.getsize(binary) / 1e6
            for name, (cpu, inside, rss, _label) in best.items():
                build = f"{inside:>9.3f}" if inside == inside else f"{'':>9}"
                print(f"{Path(binary).name[:21]:<22}{size:>6.0f}  {name:<16}{cpu:>8.3f}{build}{rss:>9.0f}"
                      f"{cpu / ref_cpu:>8.2f}{rss / ref_rss:>8.2f}")
            if "baseline first" in best and best["baseline first"][3] != best["hwprof first"][3]:
                print(f"  DIFFERENT NAMES: baseline {best['baseline first'][3]!r}, now {best['hwprof first'][3]!r}")
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _dynamic_if_stripped(binary: str) -> list[str]:
    """nm reads .symtab; a stripped binary's names are its dynamic symbols (-D), which is what hwprof reads there."""
    sys.path.insert(0, str(REPO))
    from hwprof.symbolize.elf import open_image

    return [] if open_image(binary).has_symtab else ["-D"]


def _middle_of_text(binary: str) -> str:
    sys.path.insert(0, str(REPO))
    from hwprof.symbolize.elf import open_image

    image = open_image(binary)
    code = next(seg for seg in image.segments if seg.executable)
    return f"{code.vaddr + code.filesz // 2:#x}"


if __name__ == "__main__":
    sys.exit(main())
