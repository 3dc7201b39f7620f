"""Helpers for the web tier's tests: store entries with known content, a real perf recording, screenshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hwprof.store import ProfileStore, StoreEntry

REPO = Path(__file__).resolve().parents[3]
OUTPUT = REPO / "tests" / "output" / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

WORKLOAD_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) double inner(long n) {
    double s = 0; for (long i = 0; i < n; i++) s += (double)i * 0.5; return s;
}
__attribute__((noinline)) double heavy(long n) { double r = inner(n * 3); return r + 1; }
__attribute__((noinline)) double light(long n) { double r = inner(n); return r + 1; }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 4000000; double t = 0;
    for (int r = 0; r < 20; r++) { t += heavy(n); t += light(n); }
    printf("%f\n", t); return 0;
}
"""


def add_profile(store: ProfileStore, profile, name: str, created: float) -> StoreEntry:
    entry_id, path = store.reserve("record", "npz")
    profile.save(path)
    return store.add(StoreEntry(id=entry_id, kind="record", file=path.name, created=created, name=name,
                                target=profile.meta.target, events=list(profile.meta.events),
                                samples=profile.n_samples, duration_ns=profile.meta.duration_ns))


def recursive_profile():
    """main -> walk -> walk -> walk -> leaf (60 samples) and main -> walk -> leaf (40): walk recurses."""
    from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta

    b = ProfileBuilder(ProfileMeta(target="./tree", events=["task-clock"]))
    main, walk, leaf = (b.frame(function=name, module="/usr/bin/tree", address=0x100 * (i + 1), kind=FrameKind.USER)
                        for i, name in enumerate(("main", "walk", "leaf")))
    deep, shallow = b.stack([main, walk, walk, walk, leaf]), b.stack([main, walk, leaf])
    for i in range(100):
        b.sample(time=1000 + i, pid=1, tid=1, cpu=0, stack=deep if i < 60 else shallow, period=1.0)
    return b.build()


def stat_document() -> dict:
    return {
        "version": 1, "target": "./work", "command": ["./work"], "duration_ns": 900_000_000,
        "events": [
            {"name": "task-clock", "value": 899.5, "unit": "msec", "enabled_ns": 900_000_000,
             "running_ns": 900_000_000, "supported": True},
            {"name": "page-faults", "value": 120, "unit": "", "enabled_ns": 900_000_000, "running_ns": 450_000_000,
             "supported": True},
            {"name": "cycles", "value": None, "unit": "", "enabled_ns": 0, "running_ns": 0, "supported": False},
        ],
        "metrics": [{"name": "CPUs utilized", "value": 0.999, "unit": "", "uncertainty": 0.02}],
        "per_thread": [{"tid": 4242, "comm": "<b>work</b>", "events": [
            {"name": "task-clock", "value": 899.5, "unit": "msec", "enabled_ns": 1, "running_ns": 1}]}],
        "intervals": [{"time_ns": 100_000_000 * (i + 1),
                       "events": [{"name": "task-clock", "value": 99.0 + i % 3, "unit": "msec"},
                                  {"name": "page-faults", "value": float(10 + 3 * i), "unit": ""}]}
                      for i in range(9)],
        "notes": [],
    }


def perf_recording(tmp: Path) -> Path | None:
    """A real `perf record -g` of a small C workload, or None when perf or a compiler is missing."""
    if not (shutil.which("perf") and shutil.which("gcc")):
        return None
    src = tmp / "work.c"
    src.write_text(WORKLOAD_C)
    exe = tmp / "work"
    subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(exe), str(src)], check=True)
    data = tmp / "perf.data"
    done = subprocess.run(["perf", "record", "-q", "-F", "999", "-g", "-e", "cpu-clock", "-o", str(data), str(exe)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not data.exists():
        return None
    return data



def offcpu_recording(tmp: Path) -> Path | None:
    """A real `hwprof record --off-cpu` of the record tier's offcpu_split workload (two callers sleeping 30 and 10
    ms), or None where it cannot be made (not root: no sched tracepoints; no compiler)."""
    if os.geteuid() != 0 or not shutil.which("gcc"):
        return None
    source = Path(__file__).resolve().parents[1] / "record" / "workloads" / "offcpu_split.c"
    exe = tmp / "offcpu_split"
    subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(exe), str(source), "-lpthread"],
                   check=True)
    data = tmp / "offcpu.perf.data"
    done = subprocess.run([sys.executable, "-m", "hwprof", "record", "-q", "--off-cpu", "-o", str(data), "--",
                           str(exe), "6"], capture_output=True, text=True, timeout=180)
    return data if done.returncode == 0 and data.exists() else None


def shot(pg, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path
