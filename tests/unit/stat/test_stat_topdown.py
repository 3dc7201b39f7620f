"""--topdown picks the CPU's level-1 inputs: Intel perf-metrics from sysfs, AMD Zen 4+ as raw pipeline events."""

from __future__ import annotations

import pytest

from hwprof import stat_events as _stat_run
from hwprof.errors import HwprofError
from hwprof.metrics import AMD_TOPDOWN
from hwprof.perf.abi import PerfType


def no_intel_sysfs(monkeypatch):
    real = _stat_run.os.path.exists
    monkeypatch.setattr(_stat_run.os.path, "exists", lambda p: False if "topdown" in str(p) else real(p))


def test_amd_zen4_raw_encodings(monkeypatch):
    no_intel_sysfs(monkeypatch)
    monkeypatch.setattr(_stat_run, "cpu_identity", lambda: ("AuthenticAMD", 25, 0x11))
    group = _stat_run.topdown_group()
    assert group.is_group and [e.name for e in group.events] == list(AMD_TOPDOWN)
    assert all(e.attr.type == PerfType.RAW for e in group.events)
    # amdzen4 pipeline.json: event select low byte, umask at 8, event bits 11:8 at 32-35
    assert [e.attr.config for e in group.events] == [0x76, 0xC1, 0x7AA, 0x1_0000_01A0, 0x1_0000_1EA0]


@pytest.mark.parametrize("identity", [("AuthenticAMD", 25, 0x01), ("AuthenticAMD", 23, 0x31), ("GenuineIntel", 6, 85)])
def test_cpus_without_level_1_say_so(monkeypatch, identity):
    no_intel_sysfs(monkeypatch)
    monkeypatch.setattr(_stat_run, "cpu_identity", lambda: identity)
    with pytest.raises(HwprofError, match="top-down level 1 needs"):
        _stat_run.topdown_group()
