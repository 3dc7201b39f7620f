"""A self-time report decodes only leaves and outermost frames (decode_file(stacks="leaf")), with the same answer as
from whole stacks: every row, share, sample count, ratio and the stack-quality line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwprof.pipeline import decode_file
from hwprof.report import ReportOptions, build_report

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ["hwprof.perf.data", "perf.perf.data", "group.perf.data", "perf-group.perf.data"])
@pytest.mark.parametrize("sort", [("symbol",), ("dso", "symbol"), ("comm", "symbol")])
def test_self_report_from_leaves_equals_the_one_from_whole_stacks(name, sort):
    from tests.unit.pipeline.test_golden import GoldenSymbolizer

    whole = decode_file(GOLDEN / name, GoldenSymbolizer())
    leaves = decode_file(GOLDEN / name, GoldenSymbolizer(), stacks="leaf")
    assert len(leaves.stack_frame) < len(whole.stack_frame)  # the point: far less to build
    opts = ReportOptions(sort=sort, children=False, limit=0)
    a, b = build_report(whole, opts, "x"), build_report(leaves, opts, "x")
    assert a.rows == b.rows
    assert a.quality == b.quality
    assert np.array_equal(whole.sample_end, leaves.sample_end)
    assert np.array_equal(whole.counters, leaves.counters)


def test_stacks_must_be_full_or_leaf():
    with pytest.raises(ValueError):
        decode_file(GOLDEN / "hwprof.perf.data", stacks="some")
