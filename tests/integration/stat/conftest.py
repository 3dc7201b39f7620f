"""Fixtures for `hwprof stat` against the real kernel: small C programs compiled once per session."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from stat_helpers import SCHEMA_PATH, hwprof_stat

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(scope="session")
def programs(compile_c_programs) -> dict[str, str]:
    """name -> path of the compiled test program (writer, faults, spin, threads)."""
    return {name: str(binary) for name, binary in
            compile_c_programs(PROGRAMS, "stat-programs", ["-O1", "-pthread"]).items()}


@pytest.fixture
def stat_json(tmp_path):
    """Run `hwprof stat --json -o FILE ARGV...`; return (document, completed process)."""
    def run(*argv: str, timeout: float = 60) -> tuple[dict, subprocess.CompletedProcess]:
        path = tmp_path / "stat.json"
        proc = hwprof_stat("--json", "-o", str(path), *argv, timeout=timeout)
        assert path.exists(), proc.stderr
        return json.loads(path.read_text()), proc
    return run


@pytest.fixture(scope="session")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


