"""Function latency from entry/return probe hits: pairing per thread, log2 histograms and percentiles.

Why pair in user space after sorting by time: in system-wide mode entry and return of one call can land in
different per-CPU rings (the thread migrated), so rings are merged by timestamp before pairing. A return without
its entry (the probe went in mid-call) and an entry without a return (still running at the end) are counted, not
guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwprof.units import Nanoseconds

UNITS: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
UNIT_TITLES = {"ns": "nsecs", "us": "usecs", "ms": "msecs", "s": "secs"}


@dataclass(frozen=True)
class Pairing:
    durations: np.ndarray     # int64 ns, one per completed call, in return order
    unmatched_returns: int    # a return whose entry was before the probe went in
    unfinished: int           # entries still open at the end (still running, or a longjmp/exception skipped the return)


def pair_calls(tids: np.ndarray, times: np.ndarray, is_return: np.ndarray) -> Pairing:
    """Pair entries with returns per thread (a stack per thread handles recursion)."""
    # By tid, then time; on a tie the entry first (0 sorts before 1). A tie is a call shorter than the clock's step:
    # taking its return first would leave it unmatched and pair its entry with the next call's return.
    order = np.lexsort((is_return.astype(np.int8), times, tids))
    stacks: dict[int, list[int]] = {}
    durations: list[int] = []
    unmatched = 0
    for i in order.tolist():
        tid = int(tids[i])
        stack = stacks.setdefault(tid, [])
        if is_return[i]:
            if stack:
                durations.append(int(times[i]) - stack.pop())
            else:
                unmatched += 1
        else:
            stack.append(int(times[i]))
    unfinished = sum(len(s) for s in stacks.values())
    return Pairing(np.asarray(durations, dtype=np.int64), unmatched, unfinished)


@dataclass(frozen=True)
class Bucket:
    low: int    # in the histogram's unit, inclusive
    high: int   # inclusive, like bcc's "512 -> 1023"
    count: int


@dataclass(frozen=True)
class LatencySummary:
    calls: int
    min_ns: Nanoseconds
    mean_ns: float
    p50_ns: Nanoseconds
    p90_ns: Nanoseconds
    p99_ns: Nanoseconds
    max_ns: Nanoseconds
    unit: str
    buckets: tuple[Bucket, ...]


def log2_histogram(values: np.ndarray) -> list[Bucket]:
    """bcc's log2 buckets: 0 -> 1, 2 -> 3, 4 -> 7, ...; bucket k holds [2^(k-1), 2^k - 1] (k=0 holds 0)."""
    if len(values) == 0:
        return []
    v = np.maximum(values.astype(np.int64), 0)
    # bit_length: 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3 ...
    slots = np.zeros(len(v), dtype=np.int64)
    nz = v > 0
    slots[nz] = np.floor(np.log2(v[nz].astype(np.float64))).astype(np.int64) + 1
    # floating log2 can misplace exact powers of two near 2^53; correct with integer checks
    too_high = nz & (np.left_shift(1, np.maximum(slots - 1, 0)) > v)
    slots[too_high] -= 1
    too_low = nz & (np.left_shift(1, slots) <= v)
    slots[too_low] += 1
    counts = np.bincount(slots)
    first = int(np.nonzero(counts)[0][0])
    out = []
    for k in range(first, len(counts)):
        low = 0 if k == 0 else 1 << (k - 1)
        high = 0 if k == 0 else (1 << k) - 1
        out.append(Bucket(low, high, int(counts[k])))
    return out


def percentile(sorted_ns: np.ndarray, q: float) -> int:
    """Nearest-rank percentile (a value that occurred), as HdrHistogram and funclatency-style tools report."""
    if len(sorted_ns) == 0:
        return 0
    rank = max(1, int(np.ceil(q / 100.0 * len(sorted_ns))))
    return int(sorted_ns[rank - 1])


def summarize(durations_ns: np.ndarray, unit: str = "us") -> LatencySummary:
    scale = UNITS[unit]
    values = np.sort(durations_ns.astype(np.int64))
    if len(values) == 0:
        return LatencySummary(0, 0, 0.0, 0, 0, 0, 0, unit, ())
    return LatencySummary(
        calls=len(values),
        min_ns=int(values[0]),
        mean_ns=float(values.mean()),
        p50_ns=percentile(values, 50),
        p90_ns=percentile(values, 90),
        p99_ns=percentile(values, 99),
        max_ns=int(values[-1]),
        unit=unit,
        buckets=tuple(log2_histogram(values // scale)),
    )


def format_duration(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.3f}s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3f}ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3f}us"
    return f"{ns:.0f}ns"


def render_histogram(summary: LatencySummary, width: int = 40) -> list[str]:
    """bcc funclatency's table: `low -> high : count |****|`."""
    title = UNIT_TITLES[summary.unit]
    lines = [f"{title:>20} : count     distribution"]
    peak = max((b.count for b in summary.buckets), default=0)
    for b in summary.buckets:
        stars = int(round(width * b.count / peak)) if peak else 0
        lines.append(f"{b.low:>10} -> {b.high:<10}: {b.count:<9} |{'*' * stars:<{width}}|")
    return lines
