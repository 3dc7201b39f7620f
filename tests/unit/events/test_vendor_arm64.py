"""arm64 named events and metrics from Linux perf's JSON (with `ArchStdEvent` references resolved), chosen by
MIDR as perf does (PERF_CPUID=0x00000000410fd0c1). libpfm4 on x86 has no Arm tables, so the encodings are held
against the JSON itself and the Arm architecture's common event numbers."""

from __future__ import annotations

import pytest

from hwprof.events import vendor as vendor_mod
from hwprof.events.cpuid import parse_cpuid
from hwprof.events.metricplan import MetricPlan, topdown_metrics, topdown_tree
from hwprof.events.parser import EventParseError, EventParser
from hwprof.events.pmu import PmuRegistry
from hwprof.events.vendor import model_for

N1 = "0x00000000413fd0c1"   # Neoverse N1 r3p1: variant and revision do not choose the table
V1 = "0x00000000411fd401"   # Neoverse V1


def _parser(cpuid):
    return EventParser(pmus=PmuRegistry("/nonexistent"), vendor=model_for(parse_cpuid(cpuid)))


def test_midr_selects_the_model_whatever_the_revision():
    assert model_for(parse_cpuid(N1)).name == "neoverse-n1"
    assert model_for(parse_cpuid("0x00000000410fd0c0")).name == "neoverse-n1"
    assert model_for(parse_cpuid("0x00000000410fffff")) is None


@pytest.mark.parametrize("cpuid", [N1, V1, "0x00000000410fd490", "0x00000000c00fac30"])
def test_every_event_encodes_its_json_event_code(cpuid):
    parser = _parser(cpuid)
    model = parser.vendor
    raw = vendor_mod._load(model.directory, model.event_files[model.core_pmus[0]])["events"]
    for event in raw:
        spec = parser.parse(event["EventName"])[0].events[0]
        assert (spec.pmu, spec.attr.type, spec.attr.config) == ("armv8_pmuv3_0", 4, int(event["EventCode"], 16))
    assert len(raw) >= 100


def test_architected_common_events():
    """Arm ARM, 'Common event numbers': SW_INCR 0x00, L1D_CACHE_REFILL 0x03, INST_RETIRED 0x08, CPU_CYCLES 0x11,
    BR_MIS_PRED 0x10, L2D_CACHE 0x16 (resolved through perf's ArchStdEvent references)."""
    parser = _parser(N1)
    got = {n: parser.parse(n)[0].events[0].attr.config for n in (
        "SW_INCR", "l1d_cache_refill", "INST_RETIRED", "cpu_cycles", "BR_MIS_PRED", "L2D_CACHE")}
    assert got == {"SW_INCR": 0x00, "l1d_cache_refill": 0x03, "INST_RETIRED": 0x08, "cpu_cycles": 0x11,
                   "BR_MIS_PRED": 0x10, "L2D_CACHE": 0x16}
    user = parser.parse("armv8_pmuv3_0/inst_retired/u")[0].events[0]
    assert (user.attr.config, user.attr.exclude_kernel) == (0x08, 1)
    with pytest.raises(EventParseError, match="is an Intel event; this CPU model .* is Arm"):
        parser.parse("MEM_LOAD_RETIRED.L3_MISS")


def test_neoverse_v1_level1_worked_by_hand():
    """#slots = 8, CPU_CYCLES = 1,000,000 -> 8,000,000 slots.
    backend_bound  = 100 x STALL_SLOT_BACKEND / slots = 2.4M / 8M                          = 30 %
    frontend_bound = 100 x (STALL_SLOT_FRONTEND / slots - 4 x BR_MIS_PRED / CPU_CYCLES)  = 100 x (0.2 - 0.04) = 16 %
    retiring       = 100 x OP_RETIRED / OP_SPEC x (1 - STALL_SLOT / slots) = 100 x 0.75 x 0.5          = 37.5 %
    bad_speculation = 100 x ((1 - 0.75) x (1 - 0.5) + 0.04)                                            = 16.5 %"""
    model = model_for(parse_cpuid(V1))
    constants = {"#smt_on": 0.0, "#slots": 8.0}
    plan = MetricPlan(model, topdown_metrics(model, 1), 1, constants)
    counts = {"cpu_cycles": 1e6, "CPU_CYCLES": 1e6, "stall_slot_backend": 2.4e6, "STALL_SLOT_FRONTEND": 1.6e6,
              "BR_MIS_PRED": 1e4, "OP_RETIRED": 3e6, "op_retired": 3e6, "OP_SPEC": 4e6, "op_spec": 4e6,
              "STALL_SLOT": 4e6, "stall_slot": 4e6}
    values = [(counts[ref.ref], 1000, 1000) for _, ref in plan.ordered()]
    got = {v.metric.name: round(v.value, 6) for v in plan.evaluate(values, 1e9, constants)}
    assert got == {"backend_bound": 30.0, "frontend_bound": 16.0, "retiring": 37.5, "bad_speculation": 16.5}
    assert [n.name for n in topdown_tree(plan.evaluate(values, 1e9, constants)) if n.bottleneck] == ["retiring"]
    assert len(plan.groups) == 1  # 6 events fit the 6 PMUv3 counters
