"""`hwprof agent` on this machine against a real ClickHouse server: windows, outages, resends, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hwprof.fleet.clickhouse import ClickHouseStore, Selector
from hwprof.fleet.localserver import LocalClickHouse
from hwprof.fleet.spool import SUFFIX as SPOOL_SUFFIX
from hwprof.pipeline import decode_file
from hwprof.report import ReportOptions, build_report

HWPROF = [sys.executable, "-m", "hwprof"]
SUMMARY = re.compile(r"hwprof agent: (?P<reason>[^:]+): (?P<windows>\d+) windows, (?P<samples>[\d,]+) samples")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent samples the whole machine: needs root")


def agent(store_url: str, *args: str, spool: Path | None = None) -> subprocess.Popen:
    argv = [*HWPROF, "agent", "--store", store_url, *args]
    if spool is not None:
        argv += ["--spool-dir", str(spool)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, run: subprocess.Popen, what: str, timeout_s: float = 60) -> None:
    """Wait on what the agent does, not on a fixed time: decoding lags on a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert run.poll() is None, f"the agent ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.2)


def summary(stderr: str) -> dict:
    match = SUMMARY.search(stderr)
    assert match, stderr
    return {"reason": match["reason"], "windows": int(match["windows"]),
            "samples": int(match["samples"].replace(",", "")), "text": match.group(0)}


def self_shares(profile, comm: str) -> tuple[dict[str, float], int]:
    report = build_report(profile, ReportOptions(comms=(comm,), children=False, limit=0), "x")
    total = sum(r.samples for r in report.rows)
    return {r.keys[-1]: r.samples / total for r in report.rows if r.samples}, total


def forking_workload(seconds: float) -> subprocess.Popen:
    """A shell that starts a short-lived process after another (each with its own pid, exec and exit)."""
    script = f"end=$((SECONDS+{int(seconds)})); while [ $SECONDS -lt $end ]; do /usr/bin/expr 1 + 1 >/dev/null; done"
    return subprocess.Popen(["bash", "-c", script])


def test_six_windows_merge_to_what_record_sees(store_url, demo_workload, tmp_path):
    """Demo and forking workloads, sampled by the agent (6 windows of 2 s) and by `hwprof record -a` over the same
    13 s: the demo's functions have the same shares in both, within sampling noise."""
    demo = subprocess.Popen([str(demo_workload), "19"], stdout=subprocess.DEVNULL)
    forks = forking_workload(19)
    time.sleep(0.5)
    perf_data = tmp_path / "same-period.perf.data"
    try:
        run = agent(store_url, "-F", "99", "--window", "2", "-d", "16", "--label", "test=six", "--host", "agent-t",
                    spool=tmp_path / "spool")
        record = subprocess.run([*HWPROF, "record", "-a", "-g", "-F", "99", "-d", "16", "-q", "-o", str(perf_data)],
                                capture_output=True, text=True, timeout=120)
        _, err = run.communicate(timeout=180)
    finally:
        demo.kill()
        forks.kill()
        demo.wait()
        forks.wait()
    assert record.returncode == 0, record.stderr
    assert run.returncode == 0, err
    stats = summary(err)
    # -d bounds the agent's wall time; the windows are 2 s each plus the session restart between them.
    assert stats["windows"] >= 6, err
    # The default send interval (60 s) is longer than the run: the end of -d sent every window, in one batch.
    assert f"{stats['windows']} sent, 0 already stored, 0 spooled" in err, err
    with ClickHouseStore.open(store_url) as store:
        windows = store.windows(Selector(labels={"test": ("six",)}))
        assert len(windows) == stats["windows"]
        assert sum(w["samples"] for w in windows) == stats["samples"]
        merged = store.merged_profile(Selector(labels={"test": ("six",)}), per_process=True)
        # The forking workload's short-lived processes are followed and labelled.
        expr = [(v, n) for v, n in store.label_values("executable", Selector(labels={"comm": ("expr",)}))]
        assert expr and expr[0][0] == "/usr/bin/expr", expr
    from hwprof.symbolize import Symbolizer

    recorded = decode_file(perf_data, Symbolizer())
    comm = demo_workload.name[:15]
    agent_shares, n_agent = self_shares(merged, comm)
    record_shares, n_record = self_shares(recorded, comm)
    assert n_agent > 80 and n_record > 80, (n_agent, n_record)  # the demo gets what a loaded machine gives it
    # Both sample ~16 s of the same run, but start a second apart on a loaded machine where the demo's CPU share
    # moves: the counts agree loosely, the shapes (below) within noise.
    assert 0.6 < n_agent / n_record < 1.6, (n_agent, n_record)
    for function, p in record_shares.items():
        if p < 0.05:
            continue
        noise = 4 * np.sqrt(p * (1 - p) * (1 / n_agent + 1 / n_record)) + 0.02
        assert abs(agent_shares.get(function, 0.0) - p) <= noise, (function, agent_shares, record_shares)
    assert "hot" in record_shares and record_shares["hot"] > 0.5


def test_a_backend_outage_loses_nothing(tmp_path):
    """The server is down until the agent has spooled at least two batches of two windows (windows of 2 s sent
    every 4 s: the same as 30 s of 10 s windows sent every 20 s, shortened; waiting for the spool files, not a fixed
    time, keeps it true when decoding lags on a loaded machine) while the agent runs; everything sampled arrives
    once it is back, the backlog in batches."""
    server = LocalClickHouse(tmp_path / "ch").start()
    spool_dir = tmp_path / "spool"
    try:
        url = server.url("outage")
        run = agent(url, "--window", "2", "--send-interval", "4", "-d", "120", "-F", "49", spool=spool_dir)
        time.sleep(4)
        server.stop()
        wait_for(lambda: len(list(spool_dir.glob(f"*{SPOOL_SUFFIX}"))) >= 4, run, "two batches spooled")
        server.resume()
        wait_for(lambda: not list(spool_dir.glob(f"*{SPOOL_SUFFIX}")), run, "the spool sent")
        run.send_signal(signal.SIGTERM)  # flushes the current window
        _, err = run.communicate(timeout=180)
        assert run.returncode == 0, err
        stats = summary(err)
        assert "spooling windows to" in err and "store is back" in err
        spooled = int(re.search(r"(\d+) spooled", err)[1])
        assert spooled >= 4 and f"{spooled} sent from the spool" in err, err
        assert not list((tmp_path / "spool").iterdir())
        with ClickHouseStore.open(url) as store:
            windows = store.windows()
            assert len(windows) == stats["windows"]
            assert sum(w["samples"] for w in windows) == stats["samples"] == store.total_samples(Selector())
    finally:
        server.stop()


def test_a_window_resent_after_a_crash_is_stored_once(store_url, tmp_path):
    """A crash after the store took a window but before the spool forgot it: the restarted agent sends it again,
    in one batch with two windows the store never saw; it is stored once, they are stored."""
    run = agent(store_url, "--window", "2", "-d", "2", "--host", "crashy", spool=tmp_path / "spool")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    with ClickHouseStore.open(store_url) as store:
        before = store.total_samples(Selector(labels={"host": ("crashy",)}))
        (window,) = store.windows(Selector(labels={"host": ("crashy",)}))
    assert before > 0
    # Re-create the spool file the crashed agent would have left behind, from what the store holds.
    from hwprof.fleet.spool import Spool
    from hwprof.fleet.window import WindowBatch

    with ClickHouseStore.open(store_url) as store:
        rows = store.execute("SELECT pid, comm, executable, build_id, cgroup, stack_id, stack_end, samples, period, "
                             "counter_values FROM {db}.samples WHERE host = 'crashy'")
    batch = WindowBatch(window_id=int(window["window_id"], 16), host="crashy", start_ns=window["start_ns"],
                        duration_ns=window["duration_ns"], target="", event=window["event"], labels={}, lost=0,
                        filtered=0, counter_names=[],
                        rows={name: [r[i] for r in rows] for i, name in enumerate(
                            ("pid", "comm", "executable", "build_id", "cgroup", "stack_id", "stack_end", "samples",
                             "period", "counter_values"))})
    sys.path.insert(0, str(Path(__file__).parent))
    from test_fleet_store import window as made_window

    spool = Spool(tmp_path / "spool", 1 << 20)
    for item in (batch, made_window(1, time.time() - 50, host="unseen"), made_window(2, time.time() - 40, "unseen")):
        spool.put(item)
    run = agent(store_url, "--window", "1", "-d", "1", "--host", "crashy2", spool=tmp_path / "spool")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "1 already stored" in err and "3 sent from the spool" in err, err
    with ClickHouseStore.open(store_url) as store:
        assert store.total_samples(Selector(labels={"host": ("crashy",)})) == before
        assert store.total_samples(Selector(labels={"host": ("unseen",)})) == 800


def test_sigterm_flushes_the_current_window(store_url, tmp_path):
    run = agent(store_url, "--window", "60", "-d", "120", "--host", "term", spool=tmp_path / "spool")
    time.sleep(6)
    started = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert time.monotonic() - started < 60
    stats = summary(err)
    assert stats["reason"] == "stopped on SIGTERM" and stats["windows"] == 1
    with ClickHouseStore.open(store_url) as store:
        (window,) = store.windows(Selector(labels={"host": ("term",)}))
    assert window["samples"] == stats["samples"] > 0
    assert window["duration_ns"] < 30e9


def test_sigterm_flushes_a_partial_batch(store_url, tmp_path):
    """Windows of 2 s wait for a 60 s send interval: none is in the store while the agent runs; SIGTERM sends the
    waiting ones and the current one, every sampled window arrives."""
    run = agent(store_url, "--window", "2", "--send-interval", "60", "-d", "120", "--host", "batchterm",
                spool=tmp_path / "spool")
    time.sleep(9)
    with ClickHouseStore.open(store_url) as store:
        assert store.windows(Selector(labels={"host": ("batchterm",)})) == []
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    stats = summary(err)
    assert stats["reason"] == "stopped on SIGTERM" and stats["windows"] >= 2, err
    assert f"{stats['windows']} sent, 0 already stored, 0 spooled" in err, err
    with ClickHouseStore.open(store_url) as store:
        windows = store.windows(Selector(labels={"host": ("batchterm",)}))
        assert len(windows) == stats["windows"]
        assert sum(w["samples"] for w in windows) == stats["samples"] == store.total_samples(Selector()) > 0


def test_a_killed_worker_loses_only_the_window_it_was_decoding(store_url, tmp_path):
    """Windows waiting for the send interval are in the spool as soon as they are decoded: after kill -9 of the
    worker (an OOM kill), the next start sends every one of them, once."""
    spool_dir = tmp_path / "spool"
    run = agent(store_url, "--window", "2", "--send-interval", "60", "-d", "120", "--host", "oom",
                spool=spool_dir)
    wait_for(lambda: len(list(spool_dir.glob(f"*{SPOOL_SUFFIX}"))) >= 2, run, "two journaled windows")
    children = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
    workers = [int(pid) for pid in children
               if b"hwprof" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 1, children
    journaled = {path.name for path in spool_dir.glob(f"*{SPOOL_SUFFIX}")}
    os.kill(workers[0], signal.SIGKILL)
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=120)
    with ClickHouseStore.open(store_url) as store:
        assert store.windows(Selector(labels={"host": ("oom",)})) == []  # nothing was sent before the kill
    assert journaled <= {path.name for path in spool_dir.glob(f"*{SPOOL_SUFFIX}")}
    again = agent(store_url, "--window", "1", "-d", "1", "--host", "oom-restart", spool=spool_dir)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    with ClickHouseStore.open(store_url) as store:
        stored = {f"{w['start_ns']:020d}-{int(w['window_id'], 16):016x}{SPOOL_SUFFIX}"
                  for w in store.windows(Selector(labels={"host": ("oom",)}))}
    assert journaled <= stored
    assert not list(spool_dir.glob(f"*{SPOOL_SUFFIX}"))


def test_record_store_keeps_one_capture_as_one_window(store_url, demo_workload, tmp_path):
    """`hwprof record --store URL` stores the capture it made as one window: same samples, same functions."""
    result = subprocess.run([*HWPROF, "record", "-g", "-F", "499", "--store", store_url, "-o",
                             str(tmp_path / "demo.perf.data"), "--", str(demo_workload), "1"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "stored as window" in result.stderr and "hwprof-test-password" not in result.stderr
    from hwprof.symbolize import Symbolizer

    recorded = decode_file(tmp_path / "demo.perf.data", Symbolizer())
    with ClickHouseStore.open(store_url) as store:
        (window,) = store.windows()
        merged = store.merged_profile(Selector(), per_process=True)
    assert window["samples"] == recorded.n_samples == merged.total_samples
    comm = demo_workload.name[:15]
    assert self_shares(merged, comm) == self_shares(recorded, comm)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the nobody user needs root")
def test_an_unprivileged_agent_says_why_in_one_line(run_unprivileged, store_url):
    """At perf_event_paranoid 2 a user may not sample the whole machine: one line and a non-zero exit."""
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    if paranoid < 1:
        pytest.skip(f"perf_event_paranoid is {paranoid}: unprivileged system-wide sampling is allowed here")
    import shutil
    import tempfile

    spool = Path(tempfile.mkdtemp(prefix="hwprof-agent-nobody-", dir="/tmp"))  # pytest's tmp is root-only
    os.chmod(spool, 0o777)
    try:
        result = run_unprivileged([*HWPROF, "agent", "--store", store_url, "-d", "2", "--spool-dir", str(spool)],
                                  timeout=120)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "paranoid" in errors[0], result.stderr


def test_the_agent_enforces_retention(store_url, tmp_path):
    """Debian's 18.16 server has no TTL: the agent drops day partitions older than --retention-days itself."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_fleet_store import window

    with ClickHouseStore.open(store_url) as store:
        store.insert_window(window(1, time.time() - 40 * 86400, host="old"))
    run = agent(store_url, "--window", "2", "-d", "2", "--retention-days", "30", "--host", "new",
                spool=tmp_path / "spool")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "retention (30 days): dropped samples/" in err, err
    with ClickHouseStore.open(store_url) as store:
        assert store.total_samples(Selector(labels={"host": ("old",)})) == 0
        assert store.total_samples(Selector(labels={"host": ("new",)})) > 0


def test_only_the_first_window_and_the_ones_asked_for_start_with_a_snapshot(tmp_path):
    """Without synthesize_each_window the sampler writes the /proc snapshot of the target into the first window and
    into a window after request_synthesis() (the agent's worker lost track), not into the others; each file says
    which it is."""
    from hwprof.collectors.sampling import SamplingOptions, SamplingSession, Target

    from hwprof.perf.records import Mmap, SampleLayout
    from hwprof.perfdata.reader import PerfDataFile
    from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk

    target = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.2)

        def target_maps(path: str) -> int:
            seen = []

            class Maps(RecordHandler):
                def mmap(self, rec: Mmap, when: int) -> None:
                    if rec.pid == target.pid:
                        seen.append(rec.filename)

            with PerfDataFile(path) as f:
                layout = SampleLayout.from_attr(f.attrs[0].attr)
                walk = RecordWalk(EventTable([EventInfo(0, "", f.attrs[0].attr, layout)], {}, side_layout=layout),
                                  Maps())
                for block in f.blocks():
                    walk.feed(block)
                walk.close()
            return len(seen)

        windows = []

        def hand_over(result):
            windows.append((result.synthesized, target_maps(result.path)))
            if len(windows) == 2:
                session.request_synthesis()
            return str(tmp_path / f"w{len(windows)}.perf.data")

        options = SamplingOptions(events="cpu-clock", frequency=49, callgraph=True, duration=2.4, window=0.5,
                                  synthesize_each_window=False)
        session = SamplingSession(Target(pids=(target.pid,)), options, tmp_path / "w0.perf.data",
                                  on_window=hand_over)
        last = session.run()
        windows.append((last.synthesized, target_maps(last.path)))
    finally:
        target.kill()
        target.wait()
    assert len(windows) >= 4, windows
    assert [s for s, _ in windows[:4]] == [True, False, True, False], windows
    assert all(n > 0 for s, n in windows if s) and all(n == 0 for s, n in windows if not s), windows
