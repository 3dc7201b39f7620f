"""Sample and side-record decoding against bytes built by hand from the ABI."""

import struct

import pytest

from hwprof.perf.abi import ReadFormat, RecordType, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import (
    Comm,
    Mmap,
    RecordError,
    SampleLayout,
    TaskEvent,
    iter_records,
    pack_string,
    parse_record,
    parse_sample,
    sample_id_trailer,
    trailer_maker,
    whole_records_length,
)

ST = SampleType.IP | SampleType.TID | SampleType.TIME | SampleType.ID | SampleType.CPU | SampleType.PERIOD
GROUP_READ = ReadFormat.GROUP | ReadFormat.ID | ReadFormat.TOTAL_TIME_ENABLED | ReadFormat.TOTAL_TIME_RUNNING


def _layout(sample_type=ST, read_format=0, **flags) -> SampleLayout:
    return SampleLayout.from_attr(PerfEventAttr(sample_type=sample_type, read_format=read_format,
                                                sample_id_all=1, **flags))


def _record(rtype: int, body: bytes, misc: int = 0) -> bytes:
    return struct.pack("<IHH", rtype, misc, 8 + len(body)) + body


def test_sample_with_group_read_and_callchain():
    layout = _layout(ST | SampleType.READ | SampleType.CALLCHAIN, GROUP_READ)
    body = struct.pack("<QiiQQIIQ", 0x401000, 10, 11, 5000, 77, 1, 0, 250000)
    body += struct.pack("<QQQ", 2, 900, 800) + struct.pack("<QQQQ", 1234, 77, 56, 78)
    body += struct.pack("<Q3Q", 3, 0xFFFFFFFFFFFFFE00, 0x401000, 0x401234)
    sample = parse_sample(_record(RecordType.SAMPLE, body, misc=2), 0, layout)
    assert (sample.ip, sample.pid, sample.tid, sample.time, sample.id, sample.cpu) == (0x401000, 10, 11, 5000, 77, 1)
    assert sample.period == 250000 and sample.cpumode == 2
    assert [(v.raw, v.id) for v in sample.read] == [(1234, 77), (56, 78)]
    assert sample.read[0].enabled == 900 and sample.read[0].running == 800
    assert sample.callchain == (0xFFFFFFFFFFFFFE00, 0x401000, 0x401234)
    assert layout.fixed_offsets["period"] == 48 and layout.id_offset == 32


def test_regs_and_stack_user_layout_for_dwarf_unwinding():
    attr = PerfEventAttr(sample_type=SampleType.IP | SampleType.REGS_USER | SampleType.STACK_USER,
                         sample_regs_user=(1 << 6) | (1 << 7) | (1 << 8), sample_stack_user=16)
    layout = SampleLayout.from_attr(attr)
    body = struct.pack("<Q", 0x1000) + struct.pack("<Q3Q", 2, 0xB0, 0x5000, 0x1000)
    body += struct.pack("<Q", 16) + bytes(range(16)) + struct.pack("<Q", 12)
    sample = parse_sample(_record(RecordType.SAMPLE, body), 0, layout)
    assert sample.regs_user_abi == 2 and sample.regs_user == (0xB0, 0x5000, 0x1000)
    assert sample.stack_user == bytes(range(16)) and sample.stack_user_dyn_size == 12


def test_raw_payload_is_padded():
    layout = _layout(SampleType.RAW | SampleType.PERIOD)
    # period comes before raw in kernel order; u32 size + 12 bytes = 16, already aligned
    body = struct.pack("<Q", 7) + struct.pack("<I", 12) + b"abcdefghijkl"
    sample = parse_sample(_record(RecordType.SAMPLE, body), 0, layout)
    assert sample.period == 7 and sample.raw == b"abcdefghijkl"


def test_short_sample_is_a_record_error():
    layout = _layout(ST | SampleType.CALLCHAIN)
    body = struct.pack("<QiiQQIIQ", 1, 2, 3, 4, 5, 0, 0, 6) + struct.pack("<Q", 50)  # 50 entries announced, none given
    with pytest.raises(RecordError):
        parse_sample(_record(RecordType.SAMPLE, body), 0, layout)


@pytest.mark.parametrize("sample_type", [ST, SampleType.IP | SampleType.TIME | SampleType.IDENTIFIER,
                                         ST | SampleType.STREAM_ID | SampleType.IDENTIFIER])
def test_a_sampler_packs_synthesized_trailers_once_and_gets_the_same_bytes(sample_type):
    layout = _layout(sample_type)
    make = trailer_maker(layout, 77)
    for pid, tid in ((1, 1), (4242, 4250), (-1, 0), (2**31 - 1, 2**31 - 1)):
        assert make(pid, tid) == sample_id_trailer(layout, pid, tid, 0, 77, 0)
    no_id_all = SampleLayout.from_attr(PerfEventAttr(sample_type=ST, sample_id_all=0))
    assert trailer_maker(no_id_all, 77)(5, 6) == b""


def test_side_records_with_trailer():
    layout = _layout()
    trailer = sample_id_trailer(layout, 42, 43, time=999, ident=5, cpu=1)
    mmap2 = struct.pack("<iiQQQIIQQII", 42, 43, 0x400000, 0x2000, 0x1000, 8, 1, 1234, 0, 5, 2)
    data = _record(RecordType.MMAP2, mmap2 + pack_string("/usr/bin/thing") + trailer)
    data += _record(RecordType.COMM, struct.pack("<ii", 42, 43) + pack_string("worker") + trailer, misc=1 << 13)
    data += _record(RecordType.FORK, struct.pack("<iiiiQ", 44, 42, 44, 43, 1000) + trailer)
    records = [parse_record(data, off, layout) for off, *_ in iter_records(data)]
    mmap, comm, fork = records
    assert isinstance(mmap, Mmap) and mmap.filename == "/usr/bin/thing" and mmap.pgoff == 0x1000
    assert mmap.ino == 1234 and mmap.end == 0x402000 and mmap.sample_id.time == 999 and mmap.sample_id.cpu == 1
    assert isinstance(comm, Comm) and comm.comm == "worker" and comm.exec
    assert isinstance(fork, TaskEvent) and (fork.pid, fork.ppid, fork.time) == (44, 42, 1000)
    assert layout.trailer_id_from_end == 16  # id, then cpu after it


def test_walk_stops_at_a_cut_record():
    one = _record(RecordType.COMM, struct.pack("<ii", 1, 1) + pack_string("a"))
    data = one + one + one[:10]
    assert [off for off, *_ in iter_records(data)] == [0, len(one)]
    assert whole_records_length(data) == 2 * len(one)
    assert list(iter_records(b"\0" * 16)) == []  # size 0 is never a record
