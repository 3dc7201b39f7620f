"""The fleet store against a real ClickHouse server: idempotent windows, migrations, merges and bad input."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from hwprof.errors import HwprofError
from hwprof.fleet.clickhouse import ClickHouseStore, Selector, StoreUnavailable
from hwprof.fleet.schema import SCHEMA_VERSION
from hwprof.fleet.spool import Spool
from hwprof.fleet.window import ProcessLabels, window_from_profile
from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta
from hwprof.report import ReportOptions, build_report

HWPROF = [sys.executable, "-m", "hwprof"]


def make_profile(seed: int, n: int = 400, comm: str = "api", pid: int = 100):
    """A small profile: main -> {handle -> parse | handle -> render | idle}, with a page-faults member."""
    rng = np.random.default_rng(seed)
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"], weight_names=["page-faults"], target="test"))
    main = b.frame(function="main", module="/srv/api", address=0x10, kind=FrameKind.USER, file="main.c", line=3)
    handle = b.frame(function="handle", module="/srv/api", address=0x20, kind=FrameKind.USER)
    parse = b.frame(function="parse", module="/srv/api", address=0x30, kind=FrameKind.USER)
    render = b.frame(function="render", module="/srv/api", address=0x40, kind=FrameKind.USER)
    stacks = [b.stack([main, handle, parse]), b.stack([main, handle, render]), b.stack([main])]
    b.threads[pid] = comm
    picks = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    for i, k in enumerate(picks):
        b.sample(time=i * 1000, pid=pid, tid=pid, cpu=0, stack=stacks[k], period=1e6, counters=[float(k)])
    return b.build()


def window(seed: int, start_s: float, host: str = "h1", **kw):
    return window_from_profile(make_profile(seed, **kw), host=host, start_ns=int(start_s * 1e9),
                               duration_ns=10_000_000_000, labels={"service": "api"},
                               labeler=lambda pid, comm: ProcessLabels("/srv/api", "ab12", "/system.slice/api"))


def test_a_resent_window_is_stored_once(store_url):
    with ClickHouseStore.open(store_url) as store:
        w = window(1, time.time())
        assert store.insert_window(w) is True
        assert store.insert_window(w) is False
    with ClickHouseStore.open(store_url) as again:   # a new connection (an agent restarted after a crash)
        assert again.insert_window(w) is False
        assert again.total_samples(Selector()) == 400
        assert len(again.windows()) == 1


def test_a_batch_resent_after_a_partial_store_is_stored_once(store_url, monkeypatch):
    """Windows go in batches (one insert per table); a batch is resent after a crash stopped its send between the
    sample rows and the window rows, and with a window stored before by another send: each window is kept once.
    The batch spans midnight, so its one sample insert wrote one part in each day's partition."""
    midnight = (int(time.time()) // 86400 - 1) * 86400
    batch = [window(i, midnight - 25 + 10 * i) for i in range(4)]
    earlier, fresh = window(4, midnight + 15), window(5, midnight + 25)
    with ClickHouseStore.open(store_url) as store:
        assert store.insert_windows([earlier]) == [True]

        def connection_lost(batches):
            raise StoreUnavailable("lost the connection (test: after the sample rows)")

        monkeypatch.setattr(store, "_insert_window_rows", connection_lost)
        with pytest.raises(StoreUnavailable):
            store.insert_windows(batch, first_attempt=True)
        assert store.total_samples(Selector()) == 5 * 400 and len(store.windows()) == 1
        days = store.execute("SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND "
                             "table = 'samples' AND active", {"db": store.db})
        assert len(days) == 2
    with ClickHouseStore.open(store_url) as again:          # the agent restarted: its spool sends them again
        assert again.insert_windows([*batch, earlier, fresh]) == [False] * 5 + [True]
        assert again.insert_windows([*batch, earlier, fresh]) == [False] * 6
        assert again.total_samples(Selector()) == 6 * 400
        assert len(again.windows()) == 6 and sum(w["samples"] for w in again.windows()) == 6 * 400
        again.use_rollup = False
        assert again.total_samples(Selector()) == 6 * 400


def test_merged_windows_equal_the_sum_of_their_profiles(store_url):
    now = time.time() - 3600
    with ClickHouseStore.open(store_url) as store:
        for i in range(6):
            store.insert_window(window(i, now + 10 * i, host=f"h{i % 2}"))
        merged = store.merged_profile(Selector(labels={"service": ("api",)}))
        assert merged.total_samples == 2400
        expected = {}
        for i in range(6):
            p = make_profile(i)
            for stack in p.sample_stack.tolist():
                leaf = p.frame_label(p.stack_frames(stack)[-1])
                expected[leaf] = expected.get(leaf, 0) + 1
        report = build_report(merged, ReportOptions(children=False, limit=0), "fleet")
        got = {row.keys[-1]: row.samples for row in report.rows if row.samples}
        assert got == expected
        # Top functions computed inside ClickHouse agree with the merged profile's report.
        top = {f["function"]: (f["total"], f["self"]) for f in store.top_functions(Selector())}
        assert top["main"][0] == 2400
        assert top["parse"] == (expected["parse"], expected["parse"])
        # Counters merge by member name; selections by label, host and time push down into the query.
        assert merged.meta.weight_names == ["page-faults"]
        assert store.total_samples(Selector(labels={"host": ("h0",)})) == 1200
        assert store.total_samples(Selector(start_s=now + 25, end_s=now + 45)) == 800
        assert store.total_samples(Selector(labels={"cgroup": ("/system.slice/api",)})) == 2400
        assert store.total_samples(Selector(labels={"service": ("web",)})) == 0


def test_an_older_schema_is_migrated_and_keeps_its_rows(store_url):
    with ClickHouseStore.open(store_url, migrate=False) as store:
        assert store.migrate(to_version=1) == [1]
        store.execute("INSERT INTO {db}.samples (window_start, window_id, host, pid, comm, executable, build_id, "
                      "label_keys, label_values, event, stack_id, stack_end, samples, period) VALUES",
                      [(store_time(), 7, "old", 1, "legacy", "", "", [], [], "cpu-clock", 0, 3, 5, 5e6)])
        assert store.schema_version() == 1
    with ClickHouseStore.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.total_samples(Selector(labels={"comm": ("legacy",)})) == 5
        store.insert_window(window(3, time.time()))
        assert store.total_samples(Selector()) == 405


def store_time():
    import datetime as dt

    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def test_a_newer_schema_is_refused(store_url):
    with ClickHouseStore.open(store_url) as store:
        store.execute("INSERT INTO {db}.schema_version (version, applied, hwprof) VALUES",
                      [(SCHEMA_VERSION + 1, store_time(), "future")])
    with pytest.raises(HwprofError, match="newer than this hwprof"):
        ClickHouseStore.open(store_url)


def test_retention_drops_old_days(store_url):
    with ClickHouseStore.open(store_url) as store:
        store.insert_window(window(1, time.time() - 40 * 86400))
        store.insert_window(window(2, time.time()))
        dropped = store.enforce_retention(30)
        assert {d.split("/")[0] for d in dropped} == {"samples", "windows", "samples_10m", "samples_pid_10m"}
        assert store.total_samples(Selector()) == 400
        store.use_rollup = False
        assert store.total_samples(Selector()) == 400


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HWPROF, *args], capture_output=True, text=True, timeout=120)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_input_is_one_line(clickhouse):
    wrong = clickhouse.url("t_bad").replace(clickhouse.password, "not-the-password")
    assert "wrong user or password" in _one_line_error(_cli("report", "--store", wrong))
    line = _one_line_error(_cli("ls", "--store", "clickhouse://127.0.0.1:1/db"))
    assert "cannot reach ClickHouse at clickhouse://127.0.0.1:1/db" in line
    assert "no database" in _one_line_error(_cli("report", "--store", "clickhouse://127.0.0.1"))
    assert "clickhouse://" in _one_line_error(_cli("report", "--store", "mysql://x/y"))
    assert "KEY=VALUE" in _one_line_error(_cli("report", "--store", clickhouse.url("t_bad"), "--label", "x"))
    # The password never shows in messages.
    assert clickhouse.password not in _cli("report", "--store", wrong).stderr
    with pytest.raises(StoreUnavailable):
        ClickHouseStore.open("clickhouse://127.0.0.1:1/db")


def test_report_and_ls_read_the_store(store_url):
    with ClickHouseStore.open(store_url) as store:
        now = time.time()
        store.insert_window(window(1, now - 20, comm="api", pid=100))
        store.insert_window(window(2, now - 10, comm="worker", pid=200))
    result = _cli("report", "--store", store_url, "--comm", "worker", "--no-children", "--time=-1h,now")
    assert result.returncode == 0, result.stderr
    assert "400 samples of event 'cpu-clock'" in result.stdout
    assert "parse" in result.stdout
    result = _cli("report", "--store", store_url, "--sort", "comm,pid", "--no-children")
    assert "worker" in result.stdout and "200" in result.stdout and "api" in result.stdout
    folded = _cli("report", "--store", store_url, "--folded", "--label", "host=h1").stdout.splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in folded) == 800
    listing = _cli("ls", "--store", store_url)
    assert listing.returncode == 0 and "2 windows, 800 samples, 1 host(s)" in listing.stdout


def test_a_full_spool_drops_the_oldest_and_says_so(tmp_path):
    import gzip

    one = len(gzip.compress(window(0, 1_800_000_000).to_json().encode(), compresslevel=6))
    cap = int(3.5 * one)
    spool = Spool(tmp_path / "spool", max_bytes=cap)
    messages = []
    for i in range(8):
        messages += spool.put(window(i, 1_800_000_000 + 10 * i))
    assert spool.size() <= cap
    assert spool.stats.dropped_windows >= 1
    assert messages and all(m.startswith("spool full") for m in messages)
    assert spool.stats.dropped_samples == 400 * spool.stats.dropped_windows
    kept = [spool.load(p) for p in spool.files()]
    assert [w.start_ns for w in kept] == sorted(w.start_ns for w in kept)
    assert kept[-1].start_ns == int((1_800_000_000 + 70) * 1e9)  # the newest survive


def test_an_exiting_tasks_pid_round_trips_as_minus_one(store_url):
    """The kernel gives pid -1 for a task sampled while it exits; it is stored as the u32 the kernel wrote and
    comes back per process as -1, as a local decode shows it (a forking workload has such samples every window)."""
    with ClickHouseStore.open(store_url) as store:
        assert store.insert_window(window(7, time.time() - 60, pid=-1, comm="expr"))
        merged = store.merged_profile(Selector(), per_process=True)
        assert set(merged.sample_pid.tolist()) == {-1} and merged.total_samples == 400


def _by_bin_and_stack(profile) -> dict:
    """A merged profile as {(time bin, comm, leaf-to-root function names): samples}."""
    out: dict = {}
    for i in range(profile.n_samples):
        stack = int(profile.sample_stack[i])
        names = tuple(profile.frame_label(f) for f in profile.stack_frames(stack)) if stack >= 0 else ()
        key = (int(profile.sample_time[i]), profile.threads[int(profile.sample_pid[i])], names)
        out[key] = out.get(key, 0) + int(profile.sample_count[i])
    return out


def test_the_ten_minute_rollup_answers_as_the_raw_rows_do(store_url):
    """Queries read whole ten-minute buckets from samples_10m and the unaligned edges from samples; every answer
    equals reading samples alone: totals, merged flame graphs with and without time bins, top functions, the
    counters over time, label values, a --label and a comm filter. Per-pid questions read samples only."""
    base = int(time.time()) // 3600 * 3600 - 3 * 3600
    with ClickHouseStore.open(store_url) as store:
        for i in range(80):   # two hosts of two services, a window every 90 s for two hours
            host, service = (f"h{i % 2}", ("api", "web")[i % 2])
            profile = make_profile(i, n=40, comm=("api", "worker")[i % 3 == 0], pid=100 + i % 3)
            store.insert_window(window_from_profile(
                profile, host=host, start_ns=(base + 90 * i) * 10**9, duration_ns=10**10,
                labels={"service": service}, labeler=lambda pid, comm: ProcessLabels(f"/srv/{comm}", "ab", "/api")))
        selectors = [Selector(), Selector(base + 125, base + 5555),
                     Selector(base + 125, base + 5555, {"service": ("api",)}),
                     Selector(base + 600, base + 4200, {"comm": ("worker",), "service": ("api", "web")}),
                     Selector(None, base + 3000, {"host": ("h1",)})]
        for selector in selectors:
            answers = []
            for use_rollup in (True, False):
                store.use_rollup = use_rollup
                answers.append((store.total_samples(selector), store.top_functions(selector), store.series(selector),
                                store.label_values("service", selector), store.events(selector),
                                [_by_bin_and_stack(store.merged_profile(selector, max_bins=b)) for b in (1, 4, 100)]))
            assert answers[0] == answers[1], selector
            assert answers[0][0] > 0
        # Per-pid questions: one pid (with and without its host), a process's time strip, every process of a
        # selection; read from samples_pid_10m's buckets and samples' edges, they answer as samples alone does.
        per_pid = [Selector(base + 125, base + 5555, {"pid": ("101",)}),
                   Selector(base + 600, base + 4200, {"pid": ("100", "102"), "host": ("h0",)}),
                   Selector(None, None, {"pid": ("101",), "service": ("web",)}),
                   Selector(base + 125, base + 5555, {"service": ("api",)})]
        for selector in per_pid:
            answers = []
            for use_rollup in (True, False):
                store.use_rollup = use_rollup
                answers.append((store.total_samples(selector), store.top_functions(selector), store.series(selector),
                                store.time_bounds(selector),
                                [_by_bin_and_stack(store.merged_profile(selector, max_bins=b, per_process=True))
                                 for b in (1, 4, 100)]))
            assert answers[0] == answers[1], selector
            assert answers[0][0] > 0
        store.use_rollup = True
        # A window label's values come from the windows table; the samples rows give the same counts.
        every_comm = Selector(labels={"comm": ("api", "worker")})
        assert store.label_values("service", Selector()) == store.label_values("service", every_comm)
        assert store.label_values("host", Selector()) == store.label_values("host", every_comm)
        assert "samples_10m" in store.source(selectors[2], ("samples",), bin_s=1200)[0]
        assert "samples_10m" not in store.source(selectors[2], ("samples",), bin_s=30)[0]
        assert "samples_pid_10m" in store.source(selectors[2], ("samples",), per_process=True)[0]
        one_pid = Selector(base, base + 7200, {"pid": ("101",)})
        assert "samples_pid_10m" in store.source(one_pid, ("samples",))[0]
        assert "samples_pid_10m" not in store.source(one_pid, ("samples",), bin_s=60)[0]
        assert store.merged_profile(one_pid, per_process=True).sample_pid.tolist()[0] == 101
        # Rows of one bucket that came in separate windows are one rollup row once parts merge.
        store.execute("OPTIMIZE TABLE {db}.samples_10m FINAL")
        keys = store.execute("SELECT count() FROM (SELECT DISTINCT intDiv(toUInt32(window_start), 600), host, comm, "
                             "executable, build_id, cgroup, label_keys, label_values, event, stack_id, stack_end, "
                             "counter_names FROM {db}.samples)")[0][0]
        assert store.execute("SELECT count() FROM {db}.samples_10m")[0][0] == keys
        assert keys < store.execute("SELECT count() FROM {db}.samples")[0][0]
        assert store.total_samples(Selector()) == 80 * 40


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_store_gets_its_rollups_from_the_rows_it_holds(store_url, version, monkeypatch):
    """A store of version 2 (no rollup) or 3 (no per-process rollup) is upgraded in place: each rollup it lacks is
    filled from the rows stored before (in slices of whole hours of a part: here one per slice), then fed by its
    view, every sample counted once."""
    import hwprof.fleet.clickhouse

    monkeypatch.setattr(hwprof.fleet.clickhouse, "BACKFILL_ROWS", 1)
    rollups = ("samples_10m", "samples_pid_10m")
    with ClickHouseStore.open(store_url, migrate=False) as store:
        assert store.migrate(to_version=version) == list(range(1, version + 1))
        old = time.time() - 86400
        for i in range(3):
            store.insert_window(window(i, old + 2000 * i, pid=100 + i))
    with ClickHouseStore.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        for table in rollups:
            assert store.execute(f"SELECT sum(finalizeAggregation(samples)) FROM {{db}}.{table}")[0][0] == 1200
        store.insert_window(window(9, time.time(), pid=101))  # through the views from now on, and counted once
        for table in rollups:
            assert store.execute(f"SELECT sum(finalizeAggregation(samples)) FROM {{db}}.{table}")[0][0] == 1600
        assert store.total_samples(Selector()) == 1600
        assert store.total_samples(Selector(labels={"pid": ("101",)})) == 800
        assert "samples_pid_10m" in store.source(Selector(labels={"pid": ("101",)}), ("samples",))[0]


def test_an_interrupted_upgrade_is_named_not_filled_twice(store_url):
    from hwprof.fleet.schema import MIGRATIONS, view_ddl

    with ClickHouseStore.open(store_url, migrate=False) as store:
        store.migrate(to_version=2)
        store.insert_window(window(1, time.time()))
        store.execute(MIGRATIONS[3][0])
        store.execute(view_ddl(MIGRATIONS[3][1]))      # the view exists, the version row does not
    with pytest.raises(HwprofError, match="interrupted while filling samples_10m; drop"):
        ClickHouseStore.open(store_url)
