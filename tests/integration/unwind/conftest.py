"""C workloads built without frame pointers, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

WORKLOADS = Path(__file__).parent / "workloads"


@pytest.fixture(scope="session")
def nofp_workloads(compile_c_programs) -> dict[str, Path]:
    return compile_c_programs(WORKLOADS, "unwind-workloads", ["-O2", "-g", "-fomit-frame-pointer"])
