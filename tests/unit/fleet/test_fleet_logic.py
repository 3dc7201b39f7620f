"""Pure logic of the fleet backend: store URLs, time ranges, window aggregation, selectors."""

from __future__ import annotations

import pytest

from hwprof.errors import HwprofError
from hwprof.fleet.clickhouse import Selector, parse_label_args
from hwprof.fleet.schema import SCHEMA_VERSION, Backfill, statements, view_ddl
from hwprof.fleet.timerange import parse_time_range
from hwprof.fleet.url import parse_store_url
from hwprof.fleet.window import ProcessLabels, WindowBatch, stable_id, window_from_profile
from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta, StackEnd


def test_store_urls_follow_the_driver_form():
    url = parse_store_url("clickhouse://hw:s%40cret@ch.example:9001/profiles")
    assert (url.user, url.password, url.host, url.port, url.database, url.secure) == \
        ("hw", "s@cret", "ch.example", 9001, "profiles", False)
    assert url.display() == "clickhouse://hw@ch.example:9001/profiles"  # never the password
    assert parse_store_url("clickhouse://10.0.0.1/db").port == 9000
    tls = parse_store_url("clickhouses://ch/db")
    assert tls.secure and tls.port == 9440 and tls.user == "default"


@pytest.mark.parametrize("text, message", [
    ("mysql://h/db", "scheme"), ("clickhouse://h", "no database"), ("clickhouse:///db", "no host"),
    ("clickhouse://h:99999/db", "port"), ("clickhouse://h/db;drop", "database name"),
    ("clickhouse://u:pw@h:x/db", "port"),
])
def test_bad_store_urls_are_refused_with_the_password_hidden(text, message):
    with pytest.raises(HwprofError, match=message) as info:
        parse_store_url(text)
    assert ":pw@" not in str(info.value)


def test_time_ranges():
    now = 1_800_000_000.0
    assert parse_time_range("-1h,now", now=now) == (now - 3600, now)
    assert parse_time_range(",-30m", now=now) == (None, now - 1800)
    assert parse_time_range("2027-01-15T08:00,2027-01-15T08:10", now=now) == (1_800_000_000 - 0.0 + 0, 1_800_000_600)
    assert parse_time_range("10,20", first_s=1000, last_s=2000) == (1010, 1020)
    assert parse_time_range("0%,50%", first_s=1000, last_s=2000) == (1000, 1500)
    for bad in ("1h", "x,y", "20,10", "a%,b%"):
        with pytest.raises(HwprofError):
            parse_time_range(bad, now=now)


def test_labels_and_selectors():
    assert parse_label_args(["service=api", "dc=eu", "service=web"]) == {"service": ("api", "web"), "dc": ("eu",)}
    with pytest.raises(HwprofError, match="KEY=VALUE"):
        parse_label_args(["service"])
    where, params = Selector(start_s=10.5, end_s=20.2, labels={"comm": ("a",), "service": ("x",),
                                                                "pid": ("7",)}).where()
    assert "comm IN %(v0)s" in where and "pid IN %(v1)s" in where
    assert "label_values[indexOf(label_keys, %(k2)s)] IN %(v2)s" in where
    assert params["t0"] == 10 and params["t1"] == 21 and params["v1"] == (7,)
    with pytest.raises(HwprofError, match="numbers"):
        Selector(labels={"pid": ("x",)}).where()


def test_migrations_reach_the_current_version_in_order():
    versions = [v for v, _ in statements(0)]
    assert versions == sorted(versions) and versions[-1] == SCHEMA_VERSION
    assert {v for v, _ in statements(1)} == {2, 3, 4}
    # Each rollup: its table, then its view with the rows stored before (3: without the pid, 4: per process).
    assert [v for v, _ in statements(2)] == [3, 3, 4, 4]
    assert [v for v, _ in statements(3)] == [4, 4]
    for _, step in statements(2)[1::2]:
        assert isinstance(step, Backfill)
        assert "FROM {db}.samples  GROUP BY" in view_ddl(step)
    assert "GROUP BY host, pid, window_start" in statements(3)[-1][1].select
    assert statements(SCHEMA_VERSION) == []


def _profile():
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"], weight_names=["page-faults"]))
    main = b.frame(function="main", module="/bin/a", address=1, kind=FrameKind.USER)
    work = b.frame(function="work", module="/bin/a", address=2, kind=FrameKind.USER)
    work_other_address = b.frame(function="work", module="/bin/a", address=3, kind=FrameKind.USER)
    s1, s2 = b.stack([main, work]), b.stack([main, work_other_address])
    b.threads.update({1: "a", 2: "b"})
    for i in range(10):
        b.sample(time=i, pid=1, tid=1, cpu=0, stack=s1 if i % 2 else s2, period=2.0, counters=[1.0])
    b.sample(time=11, pid=2, tid=2, cpu=0, stack=-1, period=2.0, end=StackEnd.NO_STACK, counters=[3.0])
    return b.build()


def test_a_window_aggregates_per_process_and_stack_with_content_ids():
    batch = window_from_profile(_profile(), host="h", start_ns=5, duration_ns=10, labels={"k": "v"},
                                labeler=lambda pid, comm: ProcessLabels(f"/bin/{comm}"))
    # Two address-level stacks of the same functions are one stored stack.
    assert len(batch.stacks) == 1 and len(batch.functions) == 2 and len(batch.frames) == 2
    rows = batch.rows
    by_comm = {rows["comm"][i]: i for i in range(batch.n_rows)}
    assert sum(rows["samples"]) == 11 and batch.samples == 11
    a = [i for i in range(batch.n_rows) if rows["comm"][i] == "a"]
    assert sum(rows["samples"][i] for i in a) == 10 and sum(rows["period"][i] for i in a) == 20.0
    assert rows["stack_end"][by_comm["b"]] == StackEnd.NO_STACK and rows["stack_id"][by_comm["b"]] == 0
    assert rows["executable"][by_comm["b"]] == "/bin/b" and rows["counter_values"][by_comm["b"]] == [3.0]
    # The same content gives the same ids on every host and run; the window round-trips through JSON.
    again = window_from_profile(_profile(), host="h", start_ns=5, duration_ns=10, labels={"k": "v"},
                                labeler=lambda pid, comm: ProcessLabels())
    assert again.stacks == batch.stacks and again.window_id == batch.window_id
    assert WindowBatch.from_json(batch.to_json()) == batch
    assert stable_id("a", 1) != stable_id("a", 2)


def test_keep_filters_processes_and_counts_the_rest():
    batch = window_from_profile(_profile(), host="h", start_ns=5, duration_ns=10, labels={},
                                labeler=lambda pid, comm: ProcessLabels(), keep=lambda pid, comm, lab: comm == "a")
    assert batch.samples == 10 and batch.filtered == 1


def test_an_exiting_task_pid_minus_one_is_stored_as_the_kernels_u32():
    """perf_event_pid() gives -1 for a task caught while it exits (a forking workload has them every window); the
    store's pid column is the kernel's u32, so the row keeps 4294967295 instead of failing the whole window."""
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"]))
    leaf = b.stack([b.frame(function="do_exit", module="[kernel.kallsyms]", address=1, kind=FrameKind.KERNEL)])
    b.sample(time=1, pid=-1, tid=-1, cpu=0, stack=leaf, period=1.0)
    batch = window_from_profile(b.build(), host="h", start_ns=0, duration_ns=1, labels={},
                                labeler=lambda pid, comm: ProcessLabels())
    assert batch.rows["pid"] == [0xFFFFFFFF] and batch.samples == 1
