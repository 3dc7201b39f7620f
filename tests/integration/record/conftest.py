"""Workloads (C, frame pointers on) compiled once per session, and a runner for the hwprof CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).parent / "workloads"


@pytest.fixture(scope="session")
def workloads(compile_c_programs) -> dict[str, Path]:
    return compile_c_programs(WORKLOADS, "workloads", ["-O0", "-g", "-fno-omit-frame-pointer"], libs=["-lpthread"])


@pytest.fixture
def store_env(tmp_path) -> dict[str, str]:
    home = tmp_path / "store"
    return {**os.environ, "HWPROF_HOME": str(home)}
