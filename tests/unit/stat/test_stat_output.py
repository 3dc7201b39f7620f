"""Rendering of stat results (perf-style text, CSV, JSON) and the scaling of multiplexed counters.

Multiplexed values are synthetic CounterValues: on this PMU-less VM only software events exist and they never
multiplex, so the kernel cannot produce running < enabled here; the arithmetic is pinned down instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hwprof.collectors.count_results import event_result, slice_of
from hwprof.collectors.counting import EventSlot

from hwprof.metrics import Metric
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import CounterValue
from hwprof.stat_output import EventResult, Slice, StatResult, render_csv, render_json, render_text

SCHEMA = json.loads((Path(__file__).parent / "stat.schema.json").read_text())

CYCLES = EventSlot(0, "cycles", 0, PerfEventAttr(type=0, config=0))
INSTRUCTIONS = EventSlot(1, "instructions", 1, PerfEventAttr(type=0, config=1))
TASK_CLOCK = EventSlot(2, "task-clock", 2, PerfEventAttr(type=1, config=1), unit="msec")


def test_multiplexed_counter_is_scaled_by_enabled_over_running():
    result = event_result(CYCLES, CounterValue(raw=1000, enabled=400, running=100))
    assert result.value == 4000 and result.raw == 1000
    assert result.multiplexed and result.running_pct == pytest.approx(25.0)
    unscaled = event_result(CYCLES, CounterValue(raw=1000, enabled=400, running=100), no_scale=True)
    assert unscaled.value == 1000


def test_not_counted_and_not_supported():
    never_ran = event_result(CYCLES, CounterValue(raw=0, enabled=400, running=0))
    assert never_ran.value is None and never_ran.supported and not never_ran.counted
    unsupported = event_result(EventSlot(0, "cycles", 0, PerfEventAttr(), supported=False, error="no PMU"), None)
    assert not unsupported.supported and unsupported.error == "no PMU"


def test_clock_events_print_in_msec():
    assert event_result(TASK_CLOCK, CounterValue(2_500_000, 10, 10)).value == pytest.approx(2.5)


def test_slice_metrics_carry_the_multiplexing_uncertainty():
    values = {0: CounterValue(1000, 1000, 500), 1: CounterValue(1500, 1000, 500), 2: CounterValue(10**6, 1, 1)}
    s = slice_of([CYCLES, INSTRUCTIONS, TASK_CLOCK], values, wall_ns=10**6, no_scale=False)
    ipc = next(m for m in s.metrics if m.name == "IPC")
    assert ipc.value == pytest.approx(1.5)            # both scaled x2: 3000 / 2000
    assert ipc.uncertainty == pytest.approx(0.5 ** 0.5)  # separate groups, each half extrapolated


def sample_result(**extra) -> StatResult:
    events = (
        EventResult("task-clock", 1.5, "msec", 1_500_000, 1_500_000, raw=1_500_000),
        EventResult("cycles", 4_000_000.0, "", 1000, 250, raw=1_000_000),
        EventResult("instructions", 2_000_000.0, "", 1000, 1000, raw=2_000_000),
        EventResult("branches", None, "", supported=False, error="no PMU"),
    )
    metrics = (
        Metric("CPUs utilized", 0.5, "CPUs utilized", None, "task-clock"),
        Metric("IPC", 0.5, "insn per cycle", 0.75, "instructions"),
    )
    return StatResult("'./a.out'", events, metrics, duration_ns=3_000_000, command=("./a.out",), exit_code=0,
                      user_ns=1_000_000, system_ns=0, **extra)


def test_text_layout_follows_perf():
    text = render_text(sample_result())
    lines = text.splitlines()
    assert " Performance counter stats for './a.out':" in lines
    assert "              1.50 msec task-clock                       #    0.500 CPUs utilized" in lines
    # multiplexed: the running percentage beside the scaled value
    assert "         4,000,000      cycles" + " " * 69 + "(25.00%)" in lines
    assert ("         2,000,000      instructions                     #    0.500 insn per cycle "
            "(±75.0% multiplexed)") in lines
    assert "   <not supported>      branches" in lines
    assert "       0.003000000 seconds time elapsed" in lines


def test_repeat_spread_is_perfs_standard_error_of_the_mean():
    e = EventResult("page-faults", 100.0, "", 3, 3, stddev=6.0, runs=4)
    assert e.relative_error_of_mean == pytest.approx(6.0 / 2 / 100)
    text = render_text(StatResult("'x'", (e,), runs=4, duration_ns=10, duration_stddev_ns=2.0))
    assert "( +-  3.00% )" in text and "(4 runs)" in text


def test_csv_columns_are_perfs():
    rows = render_csv(sample_result(), ";").splitlines()
    assert rows[0] == "1.50;msec;task-clock;1500000;100.00;0.500;CPUs utilized"
    assert rows[1] == "4000000;;cycles;250;25.00;;"
    assert rows[3] == "<not supported>;;branches;0;100.00;;"


def test_json_document_validates_against_the_schema():
    per_cpu = (Slice(sample_result().events, (), cpu=0), Slice(sample_result().events, (), cpu=1))
    interval = Slice(sample_result().events, sample_result().metrics, time_ns=100, per_cpu=per_cpu)
    doc = json.loads(render_json(sample_result(per_cpu=per_cpu, intervals=(interval,))))
    jsonschema.validate(doc, SCHEMA)
    assert doc["events"][1]["running_pct"] == 25.0
    assert doc["metrics"][1] == {"name": "IPC", "value": 0.5, "unit": "insn per cycle", "uncertainty": 0.75,
                                 "event": "instructions"}
    broken = dict(doc, events=[{"name": "x"}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_per_cpu_rows_are_event_major_like_perf():
    clock = EventResult("cpu-clock", 100.0, "msec", 10, 10)
    faults = EventResult("page-faults", 7.0, "", 10, 10)
    per_cpu = (Slice((clock, faults), (), cpu=0), Slice((clock, faults), (), cpu=1))
    text = render_text(StatResult("'system wide'", (clock, faults), per_cpu=per_cpu, duration_ns=10))
    rows = [line for line in text.splitlines() if line.startswith("CPU")]
    assert [r.split()[0] + " " + r.split()[-1] for r in rows] == [
        "CPU0 cpu-clock", "CPU1 cpu-clock", "CPU0 page-faults", "CPU1 page-faults"]


def test_interval_rows_carry_their_timestamp():
    from hwprof.stat_output import interval_header, render_interval_csv, render_interval_text

    s = Slice((EventResult("task-clock", 99.5, "msec", 10, 10),), (), time_ns=1_500_000_000)
    assert render_interval_text(s) == "     1.500000000              99.50 msec task-clock\n"
    assert render_interval_csv(s, ",") == "1.500000000,99.50,msec,task-clock,10,100.00,,\n"
    assert interval_header(False, False).split() == ["#", "time", "counts", "unit", "events"]


def test_per_thread_rows_name_comm_and_tid():
    t = Slice((EventResult("task-clock", 5.0, "msec", 1, 1),), (), tid=4242, pid=4240, comm="worker")
    text = render_text(StatResult("process id '4240'", t.events, per_thread=(t,), duration_ns=1))
    assert "          worker-4242                   5.00 msec task-clock" in text
    assert render_csv(StatResult("x", t.events, per_thread=(t,)), ",").startswith("worker-4242,5.00,msec,task-clock")
