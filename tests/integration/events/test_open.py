"""Parsed events open on the real kernel and count what they claim: the encoding is proven by the count."""

from __future__ import annotations

import mmap
import os

import pytest

from hwprof.events import parse_event, parse_events
from hwprof.events.opening import open_event
from hwprof.perf import syscall
from hwprof.perf.abi import ReadFormat
from hwprof.perf.readformat import read_counters

FORMAT = ReadFormat.TOTAL_TIME_ENABLED | ReadFormat.TOTAL_TIME_RUNNING


def count(spec, work) -> int:
    attr = spec.attr.copy()
    attr.disabled = 1
    attr.read_format = FORMAT
    fd, used = open_event(attr, 0, -1, name=spec.name)
    try:
        syscall.enable(fd)
        work()
        syscall.disable(fd)
        return read_counters(fd, FORMAT)[0].raw
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="tracepoints need root at perf_event_paranoid >= 1")
def test_tracepoint_counts_exact_writes():
    spec = parse_event("syscalls:sys_enter_write")
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        assert count(spec, lambda: [os.write(fd, b"x") for _ in range(37)]) == 37
    finally:
        os.close(fd)


def test_software_events_count(tmp_path):
    faults = parse_event("page-faults:u" if os.geteuid() else "page-faults")
    pages = 64

    def touch():
        # A fresh anonymous mapping: a bytearray may reuse heap pages an earlier test already faulted in.
        with mmap.mmap(-1, pages * 4096 * 2) as buf:
            for i in range(0, len(buf), 4096):
                buf[i] = 1

    assert count(faults, touch) >= pages
    clock = parse_event("task-clock")
    assert count(clock, lambda: sum(range(200_000))) > 1_000_000  # ns


@pytest.mark.skipif(not os.path.exists("/sys/bus/event_source/devices/msr/events/tsc"), reason="no msr PMU here")
@pytest.mark.skipif(os.geteuid() != 0, reason="the msr PMU counts kernel time too: root at paranoid >= 2")
def test_msr_tsc_opens_with_perfs_guest_retry():
    spec = parse_event("msr/tsc/")
    assert spec.attr.exclude_guest == 1  # as perf parses it; the msr PMU rejects it with EINVAL
    attr = spec.attr.copy()
    attr.read_format = FORMAT
    fd, used = open_event(attr, 0, -1, name=spec.name)
    os.close(fd)
    assert used.exclude_guest == 0 and spec.attr.exclude_guest == 1 and attr.exclude_guest == 1
    assert count(spec, lambda: sum(range(100_000))) > 100_000  # TSC ticks: far more than 1 per loop step


def test_group_of_software_events_opens_together():
    group = parse_events("{task-clock,page-faults}:u")[0]
    assert group.is_group and [e.name for e in group.events] == ["task-clock:u", "page-faults:u"]
    fds = []
    try:
        leader_fd = -1
        for spec in group.events:
            attr = spec.attr.copy()
            attr.read_format = FORMAT
            attr.disabled = 1 if leader_fd < 0 else 0
            fd, _ = open_event(attr, 0, -1, leader_fd, name=spec.name)
            fds.append(fd)
            leader_fd = fds[0]
        syscall.enable(fds[0], group=True)
        bytearray(1 << 20)
        syscall.disable(fds[0], group=True)
        values = [read_counters(fd, FORMAT)[0] for fd in fds]
        assert values[0].raw > 0 and values[0].enabled == values[1].enabled
    finally:
        for fd in fds:
            os.close(fd)
