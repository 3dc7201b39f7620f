"""Fixtures for the probe tests: compiled target programs and a way to run `hwprof probe`.

Uprobes, kprobes and raw tracepoint samples need root (CAP_PERFMON) whatever perf_event_paranoid says, so these
tests skip, saying so, when not run as root; test_probe_errors.py covers what an unprivileged user gets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> dict[str, str]:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("probe-programs")
    built = {}
    for source in sorted(PROGRAMS.iterdir()):
        compiler = "g++" if source.suffix == ".cpp" else "gcc"
        binary = out / source.stem
        subprocess.run([compiler, "-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o", str(binary),
                        str(source)], check=True)
        built[source.stem] = str(binary)
    stripped = out / "calls-stripped"
    shutil.copy(built["calls"], stripped)
    subprocess.run(["strip", "-s", str(stripped)], check=True)
    built["calls-stripped"] = str(stripped)
    return built


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("uprobes/kprobes need root or CAP_PERFMON (kernel.perf_event_paranoid does not lower this)")
