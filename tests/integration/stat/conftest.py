"""Fixtures for `hwprof stat` against the real kernel: small C programs compiled once per session."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from stat_helpers import SCHEMA_PATH, hwprof_stat

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> dict[str, str]:
    """name -> path of the compiled test program (writer, faults, spin, threads)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (make test installs gcc)")
    out = tmp_path_factory.mktemp("stat-programs")
    built = {}
    for source in sorted(PROGRAMS.glob("*.c")):
        binary = out / source.stem
        subprocess.run([cc, "-O1", "-pthread", "-o", str(binary), str(source)], check=True)
        built[source.stem] = str(binary)
    return built


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


