"""The off-CPU stage on a hand-built capture: sched_switch samples (prev_state read from RAW through the capture's
TRACING_DATA format), PERF_RECORD_SWITCH switch-ins and the SAMPLE_TIME span become blocked time in the on-CPU
event's profile, with a state frame on each blocked stack."""

from __future__ import annotations

import struct

import numpy as np
from hwprof.symbolize.frame import SymbolizedFrame

from hwprof.folded import profile_folded
from hwprof.offcpu.pairing import OffCpuState
from hwprof.offcpu.stage import stages_for
from hwprof.offcpu.views import thread_times, view_selection
from hwprof.perf.abi import MISC_SWITCH_OUT, CallchainContext, RecordType, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import SampleLayout, pack_string, sample_id_trailer
from hwprof.perfdata import PerfDataWriter
from hwprof.perfdata import features as feat
from hwprof.perfdata.features import Feature, TracingData, pack_tracing_data
from hwprof.perfdata.writer import FileAttr
from hwprof.pipeline import decode_file

USER, KERNEL = int(CallchainContext.USER), int(CallchainContext.KERNEL)
ST = (SampleType.IDENTIFIER | SampleType.IP | SampleType.TID | SampleType.TIME | SampleType.CPU | SampleType.PERIOD
      | SampleType.CALLCHAIN)
CLOCK_ID, SWITCH_ID = 7, 8
SCHEDULE = 0xFFFFFFFF81000100
SWITCH_FORMAT = b"""name: sched_switch
ID: 372
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
"""




def Frame(function: str | None, module: str = "", module_offset: int = 0) -> SymbolizedFrame:  # noqa: N802
    """The symbolizer's own frame type, with the fields these tests do not set left unknown."""
    return SymbolizedFrame(function, None, None, False, module, module_offset)


class Names:
    """/opt/app's functions by file offset, and the kernel's schedule()."""

    RANGES = ((0x100, 0x200, "leaf"), (0x200, 0x300, "caller_a"), (0x300, 0x400, "caller_b"), (0x400, 0x500, "main"))

    def symbolize_offsets(self, path, offsets, build_id=None):
        return [(Frame(next((n for lo, hi, n in self.RANGES if lo <= o < hi), None), module=path),)
                for o in np.asarray(offsets).tolist()]

    def symbolize_kernel(self, addrs):
        return [(Frame("schedule" if a == SCHEDULE else None, module="[kernel.kallsyms]"),)
                for a in np.asarray(addrs).tolist()]

    def symbolize_jit(self, pid, addrs, perf_map_path=None):
        return [(Frame(None),) for _ in np.asarray(addrs).tolist()]


def _rec(rtype: int, body: bytes, misc: int = 0) -> bytes:
    return struct.pack("<IHH", int(rtype), misc, 8 + len(body)) + body


def build(path, span=(0, 5000)) -> None:
    clock = PerfEventAttr(type=1, config=0, sample_period=100, sample_type=ST, sample_id_all=1, context_switch=1,
                          use_clockid=1, clockid=1, mmap=1, comm=1, task=1)
    switch = PerfEventAttr(type=2, config=372, sample_period=1, sample_type=ST | SampleType.RAW, sample_id_all=1,
                           use_clockid=1, clockid=1)
    layout = SampleLayout.from_attr(clock)

    def trailer(time: int) -> bytes:
        return sample_id_trailer(layout, 10, 10, time, CLOCK_ID, 0)

    def sample(ident: int, time: int, chain: list[int], period: int, raw: bytes = b"") -> bytes:
        body = struct.pack("<QQiiQIIQ", ident, chain[-1], 10, 10, time, 0, 0, period)
        body += struct.pack(f"<Q{len(chain)}Q", len(chain), *chain)
        if raw:
            body += struct.pack("<I", len(raw)) + raw
        return _rec(RecordType.SAMPLE, body, misc=2)

    def switched_out(time: int, prev_state: int, caller: int) -> bytes:
        raw = bytearray(44)  # 4 + 44 bytes keep the record 8-aligned
        struct.pack_into("<i", raw, 24, 10)
        struct.pack_into("<q", raw, 32, prev_state)
        return sample(SWITCH_ID, time, [KERNEL, SCHEDULE, USER, 0x400150, caller, 0x400450], 1, bytes(raw))

    data = _rec(RecordType.COMM, struct.pack("<ii", 10, 10) + pack_string("app") + trailer(0))
    mmap = struct.pack("<iiQQQIIQQII", 10, 10, 0x400000, 0x1000, 0, 8, 1, 99, 0, 5, 2)
    data += _rec(RecordType.MMAP2, mmap + pack_string("/opt/app") + trailer(0), misc=2)
    data += sample(CLOCK_ID, 100, [USER, 0x400150, 0x400250, 0x400450], 100)
    data += sample(CLOCK_ID, 200, [USER, 0x400150, 0x400250, 0x400450], 100)
    data += switched_out(300, 0x1, 0x400250)                                   # S, through caller_a
    data += _rec(RecordType.SWITCH, trailer(301), misc=MISC_SWITCH_OUT)
    data += _rec(RecordType.SWITCH, trailer(1300))                             # runs again: 1000 ns blocked
    data += switched_out(1500, 0x100, 0x400350)                                # preempted, through caller_b
    data += _rec(RecordType.SWITCH, trailer(1600))                             # 100 ns runnable
    data += switched_out(2000, 0x2, 0x400250)                                  # D, never runs again
    attrs = [FileAttr(clock, (CLOCK_ID,), "cpu-clock"), FileAttr(switch, (SWITCH_ID,), "sched:sched_switch")]
    with PerfDataWriter(path, attrs) as w:
        w.write(data)
        w.finish_round()
        w.add_feature(Feature.TRACING_DATA, pack_tracing_data(TracingData(b"", b"", {"sched": [SWITCH_FORMAT]})))
        w.add_feature(Feature.SAMPLE_TIME, feat.pack_sample_time(*span))
        w.add_feature(Feature.EVENT_DESC, feat.pack_event_desc(
            [feat.EventDesc(a.attr, a.name, a.ids) for a in attrs], w.attr_size))


def test_blocks_are_weighted_by_the_time_until_the_thread_runs_again_with_their_state(tmp_path):
    path = tmp_path / "off.data"
    build(path)
    profile = decode_file(path, Names(), stages=stages_for(path))
    off, weights = view_selection(profile, "off-cpu")
    assert sorted(profile_folded(profile, weights, off)) == [
        "main;caller_a;leaf;schedule;[off-cpu: sleeping (S)] 1000",
        "main;caller_a;leaf;schedule;[off-cpu: uninterruptible (D)] 3000",  # until the capture's end (5000)
        "main;caller_b;leaf;schedule;[off-cpu: runnable (R, preempted)] 100",
    ]
    assert sorted(profile.sample_state.tolist()) == [0, 0, OffCpuState.SLEEPING, OffCpuState.UNINTERRUPTIBLE,
                                                      OffCpuState.RUNNABLE]


def test_wall_time_is_on_cpu_samples_plus_blocked_time(tmp_path):
    path = tmp_path / "off.data"
    build(path)
    profile = decode_file(path, Names(), stages=stages_for(path))
    wall, _ = view_selection(profile, "wall")
    (thread,) = thread_times(profile, wall)
    assert (thread.tid, thread.comm, thread.on_cpu_ns, thread.wall_ns) == (10, "app", 200.0, 4300.0)
    assert thread.last_ns == 5000


def test_a_capture_without_switches_gets_no_stage(tmp_path):
    path = tmp_path / "plain.data"
    attr = PerfEventAttr(type=1, config=0, sample_period=100, sample_type=ST, sample_id_all=1)
    with PerfDataWriter(path, [FileAttr(attr, (CLOCK_ID,), "cpu-clock")]) as w:
        w.finish_round()
    assert stages_for(path) == []
