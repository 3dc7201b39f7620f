import struct

from hwprof.perf.abi import ReadFormat
from hwprof.perf.readformat import CounterValue, parse_read, read_size

TIMES = ReadFormat.TOTAL_TIME_ENABLED | ReadFormat.TOTAL_TIME_RUNNING


def test_single_counter_with_times_id_lost():
    fmt = TIMES | ReadFormat.ID | ReadFormat.LOST
    buf = struct.pack("<5Q", 100, 2000, 1000, 42, 3)
    (value,), end = parse_read(buf, fmt)
    assert end == len(buf) == read_size(fmt)
    assert value == CounterValue(100, 2000, 1000, 42, 3)
    assert value.multiplexed and value.scaled == 200.0 and value.running_fraction == 0.5


def test_group_layout():
    fmt = TIMES | ReadFormat.ID | ReadFormat.GROUP
    buf = struct.pack("<7Q", 2, 500, 500, 10, 1, 20, 2)
    values, end = parse_read(buf, fmt)
    assert end == read_size(fmt, 2) == 56
    assert [(v.raw, v.id) for v in values] == [(10, 1), (20, 2)]
    assert not values[0].multiplexed and values[1].scaled == 20.0


def test_not_counted():
    value = CounterValue(0, 1000, 0)
    assert not value.counted and value.scaled == 0.0
