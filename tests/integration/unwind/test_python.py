"""`hwprof record --python`: Python functions in order among native and kernel frames, through CPython's perf
trampolines (3.12 -X perf: perf map; 3.13 -X perf_jit: jitdump read directly, no inject step), on a recursive
workload with a known 3:1 split between two Python callers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hwprof.symbolize.jit_unwind import CFI_SOURCE, STACK_EFFECT_SOURCE

WORKLOAD = Path(__file__).parent / "workloads" / "rec31.py"
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
MAINS = ("main", "__libc_start_call_main", "Py_BytesMain")


def interpreter(version: str) -> str:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no CPython {version} under {PYENV} (pyenv install {version})")
    return str(found[-1])


def record(tmp_path: Path, *args: str) -> tuple[Path, str]:
    data = tmp_path / "py.data"
    proc = subprocess.run([sys.executable, "-m", "hwprof", "record", "-F", "999", "-o", str(data), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return data, proc.stderr


def folded(data: Path) -> Counter:
    out = subprocess.run([sys.executable, "-m", "hwprof", "report", "-i", str(data), "--folded"], capture_output=True,
                         text=True, check=True).stdout
    stacks: Counter = Counter()
    for line in out.splitlines():
        stack, _, count = line.rpartition(" ")
        stacks[stack] += int(count)
    return stacks


def report_json(data: Path) -> dict:
    return json.loads(subprocess.run([sys.executable, "-m", "hwprof", "report", "-i", str(data), "--json", "--limit",
                                      "0"], capture_output=True, text=True, check=True).stdout)


def shares(stacks: Counter) -> tuple[float, float]:
    """(caller_a's share of the two callers, share of samples reaching the interpreter's main)."""
    a = sum(c for s, c in stacks.items() if any(f.startswith("py::caller_a:") for f in s.split(";")))
    b = sum(c for s, c in stacks.items() if any(f.startswith("py::caller_b:") for f in s.split(";")))
    main = sum(c for s, c in stacks.items() if set(s.split(";")) & set(MAINS))
    return 100.0 * a / max(a + b, 1), main / max(sum(stacks.values()), 1)


@pytest.mark.parametrize(("version", "mechanism"), [("3.12", "-X perf"), ("3.13", "-X perf_jit")])
def test_python_callers_split_three_to_one_and_reach_main(tmp_path, version, mechanism):
    data, stderr = record(tmp_path, "--python", "--", interpreter(version), str(WORKLOAD), "40", "1.0")
    assert mechanism in stderr and "32768 bytes of stack per sample" in stderr
    stacks = folded(data)
    split, main = shares(stacks)
    assert sum(stacks.values()) > 200
    assert abs(split - 75.0) <= 5.0, (split, stacks.most_common(3))
    assert main >= 0.90
    # in order: main's Python caller above the callers, the recursion below them, the hot function at the end
    top = max((s for s in stacks if "py::hot:" in s), key=stacks.get).split(";")
    py = [f.split(":")[2] if f.count(":") >= 2 else f for f in top if f.startswith("py::")]
    assert py[:3] in (["<module>", "main", "caller_a"], ["<module>", "main", "caller_b"]), py
    assert py[-1] == "hot" and py.count("descend") == 21
    if version == "3.13":
        assert list((tmp_path / "py.data.jit").glob("jit-*.dump")), "the jitdump is copied into the capture"
    # which path unwound the trampolines: 3.13 writes CFI for each (jitdump unwinding info), 3.12's perf map has none
    way = [n for n in report_json(data)["notes"] if "JIT code unwound" in n]
    expected = CFI_SOURCE if version == "3.13" else STACK_EFFECT_SOURCE
    assert way and all(expected in n and "entries by" in n for n in way), way
    assert not any((STACK_EFFECT_SOURCE if version == "3.13" else CFI_SOURCE) in n for n in way), way


def test_older_python_is_explained_and_its_native_stack_still_complete(tmp_path):
    data, stderr = record(tmp_path, "--python", "--", interpreter("3.11"), str(WORKLOAD), "10")
    assert "has no perf support" in stderr and "3.12" in stderr
    _, main = shares(folded(data))
    assert main >= 0.90


def test_a_too_small_stack_copy_is_reported_never_silently(tmp_path):
    data, _ = record(tmp_path, "--call-graph", "dwarf,4096", "--", interpreter("3.12"), "-X", "perf",
                     str(WORKLOAD), "10")
    report = report_json(data)
    assert report["quality"]["truncated"] > 0.5 * report["samples"]
    assert any("stack copy too small" in n and "--call-graph dwarf," in n for n in report["notes"])
