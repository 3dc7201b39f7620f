"""Aggregation and interval arithmetic of counter snapshots, and the names perf's :u fallback produces."""

from __future__ import annotations

from hwprof.collectors.counting import Snapshot, _with_user_modifier, sum_values

from hwprof.perf.readformat import CounterValue


def test_sum_then_scale_like_perf():
    # Two CPUs, one multiplexed: perf sums values and times first, then scales the sum.
    total = sum_values([CounterValue(100, 1000, 500), CounterValue(300, 1000, 1000)])
    assert (total.raw, total.enabled, total.running) == (400, 2000, 1500)
    assert total.scaled == 400 * 2000 / 1500


def test_interval_deltas_and_new_locations():
    before = Snapshot(10, {0: {1: CounterValue(100, 50, 50)}})
    after = Snapshot(20, {0: {1: CounterValue(160, 80, 70), 2: CounterValue(5, 3, 3)}})
    delta = after.minus(before)
    assert delta.values[0][1] == CounterValue(60, 30, 20)
    assert delta.values[0][2] == CounterValue(5, 3, 3)  # a thread found since: counted from zero
    assert delta.total(0) == CounterValue(65, 33, 23)
    assert delta.total(7) is None


def test_user_only_fallback_names():
    assert _with_user_modifier("cycles") == "cycles:u"
    assert _with_user_modifier("cycles:p") == "cycles:pu"
    assert _with_user_modifier("syscalls:sys_enter_write") == "syscalls:sys_enter_write:u"
    assert _with_user_modifier("msr/tsc/") == "msr/tsc/:u"
