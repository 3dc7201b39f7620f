"""The CPU model string vendor data is looked up by, in perf's format, and perf's `PERF_CPUID` override.

perf (tools/perf/arch/x86/util/header.c) writes it as `VENDOR-FAMILY-MODEL-STEPPING` with the family in decimal
and model and stepping in upper-case hex: `GenuineIntel-6-55-4` (Skylake-SP), `AuthenticAMD-25-1-1` (Zen 3).
Mapfile rows are regular expressions over that string; a row without a stepping matches every stepping.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from hwprof.perf.syscall import read_text

ENV_OVERRIDE = "PERF_CPUID"
# compiled on first use (re's cache): only PERF_CPUID is parsed with it
_CPUID_PATTERN = r"^(\w+)-(\d+)-([0-9A-Fa-f]+)(?:-([0-9A-Fa-f]+))?$"
_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")  # a mapfile pattern without these is plain text


class CpuidError(ValueError):
    pass


@dataclass(frozen=True)
class CpuId:
    vendor: str      # GenuineIntel, AuthenticAMD, ...
    family: int
    model: int
    stepping: int | None
    overridden: bool = False  # came from PERF_CPUID, not from this machine
    midr: int | None = None   # arm64: the MIDR_EL1 value perf uses as the CPU id (0x00000000410fd0c1)

    @property
    def text(self) -> str:
        if self.midr is not None:
            return f"0x{self.midr:016x}"
        base = f"{self.vendor}-{self.family}-{self.model:X}"
        return base if self.stepping is None else f"{base}-{self.stepping:X}"

    @property
    def without_stepping(self) -> str:
        if self.midr is not None:  # perf's arm64 rule: variant [23:20] and revision [3:0] do not choose tables
            return f"0x{self.midr & ~0xF0000F:016x}"
        return f"{self.vendor}-{self.family}-{self.model:X}"

    @property
    def is_arm(self) -> bool:
        return self.midr is not None

    @property
    def is_intel(self) -> bool:
        return self.vendor == "GenuineIntel"

    @property
    def is_amd(self) -> bool:
        return self.vendor in ("AuthenticAMD", "HygonGenuine")

    def matches(self, pattern: str) -> bool:
        """perf's rule: the mapfile regex matches the whole string, or the string without its stepping.

        Most mapfile rows are plain text (`GenuineIntel-6-8F`): those are compared as text, which is what the
        regex would do, without compiling ~130 regexes on every start (20 ms of `hwprof stat -e NAME`)."""
        if pattern.isascii() and not _REGEX_SPECIAL.intersection(pattern):
            wanted = pattern.lower()
            return self.text.lower() == wanted or self.without_stepping.lower() == wanted
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error:
            return False
        return bool(regex.fullmatch(self.text) or regex.fullmatch(self.without_stepping))


def parse_cpuid(text: str, overridden: bool = True) -> CpuId:
    arm = re.fullmatch(r"0x([0-9a-fA-F]{1,16})", text.strip())
    if arm:  # arm64: perf's CPU id is the MIDR_EL1 register
        midr = int(arm.group(1), 16)
        return CpuId("ARM", 0, (midr >> 4) & 0xFFF, midr & 0xF, overridden, midr=midr)
    m = re.match(_CPUID_PATTERN, text.strip())
    if not m:
        raise CpuidError(f"{ENV_OVERRIDE}='{text}' is not VENDOR-FAMILY-MODEL[-STEPPING] or an arm64 MIDR "
                         "(perf's formats, e.g. GenuineIntel-6-55-4, AuthenticAMD-25-1-1, 0x00000000410fd0c1)")
    vendor, family, model, stepping = m.groups()
    return CpuId(vendor, int(family), int(model, 16), int(stepping, 16) if stepping else None, overridden)


def machine_cpuid(cpuinfo: str = "/proc/cpuinfo") -> CpuId | None:
    """This machine's model from the first processor in /proc/cpuinfo (x86); None where it has none."""
    from hwprof.system.cpus import first_cpu

    fields = first_cpu(read_text(cpuinfo) or "")
    try:
        return CpuId(fields["vendor_id"], int(fields["cpu family"]), int(fields["model"]),
                     int(fields["stepping"]) if fields.get("stepping", "").isdigit() else None)
    except (KeyError, ValueError):
        pass
    midr = read_text("/sys/devices/system/cpu/cpu0/regs/identification/midr_el1")
    if midr and midr.strip().startswith("0x"):
        return parse_cpuid(midr.strip(), overridden=False)
    return None


def current_cpuid() -> CpuId | None:
    """PERF_CPUID when set (every command then resolves events and metrics for that model), else this CPU."""
    override = os.environ.get(ENV_OVERRIDE, "").strip()
    if override:
        return parse_cpuid(override)
    return machine_cpuid()
