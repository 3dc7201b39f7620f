"""The ring buffer against the running kernel: what we read back is what the kernel wrote for us."""

import os
import time

from hwprof.perf import abi, syscall
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import SampleLayout, parse_sample
from hwprof.perf.ring import RingBuffer
from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk

ST = abi.SampleType


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class _Samples(RecordHandler):
    def __init__(self, layout: SampleLayout) -> None:
        self.layout, self.found, self.lost_count = layout, [], 0

    def samples(self, records) -> None:
        self.found += [parse_sample(records.buffer, off, self.layout) for off in records.offsets.tolist()]

    def lost(self, rec, when) -> None:
        self.lost_count += rec.lost


def test_samples_of_this_thread_come_back_whole():
    attr = PerfEventAttr(type=abi.PerfType.SOFTWARE, config=abi.SwEvent.TASK_CLOCK, sample_period=500_000,
                         sample_type=ST.IP | ST.TID | ST.TIME | ST.PERIOD | ST.CALLCHAIN, disabled=1,
                         exclude_kernel=1, sample_id_all=1, comm=1, task=1)
    fd = syscall.perf_event_open(attr, 0, -1, name="task-clock")
    try:
        with RingBuffer(fd, 4) as ring:  # 16 KiB: wraps several times during the run
            syscall.enable(fd)
            layout = SampleLayout.from_attr(attr)
            handler = _Samples(layout)
            walk = RecordWalk(EventTable([EventInfo(0, "task-clock", attr, layout)], {}), handler)
            for _ in range(20):
                _spin(0.01)
                walk.walk_whole(ring.read_available())
            syscall.disable(fd)
            walk.walk_whole(ring.read_available())
            samples = handler.found
            assert ring.pending() == 0 and ring.bytes_read > 0 and handler.lost_count == 0
            assert walk.stats.skipped_bytes == 0 and walk.stats.bytes_read == ring.bytes_read
    finally:
        os.close(fd)
    assert len(samples) >= 100  # 200 ms of CPU at one sample per 0.5 ms, with slack for a busy machine
    assert {s.pid for s in samples} == {os.getpid()}
    assert all(s.period == 500_000 for s in samples)
    assert all(s.callchain and s.callchain[0] == abi.CallchainContext.USER for s in samples)
    times = [s.time for s in samples]
    assert times == sorted(times)
