"""Running the hwprof CLI and finding perf, for the record tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def run_hwprof(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "hwprof", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"hwprof {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def need_perf() -> str:
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make apt-test installs linux-perf)")
    return perf
