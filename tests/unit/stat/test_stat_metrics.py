"""Derived metrics and their multiplexing uncertainty, on synthetic readings.

Why synthetic: software events never multiplex (they always run) and this VM has no CPU PMU, so no real
counter here ever runs for less than its enabled time. The scaling and uncertainty arithmetic is pure, so it is
pinned down with hand-made values whose expected results are worked out in the comments.
"""

from __future__ import annotations

import math

import pytest

from hwprof.metrics import Reading, combined_uncertainty, derive, metric_key, privilege_context
from hwprof.perf.abi import PerfType


def by_name(metrics):
    return {m.name: m for m in metrics}


def r(key, value, enabled=1000, running=1000, group=0, context="", label=""):
    return Reading(key, value, enabled, running, group, context, label)


def test_metric_key_matches_events_by_encoding_not_spelling():
    assert metric_key(PerfType.HARDWARE, 0, "cpu-cycles") == "cycles"
    assert metric_key(PerfType.HARDWARE, 1, "instructions:u") == "instructions"
    assert metric_key(PerfType.SOFTWARE, 1, "task-clock") == "task-clock"
    # HW_CACHE: id | op << 8 | result << 16
    assert metric_key(PerfType.HW_CACHE, 0 | 0 << 8 | 1 << 16, "L1-dcache-load-misses") == "L1-dcache-load-misses"
    assert metric_key(PerfType.HW_CACHE, 2, "LLC-loads") == "LLC-loads"
    assert metric_key(PerfType.HW_CACHE, 3 | 1 << 16, "dTLB-load-misses") == "dTLB-load-misses"
    assert metric_key(PerfType.RAW, 0x76, "cpu/topdown-retiring/") == "topdown-retiring"
    assert metric_key(PerfType.TRACEPOINT, 840, "syscalls:sys_enter_write:u") == "syscalls:sys_enter_write"


def test_ipc_cpi_ghz_cpus_utilized():
    ms = by_name(derive([r("task-clock", 2e9), r("cycles", 6e9, group=1), r("instructions", 9e9, group=1)],
                        wall_ns=1_000_000_000))
    assert ms["IPC"].value == pytest.approx(1.5)
    assert ms["CPI"].value == pytest.approx(6 / 9)
    assert ms["GHz"].value == pytest.approx(3.0)          # 6e9 cycles over 2e9 ns of task-clock
    assert ms["CPUs utilized"].value == pytest.approx(2.0)  # 2 s of CPU time in 1 s of wall time
    assert ms["IPC"].uncertainty is None                   # nothing was multiplexed


def test_miss_ratios_mpki_and_stalls():
    readings = [
        r("cycles", 1000), r("instructions", 2000), r("branches", 400), r("branch-misses", 10),
        r("cache-references", 50), r("cache-misses", 5), r("L1-dcache-loads", 800), r("L1-dcache-load-misses", 40),
        r("LLC-loads", 20), r("LLC-load-misses", 4), r("dTLB-loads", 800), r("dTLB-load-misses", 8),
        r("stalled-cycles-frontend", 250), r("stalled-cycles-backend", 500),
    ]
    ms = by_name(derive(readings))
    assert ms["branch-miss %"].value == pytest.approx(2.5)
    assert ms["cache-miss %"].value == pytest.approx(10.0)
    assert ms["L1-dcache miss %"].value == pytest.approx(5.0)
    assert ms["LLC miss %"].value == pytest.approx(20.0)
    assert ms["dTLB miss %"].value == pytest.approx(1.0)
    assert ms["cache-misses MPKI"].value == pytest.approx(2.5)   # 1000 * 5 / 2000
    assert ms["branch-misses MPKI"].value == pytest.approx(5.0)
    assert ms["frontend stall %"].value == pytest.approx(25.0)
    assert ms["backend stall %"].value == pytest.approx(50.0)
    assert "CPUs utilized" not in ms  # no clock, no wall time


def test_missing_inputs_and_zero_denominators_give_no_metric():
    ms = by_name(derive([r("instructions", 100), r("cycles", 0), r("branch-misses", 3)]))
    assert "IPC" not in ms and "branch-miss %" not in ms


def test_uncertainty_independent_groups_add_in_quadrature():
    # cycles ran 50% of the time, instructions 50%, in different groups: sqrt(0.5^2 + 0.5^2) = 0.707
    ms = by_name(derive([r("cycles", 1000, 1000, 500, group=1), r("instructions", 2000, 1000, 500, group=2)]))
    assert ms["IPC"].uncertainty == pytest.approx(math.sqrt(0.5))


def test_uncertainty_same_group_counts_once():
    # In one group both were observed over the same windows: one term, 1 - 0.5 = 0.5
    ms = by_name(derive([r("cycles", 1000, 1000, 500, group=1), r("instructions", 2000, 1000, 500, group=1)]))
    assert ms["IPC"].uncertainty == pytest.approx(0.5)


def test_uncertainty_only_from_the_multiplexed_input():
    # branches counted fully (u=0), branch-misses ran 80% (u=0.2): u = 0.2
    ms = by_name(derive([r("branches", 100, 1000, 1000, group=1), r("branch-misses", 5, 1000, 800, group=2)]))
    assert ms["branch-miss %"].uncertainty == pytest.approx(0.2)
    assert combined_uncertainty([r("x", 1), r("y", 2, group=3)]) is None


def test_contexts_never_mix():
    ms = derive([r("cycles", 1000, context="u"), r("instructions", 3000, context="k")])
    assert not [m for m in ms if m.name == "IPC"]
    ms = by_name(derive([r("cycles", 1000, context="u", label="cycles:u"),
                         r("instructions", 3000, context="u", label="instructions:u")]))
    assert ms["IPC"].value == pytest.approx(3.0)
    assert ms["IPC"].anchor == "instructions:u"


def test_privilege_context_spelling():
    assert privilege_context(False, False, False) == ""
    assert privilege_context(False, True, True) == "u"
    assert privilege_context(True, False, True) == "k"


def test_topdown_intel_shares_add_to_100():
    parts = {"topdown-retiring": 400, "topdown-bad-spec": 100, "topdown-fe-bound": 200, "topdown-be-bound": 300}
    ms = by_name(derive([r("slots", 1000, group=1)] + [r(k, v, group=1) for k, v in parts.items()]))
    assert ms["topdown retiring"].value == pytest.approx(40.0)
    assert ms["topdown backend bound"].value == pytest.approx(30.0)
    total = sum(m.value for m in ms.values() if m.name.startswith("topdown"))
    assert total == pytest.approx(100.0)


def test_topdown_amd_zen4_pipeline_formulas():
    # slots = 6 x 1000 cycles = 6000; retiring 3000/6000, bad spec (3600-3000)/6000, fe 1200/6000, be 1200/6000
    readings = [r("ls_not_halted_cyc", 1000), r("ex_ret_ops", 3000), r("de_src_op_disp.all", 3600),
                r("de_no_dispatch_per_slot.no_ops_from_frontend", 1200),
                r("de_no_dispatch_per_slot.backend_stalls", 1200)]
    ms = by_name(derive(readings))
    assert ms["topdown retiring"].value == pytest.approx(50.0)
    assert ms["topdown bad speculation"].value == pytest.approx(10.0)
    assert ms["topdown frontend bound"].value == pytest.approx(20.0)
    assert ms["topdown backend bound"].value == pytest.approx(20.0)
