"""A fake sysfs PMU tree and tracefs, so PMU-term encoding is tested for PMUs this VM does not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwprof.events.pmu import PmuRegistry


def _pmu(root: Path, name: str, type_: int, formats: dict[str, str], events: dict[str, str],
         extra: dict[str, str] | None = None) -> None:
    base = root / name
    (base / "format").mkdir(parents=True)
    (base / "events").mkdir()
    (base / "type").write_text(f"{type_}\n")
    for key, value in formats.items():
        (base / "format" / key).write_text(value + "\n")
    for key, value in events.items():
        (base / "events" / key).write_text(value + "\n")
    for key, value in (extra or {}).items():
        (base / key).write_text(value + "\n")


@pytest.fixture
def sysfs(tmp_path: Path) -> PmuRegistry:
    root = tmp_path / "devices"
    intel_formats = {"event": "config:0-7", "umask": "config:8-15", "edge": "config:18", "inv": "config:23",
                     "cmask": "config:24-31", "ldlat": "config1:0-15", "frontend": "config1:0-23"}
    _pmu(root, "cpu", 4, intel_formats, {
        "cpu-cycles": "event=0x3c", "instructions": "event=0xc0", "mem-loads": "event=0xcd,umask=0x1,ldlat=3",
        "topdown-retiring": "event=0x00,umask=0x80", "topdown-retiring.scale": "4", "slots": "event=0x00,umask=0x4",
    })
    _pmu(root, "amd_like", 11, {"event": "config:0-7,32-35", "umask": "config:8-15"}, {})
    _pmu(root, "power", 23, {"event": "config:0-7"},
         {"energy-pkg": "event=0x02", "energy-pkg.scale": "2.3283064365386962890625e-10",
          "energy-pkg.unit": "Joules", "energy-cores": "event=0x01", "energy-cores.unit": "Joules"},
         {"cpumask": "0"})
    for index in range(2):
        _pmu(root, f"uncore_imc_{index}", 30 + index, {"event": "config:0-7", "umask": "config:8-15"},
             {"cas_count_read": "event=0x04,umask=0x03", "cas_count_read.scale": "64",
              "cas_count_read.unit": "bytes"}, {"cpumask": "0,4"})
    _pmu(root, "software", 1, {}, {})
    _pmu(root, "tracepoint", 2, {}, {})
    return PmuRegistry(str(root))


@pytest.fixture
def fake_tracefs(tmp_path: Path) -> str:
    root = tmp_path / "tracing"
    for system, name, ident in (("sched", "sched_switch", 316), ("sched", "sched_wakeup", 318),
                                ("syscalls", "sys_enter_write", 840), ("syscalls", "sys_exit_write", 839)):
        directory = root / "events" / system / name
        directory.mkdir(parents=True)
        (directory / "id").write_text(f"{ident}\n")
    return str(root)
