"""Fixtures for the probe tests: compiled target programs and a way to run `hwprof probe`.

Uprobes, kprobes and raw tracepoint samples need root (CAP_PERFMON) whatever perf_event_paranoid says, so these
tests skip, saying so, when not run as root; test_probe_errors.py covers what an unprivileged user gets.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from probe_helpers import build_programs


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> dict[str, str]:
    prebuilt = os.environ.get("HWPROF_PROBE_PROGRAMS")
    if prebuilt:
        # The VM tier compiles on the host (gcc under TCG is slow) and shares the directory with the guest.
        return {p.name: str(p) for p in Path(prebuilt).iterdir() if p.is_file()}
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("probe-programs")
    return build_programs(out)


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("uprobes/kprobes need root or CAP_PERFMON (kernel.perf_event_paranoid does not lower this)")
