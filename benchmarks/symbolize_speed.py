#!/usr/bin/env python3
"""Symbolizer speed: hwprof addr2line against addr2line and llvm-symbolizer on the same addresses.

The work: 10,000 unique addresses in .text of this machine's own libpython3.11.so.1.0 (built -O3 -g,
about 9 MB of DWARF 5), symbolized with inline chains (-f -i) by each tool, one process per run.

  cold   hwprof with an empty index cache (builds the index, then answers)
  warm   hwprof with the index cached on disk
  bulk   in-process lookups in the warm index: Symbolizer.symbolize_offsets (frames) and the raw
         numpy index (searchsorted + inline walk) on 1M addresses

Each command runs REPEAT times, interleaved; the best run counts (the machine may be shared).
Both wall time and CPU time (user+sys of the child) are reported, as ratios to llvm-symbolizer.

  .venv/bin/python benchmarks/symbolize_speed.py [--repeat N] [--binary PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from measure import run  # noqa: E402  (a sibling module, not a package)


def _text_range(binary: str) -> tuple[int, int]:
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\]\s+\.text\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out)
    if not m:
        sys.exit(f"{binary}: no .text section")
    return int(m.group(1), 16), int(m.group(2), 16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    default_binary = os.path.join(sysconfig.get_config_var("LIBDIR") or "", "libpython3.11.so.1.0")
    parser.add_argument("--binary", default=default_binary)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()

    binary = args.binary
    if not os.path.exists(binary):
        sys.exit(f"{binary}: not found (give --binary)")
    llvm = shutil.which("llvm-symbolizer")
    addr2line = shutil.which("addr2line")
    if not llvm or not addr2line:
        sys.exit("needs llvm-symbolizer (llvm) and addr2line (binutils)")
    # An installed package carries compiled bytecode; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would recompile hwprof on every run, which is not what users see.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "hwprof", "symbolize", "collectors", "web"],
                   cwd=REPO, capture_output=True, check=False)

    low, size = _text_range(binary)
    rng = random.Random(20261127)
    addrs = sorted(rng.sample(range(low, low + size), args.count))
    stdin = ("\n".join(f"{a:#x}" for a in addrs) + "\n").encode()
    hwprof = [sys.executable, "-m", "hwprof", "addr2line", "-f", "-i", "-e", binary]

    work = Path(tempfile.mkdtemp(prefix="hwprof-symbench-"))
    results: dict[str, list[tuple[float, float]]] = {"llvm-symbolizer": [], "addr2line": [], "hwprof cold": [],
                                                     "hwprof warm": []}
    outputs: dict[str, str] = {}
    warm_cache = work / "warm"
    run([*hwprof, "--cache-dir", str(warm_cache)], stdin=stdin)  # fill the warm cache once
    for i in range(args.repeat):
        for name, argv in (
            ("llvm-symbolizer", [llvm, f"--obj={binary}", "-f", "-i"]),
            ("addr2line", [addr2line, "-f", "-i", "-e", binary]),
            ("hwprof cold", [*hwprof, "--cache-dir", str(work / f"cold{i}")]),
            ("hwprof warm", [*hwprof, "--cache-dir", str(warm_cache)]),
        ):
            measured = run(argv, stdin=stdin)
            results[name].append((measured.wall, measured.cpu))
            outputs[name] = measured.stdout
        shutil.rmtree(work / f"cold{i}", ignore_errors=True)

    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in results.items()}
    ref_wall, ref_cpu = best["llvm-symbolizer"]
    print(f"binary: {binary} ({os.path.getsize(binary) / 1e6:.1f} MB), {len(addrs)} unique .text addresses, "
          f"-f -i, best of {args.repeat}")
    print(f"{'tool':<18}{'wall s':>9}{'cpu s':>9}{'wall/llvm':>11}{'cpu/llvm':>10}")
    for name, (wall, cpu) in best.items():
        print(f"{name:<18}{wall:>9.3f}{cpu:>9.3f}{wall / ref_wall:>11.2f}{cpu / ref_cpu:>10.2f}")
    same_lines = outputs["hwprof warm"].count("\n") == outputs["hwprof cold"].count("\n")
    print(f"cold and warm outputs identical: {outputs['hwprof warm'] == outputs['hwprof cold'] and same_lines}")

    # Bulk lookups inside one process, warm index.
    sys.path.insert(0, str(REPO))
    import numpy as np
    from hwprof.symbolize import Symbolizer
    from hwprof.symbolize.elf import open_image

    sym = Symbolizer(cache_dir=str(warm_cache))
    image = open_image(binary)
    offsets, _ = image.vaddr_to_offset(np.array(addrs, dtype=np.uint64))
    sym.symbolize_offsets(binary, offsets[:10])  # load the index
    start = time.perf_counter()
    sym.symbolize_offsets(binary, offsets)
    frames_rate = len(offsets) / (time.perf_counter() - start)
    module = sym._module(binary, None).index
    many = np.random.default_rng(7).integers(low, low + size, 1_000_000, dtype=np.uint64)
    rel = many - np.uint64(0)
    start = time.perf_counter()
    module.symbols.lookup(many)
    module.dwarf.leaf_locations(rel)
    raw_rate = len(many) / (time.perf_counter() - start)
    print(f"bulk symbolize_offsets (frames, warm, {len(offsets)} new addresses): {frames_rate:,.0f} addresses/s")
    print(f"bulk raw index lookup (symbols + DWARF leaf, 1M addresses): {raw_rate:,.0f} addresses/s")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
