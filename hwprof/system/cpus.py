"""CPU lists as the kernel and perf write them ('0-3,6'): which CPUs are online, parsing and printing."""

from __future__ import annotations

import os
from collections.abc import Sequence

from hwprof.errors import HwprofError
from hwprof.units import Cpu


def expand_cpu_list(text: str) -> list[Cpu]:
    """'0-3,6' -> [0, 1, 2, 3, 6], as the kernel writes CPU lists (online, cpumask); ValueError for anything else."""
    cpus: list[Cpu] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if first < 0 or first > last:
            raise ValueError(part)
        cpus.extend(range(first, last + 1))
    return cpus


def online_cpus() -> list[Cpu]:
    try:
        with open("/sys/devices/system/cpu/online") as f:
            return expand_cpu_list(f.read())
    except (OSError, ValueError):
        return list(range(os.cpu_count() or 1))


def parse_cpu_list(text: str) -> tuple[Cpu, ...]:
    """A user's -C argument: sorted, unique, and every CPU must be online."""
    try:
        cpus = set(expand_cpu_list(text))
    except ValueError:
        cpus = set()
    if not cpus:
        raise HwprofError(f"invalid CPU list '{text}' (expected e.g. 0-3,6)")
    online = set(online_cpus())
    missing = sorted(cpus - online)
    if missing:
        raise HwprofError(f"CPU {missing[0]} is not online (online: {format_cpu_list(sorted(online))})")
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Sequence[Cpu] | None) -> str:
    if not cpus:
        return ""
    ranges: list[str] = []
    start = prev = cpus[0]
    for cpu in [*cpus[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(ranges)


# --- /proc/cpuinfo ----------------------------------------------------------------------------------------

def cpuinfo_records(text: str | None = None) -> list[dict[str, str]]:
    """/proc/cpuinfo (or `text`) as one dict per processor block, keys and values stripped; [] when unreadable.
    The first occurrence of a key in a block wins."""
    if text is None:
        from hwprof.perf.syscall import read_text

        text = read_text("/proc/cpuinfo") or ""
    records: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                records.append(fields)
                fields = {}
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if fields:
        records.append(fields)
    return records


def first_cpu(text: str | None = None) -> dict[str, str]:
    """The first processor's /proc/cpuinfo fields (vendor_id, cpu family, model, model name, flags...)."""
    records = cpuinfo_records(text)
    return records[0] if records else {}
