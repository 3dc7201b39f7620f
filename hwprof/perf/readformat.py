"""Decoding read(2) on a perf fd (and PERF_SAMPLE_READ payloads), with multiplexing scaling."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from hwprof.perf.abi import ReadFormat
from hwprof.units import Nanoseconds


@dataclass(frozen=True)
class CounterValue:
    """One counter as read, with the times that tell how much of it was extrapolated."""

    raw: int
    enabled: Nanoseconds
    running: Nanoseconds
    id: int = 0
    lost: int = 0

    @property
    def counted(self) -> bool:
        """False when the event never got a PMU slot (perf's '<not counted>')."""
        return self.running > 0 or self.enabled == 0

    @property
    def running_fraction(self) -> float:
        return 1.0 if self.enabled == 0 else self.running / self.enabled

    @property
    def multiplexed(self) -> bool:
        return 0 < self.running < self.enabled

    @property
    def scaled(self) -> float:
        """value x enabled / running, as perf scales a multiplexed counter."""
        if self.running == 0 or self.running >= self.enabled:
            return float(self.raw)
        return self.raw * self.enabled / self.running


def read_size(read_format: int, nr_members: int = 1) -> int:
    times = bool(read_format & ReadFormat.TOTAL_TIME_ENABLED) + bool(read_format & ReadFormat.TOTAL_TIME_RUNNING)
    per_value = 1 + bool(read_format & ReadFormat.ID) + bool(read_format & ReadFormat.LOST)
    if read_format & ReadFormat.GROUP:
        return 8 * (1 + times + nr_members * per_value)
    return 8 * (times + per_value)


def parse_read(buf: bytes | memoryview, read_format: int, offset: int = 0) -> tuple[list[CounterValue], int]:
    """Decode one read_format payload at `offset`; return its counters and the offset after it."""
    def u64() -> int:
        nonlocal offset
        (v,) = struct.unpack_from("<Q", buf, offset)
        offset += 8
        return v

    has_enabled = read_format & ReadFormat.TOTAL_TIME_ENABLED
    has_running = read_format & ReadFormat.TOTAL_TIME_RUNNING
    has_id = read_format & ReadFormat.ID
    has_lost = read_format & ReadFormat.LOST
    if read_format & ReadFormat.GROUP:
        nr = u64()
        enabled = u64() if has_enabled else 0
        running = u64() if has_running else 0
        values = []
        for _ in range(nr):
            value = u64()
            ident = u64() if has_id else 0
            lost = u64() if has_lost else 0
            values.append(CounterValue(value, enabled, running, ident, lost))
        return values, offset
    value = u64()
    enabled = u64() if has_enabled else 0
    running = u64() if has_running else 0
    ident = u64() if has_id else 0
    lost = u64() if has_lost else 0
    return [CounterValue(value, enabled, running, ident, lost)], offset


def read_counters(fd: int, read_format: int, nr_members: int = 1) -> list[CounterValue]:
    """read(2) an event (or a whole group through its leader) and decode it."""
    size = read_size(read_format, nr_members)
    buf = os.read(fd, size)
    values, _ = parse_read(buf, read_format)
    return values
