"""Pure parsing behind `hwprof check`."""

from __future__ import annotations

import builtins

import pytest

from hwprof.commands._check_target import target_checks
from hwprof.errors import HwprofError
from hwprof.preflight import capabilities, check_cpu, cpu_identity

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7713 64-Core Processor
stepping\t: 1
flags\t\t: fpu vme de pse hypervisor lahf_lm

processor\t: 1
vendor_id\t: SomethingElse
"""

INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
flags\t\t: fpu vme arch_perfmon
"""


def test_cpu_identity_reads_the_first_cpu():
    amd = cpu_identity(AMD)
    assert (amd["vendor"], amd["family"], amd["model"], amd["stepping"], amd["hypervisor"]) == (
        "AuthenticAMD", 25, 1, 1, True)
    intel = cpu_identity(INTEL)
    assert (intel["vendor"], intel["family"], intel["model"], intel["hypervisor"]) == ("GenuineIntel", 6, 143, False)
    assert "model 143 (0x8f)" in check_cpu(INTEL).value


def test_capabilities_from_capeff():
    root = capabilities("Name:\tx\nCapEff:\t000001ffffffffff\n")
    assert all(root.values())
    perfmon_only = capabilities(f"CapEff:\t{1 << 38:016x}\n")
    assert perfmon_only["CAP_PERFMON"] and not perfmon_only["CAP_SYS_ADMIN"] and not perfmon_only["CAP_BPF"]
    assert not any(capabilities("CapEff:\t0000000000000000\n").values())


def test_unreadable_target_is_one_line(tmp_path, monkeypatch):
    binary = tmp_path / "app"
    binary.write_bytes(b"\x7fELF")
    real_open = builtins.open

    def denied(path, *args, **kwargs):
        if str(path) == str(binary):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(HwprofError, match=r"cannot read .*/app: Permission denied"):
        target_checks(str(binary))
