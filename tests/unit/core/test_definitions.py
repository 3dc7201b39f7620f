"""The definitions stat, report and the web view share: event names, ratios, stack quality."""

from __future__ import annotations

import pytest

from hwprof.definitions import COUNTER_RATIOS, canonical_event, group_ratios, ratio_sums, ratio_value
from hwprof.metrics import Reading, derive


@pytest.mark.parametrize(("written", "canonical"), [
    ("cycles:u", "cycles"), ("cpu-cycles", "cycles"), ("cpu/instructions/u", "instructions"),
    ("cpu_core/INST_RETIRED.ANY/", "instructions"), ("sched:sched_switch", "sched:sched_switch"),
    ("cpu/event=0x3c/", "cpu/event=0x3c/"), ("page-faults:k", "page-faults"),
])
def test_event_names(written, canonical):
    assert canonical_event(written) == canonical


def test_stat_and_report_name_a_ratio_the_same():
    """cache-misses over cache-references is 'cache-miss %' in stat's metrics and in the report's columns."""
    stat = {m.name for m in derive([Reading("cache-misses", 5, 1, 1), Reading("cache-references", 50, 1, 1)])}
    report = {r.name for r in group_ratios(["cache-references", "cache-misses"])}
    assert "cache-miss %" in stat and report == {"cache-miss %"}
    assert len({r.name for r in COUNTER_RATIOS}) == len(COUNTER_RATIOS)


def test_each_ratio_once_and_never_a_member_per_itself():
    ratios = group_ratios(["cpu-clock", "cpu-clock", "page-faults", "page-faults:u"])
    assert [(r.name, r.numerator, r.denominator) for r in ratios] == [("page-faults/ms", 2, 0)]
    assert [r.name for r in group_ratios(["page-faults", "context-switches"])] == ["context-switches/page-faults"]


def test_a_ratio_is_the_ratio_of_sums():
    (rate,) = [r for r in group_ratios(["X.L3_MISS", "X.L3_HIT"]) if r.name.endswith("rate %")]
    assert ratio_value(*ratio_sums([30.0, 10.0], rate), rate.factor) == 75.0
    assert ratio_value(1.0, 0.0, 1.0) is None
