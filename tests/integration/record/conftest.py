"""Workloads (C, frame pointers on) compiled once per session, and a runner for the hwprof CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).parent / "workloads"


@pytest.fixture(scope="session")
def workloads(tmp_path_factory) -> dict[str, Path]:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed (make apt-test installs it)")
    out = tmp_path_factory.mktemp("workloads")
    os.chmod(out, 0o755)
    built = {}
    for source in sorted(WORKLOADS.glob("*.c")):
        binary = out / source.stem
        subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(binary), str(source), "-lpthread"],
                       check=True)
        built[source.stem] = binary
    return built


@pytest.fixture
def store_env(tmp_path) -> dict[str, str]:
    home = tmp_path / "store"
    return {**os.environ, "HWPROF_HOME": str(home)}
