"""Mapping records are kept as bytes until a replay needs them: the spaces are the same as parsed ones, a process
that is never asked for is never parsed, and a record too short for its fixed part is counted, not raised later."""

from __future__ import annotations

import struct

from hwprof.perf.abi import MISC_MMAP_DATA
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import SampleLayout, sample_id_trailer
from hwprof.pipeline.decode import _Collector
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk

TID_TIME = 0x2 | 0x4  # SampleType.TID | SampleType.TIME


def _table() -> tuple[EventTable, SampleLayout]:
    attr = PerfEventAttr()
    attr.sample_type = 0x1 | TID_TIME
    attr.sample_id_all = 1
    layout = SampleLayout.from_attr(attr)
    return EventTable([EventInfo(0, "e", attr, layout)], {}), layout


def _mmap2(layout: SampleLayout, pid: int, start: int, name: bytes, when: int, prot: int = 5, misc: int = 0) -> bytes:
    name = name + b"\0" * (8 - len(name) % 8)
    body = struct.pack("<iiQQQIIQQII", pid, pid, start, 0x1000, 0, 8, 1, 42, 0, prot, 2) + name
    trailer = sample_id_trailer(layout, pid, pid, when)
    return struct.pack("<IHH", 10, misc, 8 + len(body) + len(trailer)) + body + trailer


def _walk(handler: RecordHandler, data: bytes, table: EventTable) -> RecordWalk:
    walk = RecordWalk(table, handler)
    walk.feed(data)
    walk.close()
    return walk


class _Parsed(RecordHandler):
    def __init__(self) -> None:
        self.spaces = AddressSpaces()

    def mmap(self, rec, when: int) -> None:
        self.spaces.mmap(when, rec)


def test_deferred_and_parsed_mappings_give_the_same_spaces():
    table, layout = _table()
    data = b"".join([_mmap2(layout, 7, 0x400000, b"/usr/bin/app", 10), _mmap2(layout, 7, 0x7f0000, b"/lib/libc.so", 20),
                     _mmap2(layout, 7, 0x900000, b"/data", 30, prot=3),       # not executable: never code
                     _mmap2(layout, 7, 0xa00000, b"/heap", 35, misc=MISC_MMAP_DATA),  # perf record -d's data
                     _mmap2(layout, 8, 0x400000, b"/usr/bin/other", 40)])
    deferred = _Collector(table, [])
    assert deferred.unparsed_kinds()
    _walk(deferred, data, table)
    parsed = _Parsed()
    _walk(parsed, data, table)
    late = deferred.spaces.latest(7)
    assert [(m.start, m.filename) for m in late.maps] == \
        [(m.start, m.filename) for m in parsed.spaces.latest(7).maps] == [(0x400000, "/usr/bin/app"),
                                                                           (0x7f0000, "/lib/libc.so")]
    # pid 8 was never asked for: its record is still bytes
    (change,) = deferred.spaces.changes[8]
    assert change.mmap is None and change.ref is not None
    assert deferred.spaces.mapped_names(8) == ["/usr/bin/other"]


def test_a_mapping_record_cut_short_is_counted_by_the_walk():
    table, layout = _table()
    trailer = sample_id_trailer(layout, 5, 5, 1)
    short = struct.pack("<IHH", 10, 0, 8 + 48 + len(trailer)) + struct.pack("<iiQQQ", 5, 5, 0x1000, 0x1000, 0) \
        + b"\0" * 16 + trailer
    collector = _Collector(table, [])
    walk = _walk(collector, short, table)
    assert walk.stats.unparsable == {10: 1}
    assert not collector.spaces.changes
