"""Pairing entries with returns, bcc's log2 buckets and nearest-rank percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from hwprof.collectors.latency import log2_histogram, pair_calls, percentile, render_histogram, summarize


def test_log2_buckets_like_bcc():
    buckets = log2_histogram(np.array([0, 1, 2, 3, 4, 7, 8, 1023, 1024, 2047, 2048]))
    as_tuples = [(b.low, b.high, b.count) for b in buckets]
    assert as_tuples == [
        (0, 0, 1), (1, 1, 1), (2, 3, 2), (4, 7, 2), (8, 15, 1), (16, 31, 0), (32, 63, 0), (64, 127, 0),
        (128, 255, 0), (256, 511, 0), (512, 1023, 1), (1024, 2047, 2), (2048, 4095, 1),
    ]


def test_exact_powers_of_two_at_large_values():
    v = np.array([(1 << 52), (1 << 52) - 1, (1 << 53) + 1], dtype=np.int64)
    buckets = {(b.low, b.high): b.count for b in log2_histogram(v) if b.count}
    assert buckets == {(1 << 51, (1 << 52) - 1): 1, (1 << 52, (1 << 53) - 1): 1, (1 << 53, (1 << 54) - 1): 1}


def test_percentiles_nearest_rank():
    values = np.arange(1, 101)
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(np.array([7]), 99) == 7
    assert percentile(np.array([], dtype=np.int64), 50) == 0


def test_pairing_per_thread_with_recursion_and_edges():
    # tid 1: f enters at 10, recurses at 20, inner returns at 25, outer at 40.
    # tid 2: a return at 5 without its entry (probe went in mid-call); an entry at 50 never returns.
    tids = np.array([1, 1, 2, 1, 1, 2])
    times = np.array([10, 20, 5, 25, 40, 50])
    is_return = np.array([False, False, True, True, True, False])
    pairing = pair_calls(tids, times, is_return)
    assert sorted(pairing.durations.tolist()) == [5, 30]
    assert pairing.unmatched_returns == 1
    assert pairing.unfinished == 1


def test_a_call_shorter_than_the_clock_step_still_pairs():
    """Entry and return with one timestamp (a coarse clock): the entry opens the call, whatever the input order."""
    tids = np.array([7, 7, 7, 7, 7, 7])
    times = np.array([100, 100, 100, 100, 200, 200])
    is_return = np.array([True, False, True, False, True, False])
    pairing = pair_calls(tids, times, is_return)
    assert pairing.durations.tolist() == [0, 0, 0]
    assert (pairing.unmatched_returns, pairing.unfinished) == (0, 0)


def test_pairing_is_independent_of_input_order():
    rng = np.random.default_rng(7)
    tids = np.repeat(np.arange(4), 20)
    starts = np.tile(np.arange(0, 2000, 100), 4)
    durations = rng.integers(1, 90, size=80)
    all_tids = np.concatenate([tids, tids])
    all_times = np.concatenate([starts, starts + durations])
    flags = np.concatenate([np.zeros(80, bool), np.ones(80, bool)])
    order = rng.permutation(160)
    pairing = pair_calls(all_tids[order], all_times[order], flags[order])
    assert sorted(pairing.durations.tolist()) == sorted(durations.tolist())


def test_summary_and_histogram_text():
    ns = np.array([1_100_000] * 5 + [5_100_000] * 3 + [25_100_000] * 2)
    s = summarize(ns, "us")
    assert (s.calls, s.p50_ns, s.p90_ns, s.p99_ns, s.max_ns) == (10, 1_100_000, 25_100_000, 25_100_000, 25_100_000)
    counts = {(b.low, b.high): b.count for b in s.buckets if b.count}
    assert counts == {(1024, 2047): 5, (4096, 8191): 3, (16384, 32767): 2}
    lines = render_histogram(s)
    assert "usecs" in lines[0]
    assert lines[1].split(":")[1].split()[0] == "5"
    assert lines[1].count("*") == 40


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_empty(unit):
    s = summarize(np.array([], dtype=np.int64), unit)
    assert s.calls == 0 and s.buckets == ()
