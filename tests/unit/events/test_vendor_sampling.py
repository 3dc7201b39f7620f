"""Sampling on named vendor events: the attrs `hwprof record` opens, and the per-function ratios the report and
the flame graph compute from a group of named events."""

from __future__ import annotations

import numpy as np
from hwprof.collectors.sampling import SamplingOptions, _sampling_attrs

from hwprof.definitions import group_ratios
from hwprof.events.cpuid import parse_cpuid
from hwprof.events.parser import EventParser
from hwprof.events.pmu import PmuRegistry
from hwprof.events.vendor import model_for
from hwprof.perf.abi import ReadFormat, SampleType
from hwprof.report import _ratios


def _parser(cpuid: str) -> EventParser:
    return EventParser(pmus=PmuRegistry("/nonexistent"), vendor=model_for(parse_cpuid(cpuid)))


def test_record_attrs_for_a_precise_named_event():
    groups = _parser("GenuineIntel-6-8F-8").parse("MEM_LOAD_RETIRED.L3_MISS:pp")
    (event,), = _sampling_attrs(groups, SamplingOptions(period=10007))
    attr = event.attr
    assert (attr.type, attr.config, attr.precise_ip, attr.sample_period, attr.freq) == (4, 0x20D1, 2, 10007, 0)
    # without -c, the vendor's SampleAfterValue is the period, as perf takes it from its JSON alias
    (event,), = _sampling_attrs(groups, SamplingOptions())
    assert event.attr.sample_period == 50021


def test_record_attrs_for_a_group_of_named_events():
    groups = _parser("GenuineIntel-6-8F-8").parse(
        "{INST_RETIRED.ANY,MEM_LOAD_RETIRED.L3_MISS,MEM_LOAD_RETIRED.L3_HIT}:S")
    (leader, *members), = _sampling_attrs(groups, SamplingOptions(period=10007))
    assert leader.attr.sample_type & SampleType.READ and leader.attr.read_format & ReadFormat.GROUP
    assert leader.attr.sample_period == 10007 and leader.attr.disabled == 1
    assert [m.attr.config for m in members] == [0x20D1, 0x04D1] and all(m.attr.disabled == 0 for m in members)
    amd = _parser("AuthenticAMD-25-1-1").parse("{ex_ret_instr,ls_dc_accesses,ls_mab_alloc.loads}:S")
    assert [e.attr.config for e in amd[0].events] == [0xC0, 0x40, 0x0141]


def test_report_ratios_for_named_events():
    """Per-function sums of one function's group deltas: 2,000,000 instructions, 3,000 L3 misses, 1,000 L3 hits.
    MPKI = 1000 x 3,000 / 2,000,000 = 1.5; L3 miss rate = 3,000 / (3,000 + 1,000) = 75 %."""
    names = ["INST_RETIRED.ANY", "MEM_LOAD_RETIRED.L3_MISS", "MEM_LOAD_RETIRED.L3_HIT"]
    specs = group_ratios(names)
    got = _ratios(np.array([2_000_000.0, 3_000.0, 1_000.0]), specs)
    assert got == {"MEM_LOAD_RETIRED.L3_MISS MPKI": 1.5, "MEM_LOAD_RETIRED.L3_MISS rate %": 75.0}
    # IPC from vendor cycles/instructions, AMD spellings included
    amd = _ratios(np.array([4_000.0, 2_000.0, 10.0]), group_ratios(["ls_not_halted_cyc", "ex_ret_instr",
                                                                     "ex_ret_brn_misp"]))
    assert amd["IPC"] == 0.5 and amd["branch-misses MPKI"] == 5.0


def test_flame_graph_ratios_for_named_events():
    from hwprof.web.payload import ratio_specs

    specs = ratio_specs(["cpu_core/INST_RETIRED.ANY/", "cpu_core/MEM_LOAD_RETIRED.L3_MISS/"])  # the group members
    mpki = next(s for s in specs if s["name"] == "MEM_LOAD_RETIRED.L3_MISS MPKI")
    assert (mpki["num"], mpki["den"], mpki["scale"]) == (3, 2, 1000.0)
