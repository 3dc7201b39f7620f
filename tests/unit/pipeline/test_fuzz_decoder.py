"""Fuzzing the perf.data reader, the record walk and the record parser with mutated real captures (issue 12).

Hypothesis mutates the golden captures of hwprof and perf (a few bytes changed anywhere in the data section or in
the whole file, or the file cut short). Seeded (derandomize) and bounded (max_examples, per-example time checked),
so CI stays fast and a failure reproduces. The rules: no traceback (only HwprofError, one line), no hang, memory
bounded, and every byte of the data section either walked or counted as skipped in a note.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwprof.errors import HwprofError
from hwprof.perf.records import RecordError, SampleLayout, parse_sample
from hwprof.perfdata import PerfDataFile
from hwprof.pipeline.decode import PerfDataDecoder
from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk

GOLDEN = Path(__file__).parent / "golden"
CAPTURES = {name: (GOLDEN / name).read_bytes() for name in ("hwprof.perf.data", "perf.perf.data", "group.perf.data",
                                                             "perf-group.perf.data")}
FUZZ = settings(derandomize=True, max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _data_section(name: str) -> tuple[int, int]:
    with PerfDataFile(GOLDEN / name) as f:
        return f.data_offset, f.data_size


SECTIONS = {name: _data_section(name) for name in CAPTURES}


@st.composite
def mutated(draw) -> tuple[str, bytes, str]:
    name = draw(st.sampled_from(sorted(CAPTURES)))
    raw = bytearray(CAPTURES[name])
    start, size = SECTIONS[name]
    where = draw(st.sampled_from(["data", "data", "data", "anywhere", "cut"]))
    if where == "cut":
        cut = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        return name, bytes(raw[:cut]), f"cut at {cut}"
    lo, hi = (start, start + size) if where == "data" else (0, len(raw))
    edits = draw(st.lists(st.tuples(st.integers(min_value=lo, max_value=hi - 8),
                                    st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
    for offset, junk in edits:
        raw[offset:offset + len(junk)] = junk
    return name, bytes(raw), f"{where}: {[(o, j.hex()) for o, j in edits]}"


@FUZZ
@given(case=mutated())
def test_decoding_a_mutated_capture_is_bounded_and_accounts_for_every_byte(case, tmp_path_factory):
    name, data, how = case
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    decoder = PerfDataDecoder(path)
    tracemalloc.start()
    began = time.monotonic()
    try:
        profile = decoder.decode()
    except HwprofError as exc:
        assert "\n" not in str(exc), how  # one clear line
        profile = None
    finally:
        elapsed = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < 20, (how, elapsed)
    assert peak < 40 * len(data) + (16 << 20), (how, peak)
    if profile is None:
        return
    with PerfDataFile(path) as f:
        size = f.data_size
    stats = decoder.walk_stats
    assert stats.bytes_read + stats.skipped_bytes == size, (how, stats)
    if stats.skipped_bytes:
        assert any("bytes skipped" in note for note in profile.meta.notes), how


class _ParseEverything(RecordHandler):
    """The probe collector's way: every sample parsed into a Python object, every side record too."""

    def __init__(self, layout: SampleLayout) -> None:
        self.layout = layout
        self.parsed = self.refused = 0

    def samples(self, records) -> None:
        for offset in records.offsets.tolist():
            try:
                parse_sample(records.buffer, offset, self.layout)
                self.parsed += 1
            except RecordError:
                self.refused += 1

    def other(self, rec, when) -> None:
        self.parsed += 1


@FUZZ
@given(case=mutated())
def test_the_record_parser_refuses_damaged_records_with_record_error_only(case):
    name, data, how = case
    start, size = SECTIONS[name]
    with PerfDataFile(GOLDEN / name) as f:
        attr = f.attrs[0].attr
    layout = SampleLayout.from_attr(attr)
    handler = _ParseEverything(layout)
    walk = RecordWalk(EventTable([EventInfo(0, "e", attr, layout)], {}), handler)
    section = data[start:start + size]
    began = time.monotonic()
    for block in range(0, len(section), 4096):  # pieces cut anywhere: records carried over between them
        walk.feed(section[block:block + 4096])
    walk.close()
    assert time.monotonic() - began < 20, how
    assert walk.stats.bytes_read + walk.stats.skipped_bytes == len(section), (how, walk.stats)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_the_untouched_captures_read_whole(name):
    decoder = PerfDataDecoder(GOLDEN / name)
    profile = decoder.decode()
    assert decoder.walk_stats.skipped_bytes == 0 and profile.n_samples > 100
    assert not [n for n in profile.meta.notes if "skipped" in n]
