"""`--call-graph` is parsed as perf parses it, and its attr bits are perf's."""

from __future__ import annotations

import pytest
from hwprof.collectors.sampling import SamplingOptions, _sampling_attrs

from hwprof.callgraph import DEFAULT_STACK_DUMP, MAX_STACK_DUMP, X86_64_DWARF_REGS_MASK, lbr_refusal, parse_call_graph
from hwprof.errors import HwprofError
from hwprof.events import parse_events
from hwprof.perf.abi import SampleType


@pytest.mark.parametrize(("text", "mode", "size"), [
    ("fp", "fp", 0), ("dwarf", "dwarf", DEFAULT_STACK_DUMP), ("dwarf,4000", "dwarf", 4000),
    ("dwarf,4001", "dwarf", 4008), ("dwarf,65528", "dwarf", 65528), ("dwarf,0x1000", "dwarf", 4096), ("lbr", "lbr", 0),
])
def test_modes_and_sizes(text, mode, size):
    cg = parse_call_graph(text)
    assert (cg.mode, cg.stack_size) == (mode, size)


@pytest.mark.parametrize("text", ["dwarf,0", "dwarf,65529", "dwarf,70000", "dwarf,big", "frames", "fp,100"])
def test_bad_values_are_refused_with_one_line(text):
    with pytest.raises(HwprofError) as err:
        parse_call_graph(text)
    assert "\n" not in str(err.value)


def test_dwarf_attr_matches_perf():
    # perf record --call-graph dwarf -vv: REGS_USER|STACK_USER, sample_regs_user 0xff0fff, sample_stack_user 8192,
    # exclude_callchain_user 1, mmap_data 1 (kernel callchain kept)
    groups = parse_events("cpu-clock")
    (events,) = _sampling_attrs(groups, SamplingOptions(events="cpu-clock", callgraph=True,
                                                        stack_dump=DEFAULT_STACK_DUMP))
    attr = events[0].attr
    assert attr.sample_type & SampleType.REGS_USER and attr.sample_type & SampleType.STACK_USER
    assert attr.sample_type & SampleType.CALLCHAIN
    assert attr.sample_regs_user == X86_64_DWARF_REGS_MASK == 0xFF0FFF
    assert attr.sample_stack_user == 8192
    assert attr.exclude_callchain_user == 1 and attr.exclude_callchain_kernel == 0 and attr.mmap_data == 1


def test_fp_attr_has_no_stack_copy():
    (events,) = _sampling_attrs(parse_events("cpu-clock"), SamplingOptions(events="cpu-clock", callgraph=True))
    attr = events[0].attr
    assert not attr.sample_type & SampleType.STACK_USER and attr.exclude_callchain_user == 0


def test_lbr_refused_without_last_branch_records(tmp_path):
    caps = tmp_path / "cpu" / "caps" / "branches"
    assert "no CPU PMU" in lbr_refusal(str(caps))
    caps.parent.mkdir(parents=True)
    caps.write_text("0\n")
    assert "last branch records" in lbr_refusal(str(caps))
    caps.write_text("32\n")
    assert lbr_refusal(str(caps)) is None
    assert MAX_STACK_DUMP == 65528
