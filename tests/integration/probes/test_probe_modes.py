"""--latency, --stacks and --args on programs whose behaviour is known."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from probe_helpers import hwprof_entries, probe_json, run_probe

from hwprof.profile import Profile

pytestmark = pytest.mark.usefixtures("root_only")


def _bucket_us(ns: int) -> tuple[int, int]:
    us = ns // 1000
    k = us.bit_length()
    return (0, 0) if k == 0 else (1 << (k - 1), (1 << k) - 1)


def test_latency_buckets_and_percentiles(programs, tmp_path):
    """Each call lands in the bucket of its true duration (measured by the program itself around the call)."""
    out = tmp_path / "lat.json"
    proc = run_probe("--latency", "--json", "-o", str(out), "-u", f"{programs['latency']}:nap", "--",
                     programs["latency"])
    assert proc.returncode == 0, proc.stderr
    truth = sorted(int(line) for line in proc.stderr.split() if line.isdigit())
    assert len(truth) == 10
    # the mix: five ~1 ms, three ~5 ms, two ~25 ms sleeps
    assert all(1_000_000 <= t for t in truth[:5]) and all(5_000_000 <= t for t in truth[5:8])
    assert all(25_000_000 <= t for t in truth[8:])
    (lat,) = json.loads(out.read_text())["latency"]
    assert lat["calls"] == 10 and lat["unmatched_returns"] == 0 and lat["unfinished"] == 0
    # the probe sees slightly less than the caller's clock (no clock_gettime in between): 2% + 50 us slack
    for ours, true in ((lat["p50_ns"], truth[4]), (lat["p90_ns"], truth[8]), (lat["p99_ns"], truth[9]),
                       (lat["max_ns"], truth[9]), (lat["min_ns"], truth[0])):
        assert true * 0.98 - 50_000 <= ours <= true, (ours, true)
    buckets = {(b["low"], b["high"]): b["count"] for b in lat["histogram"] if b["count"]}
    expected: dict[tuple[int, int], int] = {}
    for t in truth:
        expected[_bucket_us(t)] = expected.get(_bucket_us(t), 0) + 1
    near_edge = any(_bucket_us(t) != _bucket_us(int(t * 0.98) - 50_000) for t in truth)
    if not near_edge:
        assert buckets == expected
    assert sum(buckets.values()) == 10


def test_latency_text_is_a_funclatency_histogram(programs):
    proc = run_probe("--latency", "--unit", "ms", "-u", f"{programs['latency']}:nap", "--", programs["latency"])
    assert proc.returncode == 0, proc.stderr
    assert "msecs" in proc.stdout and "distribution" in proc.stdout
    assert "calls 10" in proc.stdout and "p99" in proc.stdout


def test_stacks_folded_and_stored(programs, tmp_path):
    env = {**os.environ, "HWPROF_HOME": str(tmp_path / "store")}
    out = tmp_path / "folded.txt"
    proc = run_probe("--stacks", "-o", str(out), "-u", f"{programs['latency']}:nap", "--", programs["latency"],
                     env=env)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == 10
    assert any(line.startswith(("main;nap ", "__libc_start_call_main;main;nap ")) or ";main;nap " in line
               for line in lines), lines
    stored = list((tmp_path / "store" / "data").glob("probe-*.npz"))
    assert len(stored) == 1
    profile = Profile.load(stored[0])
    assert profile.n_samples == 10
    assert profile.meta.source == "hwprof probe"
    assert np.all(profile.sample_stack >= 0)
    # the web view opens it like any stored profile
    from hwprof.web.sources import EntrySource

    from hwprof.store import ProfileStore

    store = ProfileStore(tmp_path / "store")
    (entry,) = store.list("probe")
    assert entry.samples == 10 and entry.stack_quality is not None
    assert len(EntrySource(store).payload_gzip(entry)) > 100


def test_args_from_fetchargs(programs, tmp_path):
    doc = probe_json(tmp_path, "--args", "-u", f"{programs['calls']}:work x=%di:s32", "--", programs["calls"], "5")
    assert [h["args"]["x"] for h in doc["hits"]] == [0, 1, 2, 3, 4]
    assert doc["probes"][0]["mechanism"] == "tracefs"
    assert hwprof_entries() == []


def test_args_of_a_tracepoint(programs, tmp_path):
    doc = probe_json(tmp_path, "--args", "-t", "syscalls:sys_enter_write", "--", programs["writes"], "3")
    assert len(doc["hits"]) == 3
    assert all(h["args"]["count"] == 1 for h in doc["hits"])


@pytest.mark.parametrize("mechanism", ["pmu", "tracefs"])
def test_an_overflowing_ring_accounts_for_every_hit(programs, tmp_path, mechanism):
    """A one-page ring drops samples: each dropped hit is in a LOST record, whichever event's sample it was."""
    doc = probe_json(tmp_path, "--mechanism", mechanism, "-m", "1", "--latency", "-u", f"{programs['calls']}:work",
                     "--", programs["calls"], "200000")
    arrived = sum(p["processes"][0]["hits"] for p in doc["probes"])
    assert [p["hits"] for p in doc["probes"]] == [200_000, 200_000]
    assert doc["lost"] > 0
    # The kernel's lost count also takes the side records a full ring dropped (the command's EXIT, say): at most 3.
    assert 0 <= arrived + doc["lost"] - 400_000 <= 3, doc["notes"]
    assert doc["notes"] == [] if mechanism == "tracefs" else all("never arrived" not in n for n in doc["notes"])
    (lat,) = doc["latency"]
    assert 2 * lat["calls"] + lat["unmatched_returns"] + lat["unfinished"] == arrived
