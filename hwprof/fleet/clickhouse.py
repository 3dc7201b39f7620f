"""The fleet store in ClickHouse: connect, migrate, insert windows once, and answer queries inside the server.

Every query that touches samples aggregates in ClickHouse (GROUP BY stack, time bin, process) and returns one row
per distinct (stack, bin, ...) — what a flame graph needs — never the stored rows themselves. The id tables
(functions, frames, stacks) are then read only for the ids those rows reference.

Idempotent inserts: a window's sample rows go in as ONE insert block, and a MergeTree block lands in one part of one
partition (a window lies inside one day), so it is stored entirely or not at all. Before inserting, the store asks
whether rows of that window id already exist; if so (a window resent after a crash, or after an acknowledgement that
never arrived) nothing is inserted again. Functions, frames and stacks are content-addressed and may be inserted
any number of times (ReplacingMergeTree, read with any() per id).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from hwprof.errors import HwprofError
from hwprof.fleet.schema import DATA_TABLES, ROLLUP_S, ROLLUPS, SCHEMA_VERSION, Backfill, statements, view_ddl
from hwprof.fleet.url import ClickHouseURL, parse_store_url
from hwprof.fleet.window import ROW_COLUMNS, WindowBatch
from hwprof.profile import FrameKind, Profile, ProfileBuilder, ProfileMeta, StackEnd

CONNECT_TIMEOUT_S = 5
# Labels that are columns of `samples`; any other key is looked up in label_keys/label_values.
COLUMN_LABELS = {"host": "host", "pid": "pid", "comm": "comm", "executable": "executable", "exe": "executable",
                 "build_id": "build_id", "build-id": "build_id", "cgroup": "cgroup", "container": "cgroup",
                 "event": "event"}
MAX_TIME_BINS = 200
BACKFILL_ROWS = 5_000_000       # rows of `samples` per INSERT ... SELECT when a migration fills a new rollup
# Bins at least this wide become whole rollup buckets (ROLLUP_S), so the query can read a rollup.
ROLLUP_BIN_FROM_S = 150
# How a rollup gives a column of `samples` (the others are its own columns; neither has window_id).
ROLLUP_EXPRESSIONS = {"samples": "finalizeAggregation(samples) AS samples",
                      "period": "finalizeAggregation(period) AS period",
                      "counter_values": "finalizeAggregation(counter_values) AS counter_values"}
NO_PID = {"pid": "toUInt32(0) AS pid"}     # samples_10m keeps no pid (samples_pid_10m does)
# The driver logs every failed connect with a traceback; hwprof reports the failure itself, in one line.
logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)


class StoreUnavailable(HwprofError):
    """The server cannot be reached (network): the agent spools and retries; other commands report it."""


@dataclass(frozen=True)
class Selector:
    """Which stored samples a query merges: a time range (unix seconds, inclusive start, exclusive end) and labels.

    `labels` are exact matches (key -> one of the values); keys are the column labels above or `--label` keys.
    """

    start_s: float | None = None
    end_s: float | None = None
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def where(self, table: str = "samples", prefix: str = "") -> tuple[str, dict]:
        """The WHERE clause for `samples`, a rollup (samples_10m has no pid: see ClickHouseStore.source) or
        `windows` (which has no per-process label columns: those are left out there, so the windows table answers
        for a superset of the rows). `prefix` keeps the parameter names of two clauses in one query apart."""
        clauses, params = ["1"], {}
        if self.start_s is not None:
            clauses.append(f"window_start >= toDateTime(%({prefix}t0)s)")
            params[f"{prefix}t0"] = int(self.start_s)
        if self.end_s is not None:
            clauses.append(f"window_start < toDateTime(%({prefix}t1)s)")
            params[f"{prefix}t1"] = int(np.ceil(self.end_s))
        window_time = " AND ".join(clauses[1:])
        for i, (key, values) in enumerate(sorted(self.labels.items())):
            column = COLUMN_LABELS.get(key)
            value, key_param = f"{prefix}v{i}", f"{prefix}k{i}"
            if table == "windows" and column not in (None, "host", "event"):
                continue
            if column == "pid":
                if table == "samples_10m":
                    raise ValueError("samples_10m has no pid column (samples_pid_10m has)")
                try:
                    params[value] = tuple(int(v) for v in values)
                except ValueError:
                    raise HwprofError(f"pid label values must be numbers, got {', '.join(values)}") from None
                clauses.append(f"pid IN %({value})s")
            elif column is not None:
                clauses.append(f"{column} IN %({value})s")
                params[value] = tuple(values)
            else:
                params[key_param] = key
                params[value] = tuple(values)
                when = window_time + " AND " if window_time else ""
                in_windows = (f"(SELECT {{}} FROM {{{{db}}}}.windows WHERE {when}"
                              f"label_values[indexOf(label_keys, %({key_param})s)] IN %({value})s)")
                if table == "samples":
                    # A --label is per window: select the windows in the (small, time-sorted) windows table and
                    # keep their rows, instead of evaluating array lookups on every sample row.
                    clauses.append(f"window_id IN {in_windows.format('window_id')}")
                else:
                    # The rollup keeps the labels but not the window: its hosts come from the windows table (the
                    # rollup is sorted by host, so this reads only their ranges), then the label itself.
                    if table in ROLLUPS:
                        clauses.append(f"host IN {in_windows.format('DISTINCT host')}")
                    clauses.append(f"label_values[indexOf(label_keys, %({key_param})s)] IN %({value})s")
        return " AND ".join(clauses), params


def parse_label_args(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`--label key=value` (repeatable; the same key twice means either value)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HwprofError(f"--label expects KEY=VALUE, got {item!r}")
        out.setdefault(key.strip(), []).append(value)
    return {k: tuple(v) for k, v in out.items()}


class ClickHouseStore:
    """One connection to one database. `open()` creates the database and migrates its schema when needed."""

    def __init__(self, url: ClickHouseURL, client, server_version: tuple[int, ...]) -> None:
        self.url = url
        self.client = client
        self.server_version = server_version
        self.db = url.database
        self._sent_ids: dict[str, set[int]] = {"functions": set(), "frames": set(), "stacks": set()}
        self.use_rollup = True          # False: every query reads `samples` only (the benchmark's comparison)
        self._schema: int | None = None

    # --- connecting -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | ClickHouseURL, *, migrate: bool = True, timeout_s: float = 60) -> ClickHouseStore:
        if isinstance(url, str):
            url = parse_store_url(url)
        from clickhouse_driver import Client

        client = Client(host=url.host, port=url.port, user=url.user, password=url.password, database="default",
                        secure=url.secure, connect_timeout=CONNECT_TIMEOUT_S, send_receive_timeout=timeout_s,
                        settings={"use_numpy": False})
        version_text = _call(url, client.execute, "SELECT version()")[0][0]
        version = tuple(int(x) for x in version_text.split(".")[:3] if x.isdigit())
        if version < (19,):
            # 18.x keeps LowCardinality behind this switch (it is the default from 19.0 on).
            client.settings["allow_experimental_low_cardinality_type"] = 1
        store = cls(url, client, version)
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        self.client.disconnect()

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, query: str, params=None, **kwargs):
        return _call(self.url, self.client.execute, query.replace("{db}", self.db), params, **kwargs)

    # --- schema -----------------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.execute("SELECT count() FROM system.tables WHERE database = %(db)s AND name = 'schema_version'",
                              {"db": self.db})[0][0]
        if not exists:
            tables = self.execute("SELECT count() FROM system.tables WHERE database = %(db)s", {"db": self.db})[0][0]
            if tables:
                raise HwprofError(f"{self.url.display()}: database {self.db!r} holds tables but no hwprof schema "
                                  f"version: not an hwprof store (use another database)")
            return 0
        return int(self.execute("SELECT max(version) FROM {db}.schema_version")[0][0])

    def migrate(self, to_version: int = SCHEMA_VERSION) -> list[int]:
        """Create or upgrade the schema; returns the versions applied (empty when already current)."""
        self.execute(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise HwprofError(f"{self.url.display()}: the store has schema version {current}, newer than this "
                              f"hwprof's {SCHEMA_VERSION}: upgrade hwprof")
        applied = []
        from hwprof import __version__

        for version, step in statements(current, to_version):
            if isinstance(step, Backfill):
                self._backfill(step)
            else:
                self.execute(step)
            if not applied or applied[-1] != version:
                applied.append(version)
        for version in applied:
            self.execute("INSERT INTO {db}.schema_version (version, applied, hwprof) VALUES",
                         [(version, dt.datetime.now(dt.UTC).replace(tzinfo=None), __version__)])
        return applied

    def _backfill(self, step: Backfill) -> None:
        """Create step.view and fill step.table with the rows stored before it (see schema.Backfill): merges of the
        source are stopped so that the parts listed before the view exists still name exactly those rows."""
        exists = self.execute("SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(v)s",
                              {"db": self.db, "v": step.view})[0][0]
        if exists:
            # An earlier migration stopped between creating the view and recording its version: how much of the
            # backfill it did is unknown, so refilling could count rows twice.
            raise HwprofError(f"{self.url.display()}: an earlier upgrade of this store was interrupted while filling "
                              f"{step.table}; drop {self.db}.{step.view} and {self.db}.{step.table} (both are "
                              f"rebuilt from {step.source}) and run hwprof again")
        self.execute(f"SYSTEM STOP MERGES {{db}}.{step.source}")
        try:
            parts = [r[0] for r in self.execute("SELECT name FROM system.parts WHERE database = %(db)s AND "
                                                "table = %(t)s AND active", {"db": self.db, "t": step.source})]
            self.execute(view_ddl(step))
            for where, params in self._backfill_slices(step.source, parts):
                self.execute(f"INSERT INTO {{db}}.{step.table} {step.select.replace('{where}', where)}", params)
        finally:
            self.execute(f"SYSTEM START MERGES {{db}}.{step.source}")

    def _backfill_slices(self, source: str, parts: list[str]) -> Iterator[tuple[str, dict]]:
        """WHERE clauses that together select the rows of `parts` once: whole hours of one part, at most
        BACKFILL_ROWS rows each (an hour holding more is one slice), so that the GROUP BY of each INSERT ... SELECT
        holds a bounded share of a large store (a day of 100 hosts is ~180M rows) in the server's memory."""
        if not parts:
            return
        counts = self.execute(f"SELECT _part, intDiv(toUInt32(window_start), 3600) AS h, count() FROM {{db}}.{source} "
                              f"WHERE _part IN %(parts)s GROUP BY _part, h ORDER BY _part, h", {"parts": tuple(parts)})
        where = ("WHERE _part = %(part)s AND window_start >= toDateTime(%(lo)s) AND "
                 "window_start < toDateTime(%(hi)s)")
        current: tuple[str, int] | None = None      # (part, first hour) of the slice being gathered
        rows = last = 0
        for part, hour, n in counts:
            if current is not None and (current[0] != part or rows + n > BACKFILL_ROWS):
                yield where, {"part": current[0], "lo": current[1] * 3600, "hi": (last + 1) * 3600}
                current = None
            if current is None:
                current, rows = (part, int(hour)), 0
            rows += int(n)
            last = int(hour)
        if current is not None:
            yield where, {"part": current[0], "lo": current[1] * 3600, "hi": (last + 1) * 3600}

    # --- writing ----------------------------------------------------------------------------------------------
    def stored_windows(self, batches: list[WindowBatch]) -> tuple[set[int], set[int]]:
        """(ids of the windows with their `windows` row stored, ids with sample rows stored) among `batches`, in one
        round trip. The time and host sets keep both lookups on the tables' sort keys."""
        params = {"h": tuple({b.host for b in batches}), "t": tuple({_datetime(b.start_ns) for b in batches}),
                  "w": tuple({b.window_id for b in batches})}
        with_row, with_samples = self.execute(
            "SELECT (SELECT groupUniqArray(window_id) FROM {db}.windows WHERE host IN %(h)s AND window_start IN %(t)s "
            "AND window_id IN %(w)s), (SELECT groupUniqArray(window_id) FROM {db}.samples WHERE window_start IN %(t)s "
            "AND host IN %(h)s AND window_id IN %(w)s)", params)[0]
        return set(with_row), set(with_samples)

    def has_window(self, batch: WindowBatch) -> bool:
        return any(batch.window_id in ids for ids in self.stored_windows([batch]))

    def insert_window(self, batch: WindowBatch, *, first_attempt: bool = False) -> bool:
        """Store one window unless it is already stored; returns whether it was new (see insert_windows)."""
        return self.insert_windows([batch], first_attempt=first_attempt)[0]

    def insert_windows(self, batches: list[WindowBatch], *, first_attempt: bool = False) -> list[bool]:
        """Store several windows with one insert per table; returns, per window, whether it was new to the store
        (False: its rows were stored before, by an earlier send of it alone or in another batch).

        Why batches: each insert makes a part per table (and one per materialized rollup) that the server must write
        and merge, ~61 ms of server CPU however few rows it holds, and ~25 ms of the agent's CPU in round trips;
        a batch of N windows costs about what one window did (BENCHMARKS.md, "Fleet store").

        Idempotent per window, whatever was stored before: the existence check is per window id, the sample rows of
        the windows not yet stored go in as one block (a block lands as one part per day partition, so each window,
        lying inside one day, is stored entirely or not at all, also when a crash stops the insert between two
        partitions), then the `windows` rows of the windows that lack theirs. `first_attempt`: the caller has never
        sent any of these windows (an agent's fresh windows), so none can be stored and the check is skipped; every
        resend (spool, retry) checks.
        """
        if not batches:
            return []
        with_row, with_samples = (set(), set()) if first_attempt else self.stored_windows(batches)
        for table, columns, attr in (("functions", "(function_id, name, module, kind)", "functions"),
                                     ("frames", "(frame_id, function_id, file, line, inlined)", "frames"),
                                     ("stacks", "(stack_id, frame_ids)", "stacks")):
            self._insert_ids(table, columns, [row for b in batches for row in getattr(b, attr)])
        self._insert_sample_rows([b for b in batches if b.n_rows and b.window_id not in with_samples])
        self._insert_window_rows([b for b in batches if b.window_id not in with_row])
        # A window without samples is known by its `windows` row alone.
        return [b.window_id not in (with_samples if b.n_rows else with_row) for b in batches]

    def _insert_sample_rows(self, batches: list[WindowBatch]) -> None:
        """Sample rows, columnar (no row tuples built), in as few inserts as the driver's block size allows: a
        window is never split between two blocks (the driver cuts a column list into blocks of insert_block_size
        rows; each insert here stays within one)."""
        limit = int(self.client.client_settings["insert_block_size"])
        group: list[WindowBatch] = []
        rows = 0
        for batch in batches:
            if group and rows + batch.n_rows > limit:
                self._insert_sample_block(group)
                group, rows = [], 0
            group.append(batch)
            rows += batch.n_rows
        if group:
            self._insert_sample_block(group)

    def _insert_sample_block(self, batches: list[WindowBatch]) -> None:
        names = ("window_start", "window_id", "host", "label_keys", "label_values", "event", "counter_names")
        per_window: dict[str, list] = {name: [] for name in names}
        per_row: dict[str, list] = {name: [] for name in ROW_COLUMNS}
        for batch in batches:
            n = batch.n_rows
            label_keys = sorted(batch.labels)
            for name, value in zip(names, (_datetime(batch.start_ns), batch.window_id, batch.host, label_keys,
                                           [batch.labels[k] for k in label_keys], batch.event, batch.counter_names),
                                   strict=True):
                per_window[name] += [value] * n
            for name in ROW_COLUMNS:
                per_row[name] += batch.rows[name]
        columns = {**per_window, **per_row}
        order = ("window_start", "window_id", "host", "pid", "comm", "executable", "build_id", "cgroup",
                 "label_keys", "label_values", "event", "stack_id", "stack_end", "samples", "period",
                 "counter_names", "counter_values")
        self.execute(f"INSERT INTO {{db}}.samples ({', '.join(order)}) VALUES", [columns[c] for c in order],
                     columnar=True)

    def _insert_window_rows(self, batches: list[WindowBatch]) -> None:
        rows = []
        for b in batches:
            label_keys = sorted(b.labels)
            rows.append((b.window_id, _datetime(b.start_ns), b.start_ns, b.duration_ns, b.host, b.target, b.event,
                         label_keys, [b.labels[k] for k in label_keys], b.samples, b.lost, b.filtered, b.hwprof,
                         b.agent_cpu_ns, b.agent_rss_bytes))
        if rows:
            self.execute("INSERT INTO {db}.windows (window_id, window_start, start_ns, duration_ns, host, target, "
                         "event, label_keys, label_values, samples, lost, filtered, hwprof, agent_cpu_ns, "
                         "agent_rss_bytes) VALUES", rows)

    def _insert_ids(self, table: str, columns: str, rows: list[tuple]) -> None:
        sent = self._sent_ids[table]
        new = [row for row in rows if row[0] not in sent]
        if not new:
            return
        self.execute(f"INSERT INTO {{db}}.{table} {columns} VALUES", new)
        sent.update(row[0] for row in new)
        if len(sent) > 1_000_000:  # bounded memory in a long-running agent: forget, re-sending is harmless
            sent.clear()

    def enforce_retention(self, days: int, now: float | None = None) -> list[str]:
        """Drop the day partitions older than `days` (what a TTL does, at partition granularity; Debian's 18.16
        server has no TTL clause). Returns the partitions dropped."""
        cutoff = dt.datetime.fromtimestamp((now or time.time()) - days * 86400, dt.UTC).date()
        dropped = []
        for table in DATA_TABLES:
            parts = self.execute("SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND "
                                 "table = %(t)s AND active", {"db": self.db, "t": table})
            for (partition,) in parts:
                try:
                    day = dt.date.fromisoformat(partition.strip("'"))
                except ValueError:
                    continue
                if day < cutoff:
                    self.execute(f"ALTER TABLE {{db}}.{table} DROP PARTITION '{day.isoformat()}'")
                    dropped.append(f"{table}/{day.isoformat()}")
        return dropped

    # --- reading ----------------------------------------------------------------------------------------------
    def rollup_available(self, table: str = "samples_10m") -> bool:
        if self._schema is None:
            self._schema = self.schema_version()
        return self.use_rollup and self._schema >= ROLLUPS[table]

    def source(self, selector: Selector, columns: tuple[str, ...], *, bin_s: int = 0,
               per_process: bool = False) -> tuple[str, dict]:
        """What a query puts after FROM to read `columns` of the rows of `samples` that `selector` matches.

        Whole ten-minute buckets inside the range are read from a rollup (rows summed per bucket: every sum a query
        takes comes out the same), the unaligned edges from `samples`: one UNION ALL of the named columns only
        (18.16 reads every column a subquery names). Questions per pid (a pid label, or per_process) read the rollup
        that keeps the pid, `samples_pid_10m` (sorted by host and pid), the others `samples_10m` (no pid: fewer
        rows). Only `samples` answers when time bins (`bin_s`) would split a bucket, and for a store without that
        rollup (an older version) or with use_rollup False.
        """
        raw_where, raw_params = selector.where("samples", "r_")
        per_pid = per_process or "pid" in {COLUMN_LABELS.get(k) for k in selector.labels}
        table = "samples_pid_10m" if per_pid else "samples_10m"
        usable = self.rollup_available(table) and (bin_s == 0 or bin_s % ROLLUP_S == 0)
        first = None if selector.start_s is None else -(-int(selector.start_s) // ROLLUP_S) * ROLLUP_S
        last = None if selector.end_s is None else int(np.floor(selector.end_s)) // ROLLUP_S * ROLLUP_S
        if not usable or (first is not None and last is not None and first >= last):
            return f"{{db}}.samples WHERE {raw_where}", raw_params
        rollup_where, rollup_params = replace(selector, start_s=first, end_s=last).where(table, "u_")
        expressions = ROLLUP_EXPRESSIONS if per_pid else {**ROLLUP_EXPRESSIONS, **NO_PID}
        rollup = (f"SELECT {', '.join(expressions.get(c, c) for c in columns)} FROM {{db}}.{table} "
                  f"WHERE {rollup_where}")
        edges = []              # the rows before the first whole bucket and after the last
        if first is not None and first != selector.start_s:
            edges.append("window_start < toDateTime(%(r_first)s)")
        if last is not None and last != selector.end_s:
            edges.append("window_start >= toDateTime(%(r_last)s)")
        if not edges:
            return f"({rollup})", rollup_params
        raw = f"SELECT {', '.join(columns)} FROM {{db}}.samples WHERE {raw_where} AND ({' OR '.join(edges)})"
        return (f"({raw} UNION ALL {rollup})",
                {**raw_params, **rollup_params, "r_first": first or 0, "r_last": last or 0})

    def time_bounds(self, selector: Selector) -> tuple[float, float]:
        """The first window start and the last window end (unix seconds) of the rows `selector` matches; (0, 0) when
        none. A rollup gives the first and last buckets; the windows inside those two are looked up in `samples`
        (ten minutes each, read by its time-sorted key)."""
        src, params = self.source(selector, ("window_start",))
        lo, hi, n = self.execute(f"SELECT min(toUInt32(window_start)), max(toUInt32(window_start)), count() "
                                 f"FROM {src}", params)[0]
        if not n:
            return 0.0, 0.0
        raw = "{db}.samples WHERE "
        if src.startswith(raw):
            return float(lo), float(hi) + 10
        def within(start: float, end: float) -> Selector:      # a bucket, never beyond the selector's range
            return replace(selector, start_s=max(start, selector.start_s or start),
                           end_s=min(end, selector.end_s or end))

        first_where, first_params = within(lo, lo + ROLLUP_S).where("samples", "a_")
        last_where, last_params = within(hi, hi + ROLLUP_S).where("samples", "b_")
        first, last = self.execute(
            f"SELECT (SELECT min(toUInt32(window_start)) FROM {{db}}.samples WHERE {first_where}), "
            f"(SELECT max(toUInt32(window_start)) FROM {{db}}.samples WHERE {last_where})",
            {**first_params, **last_params})[0]
        return float(first or lo), float(last or hi) + 10

    def windows(self, selector: Selector | None = None, limit: int = 1000) -> list[dict]:
        """Stored windows, newest first (one row each even if a window was written twice)."""
        where, params = (selector or Selector()).where("windows")
        rows = self.execute(
            "SELECT window_id, any(window_start), any(start_ns), any(duration_ns), host, any(target), any(event), "
            "any(label_keys), any(label_values), any(samples), any(lost), any(filtered), any(agent_cpu_ns), "
            f"any(agent_rss_bytes) FROM {{db}}.windows WHERE {where} "
            "GROUP BY host, window_id ORDER BY any(start_ns) DESC LIMIT %(limit)s", {**params, "limit": limit})
        out = []
        for row in rows:
            out.append({"window_id": f"{row[0]:016x}", "start_ns": row[2], "duration_ns": row[3], "host": row[4],
                        "target": row[5], "event": row[6], "labels": dict(zip(row[7], row[8], strict=False)),
                        "samples": row[9], "lost": row[10], "filtered": row[11], "agent_cpu_ns": row[12],
                        "agent_rss_bytes": row[13]})
        return out

    def summary(self) -> dict:
        """Windows, samples, time span and hosts of the whole store: one pass over `windows` (~860k rows per day
        for 100 hosts). A window row is stored once (resends check first); two resends of one window racing
        each other would count it twice here until the ReplacingMergeTree folds the pair (windows() lists it
        once either way) -- grouping by window instead cost a second per day of data."""
        rows = self.execute("SELECT count(), sum(samples), min(start_ns), max(start_ns + duration_ns), "
                            "uniqExact(host) FROM {db}.windows")
        n, samples, first, last, hosts = rows[0]
        return {"windows": int(n), "samples": int(samples or 0), "first_ns": int(first or 0),
                "last_ns": int(last or 0), "hosts": int(hosts)}

    def label_values(self, key: str, selector: Selector | None = None, limit: int = 200) -> list[tuple[str, int]]:
        """Values of a label with their sample counts (what a selector can pick), busiest first.

        A label of whole windows (a --label, or the host) under a selector of such labels is answered by the
        `windows` table (its per-window sample counts), which is ~200 times smaller than the samples rows."""
        column = COLUMN_LABELS.get(key)
        selector = selector or Selector()
        window_level = {None, "host", "event"}
        if column in (None, "host") and all(COLUMN_LABELS.get(k) in window_level for k in selector.labels):
            where, params = selector.where("windows")
            expr = column or "label_values[indexOf(label_keys, %(key)s)]"
            rows = self.execute(f"SELECT toString({expr}) AS v, sum(samples) AS n FROM {{db}}.windows WHERE {where} "
                                "GROUP BY v ORDER BY n DESC LIMIT %(limit)s", {**params, "key": key, "limit": limit})
            return [(str(v), int(n)) for v, n in rows if v != ""]
        columns = ("samples", column) if column else ("samples", "label_keys", "label_values")
        src, params = self.source(selector, columns, per_process=column == "pid")
        expr = column if column else "label_values[indexOf(label_keys, %(key)s)]"
        rows = self.execute(f"SELECT toString({expr}) AS v, sum(samples) AS n FROM {src} "
                            "GROUP BY v ORDER BY n DESC LIMIT %(limit)s", {**params, "key": key, "limit": limit})
        return [(str(v), int(n)) for v, n in rows if v != ""]

    def label_keys(self) -> list[str]:
        rows = self.execute("SELECT DISTINCT arrayJoin(label_keys) FROM {db}.windows")  # labels are per window
        return sorted({"host", "comm", "pid", "executable", "build_id", "cgroup"} | {r[0] for r in rows})

    def events(self, selector: Selector | None = None) -> list[tuple[str, int]]:
        src, params = self.source(selector or Selector(), ("event", "samples"))
        rows = self.execute(f"SELECT event, sum(samples) AS n FROM {src} GROUP BY event "
                            "ORDER BY n DESC", params)
        return [(str(e), int(n)) for e, n in rows]

    def series(self, selector: Selector, bin_s: int | None = None) -> dict:
        """Samples, period and every counter per time bin: the counters-over-time strip."""
        bin_s = bin_s or self._bin_seconds(selector)
        src, params = self.source(selector, ("window_start", "samples", "period", "counter_names", "counter_values"),
                                  bin_s=bin_s)
        rows = self.execute(
            f"SELECT intDiv(toUInt32(window_start), {bin_s}) * {bin_s} AS t, sum(samples), sum(period), "
            f"counter_names, sumForEach(counter_values) FROM {src} "
            "GROUP BY t, counter_names ORDER BY t", params)
        bins: dict[int, dict] = {}
        for t, n, period, names, values in rows:
            entry = bins.setdefault(int(t), {"t": int(t), "samples": 0, "period": 0.0, "counters": {}})
            entry["samples"] += int(n)
            entry["period"] += float(period)
            for name, value in zip(names, values, strict=False):
                entry["counters"][name] = entry["counters"].get(name, 0.0) + float(value)
        return {"bin_s": bin_s, "bins": list(bins.values())}

    def top_functions(self, selector: Selector, limit: int = 50) -> list[dict]:
        """Functions by total samples (each stack counts a function once, recursion included) and self samples
        (the leaf frame), computed in ClickHouse over the merged stacks."""
        src, params = self.source(selector, ("stack_id", "samples"))
        rows = self.execute(f"""
            SELECT function_id, sum(s) AS total, sum(s * leaf) AS self FROM (
                SELECT stack_id, s, function_id, max(is_leaf) AS leaf FROM (
                    SELECT stack_id, s, frame_id, is_leaf FROM (
                        SELECT stack_id, s, frame_ids FROM (
                            SELECT stack_id, sum(samples) AS s FROM {src} GROUP BY stack_id
                        ) ANY INNER JOIN (
                            SELECT stack_id, any(frame_ids) AS frame_ids FROM {{db}}.stacks GROUP BY stack_id
                        ) USING stack_id
                    ) ARRAY JOIN frame_ids AS frame_id,
                               arrayMap(i -> toUInt8(i = length(frame_ids)), arrayEnumerate(frame_ids)) AS is_leaf
                ) ANY INNER JOIN (
                    SELECT frame_id, any(function_id) AS function_id FROM {{db}}.frames GROUP BY frame_id
                ) USING frame_id
                GROUP BY stack_id, s, function_id
            ) GROUP BY function_id ORDER BY total DESC LIMIT %(limit)s""", {**params, "limit": limit})
        names = self._functions([r[0] for r in rows])
        total = self.total_samples(selector)
        out = []
        for fid, n_total, n_self in rows:
            name, module, kind = names.get(fid, ("[unknown]", "", 0))
            out.append({"function": name, "module": module, "kind": FrameKind(kind).name.lower(),
                        "total": int(n_total), "self": int(n_self),
                        "total_pct": 100.0 * n_total / total if total else 0.0,
                        "self_pct": 100.0 * n_self / total if total else 0.0})
        return out

    def total_samples(self, selector: Selector) -> int:
        src, params = self.source(selector, ("samples",))
        return int(self.execute(f"SELECT sum(samples) FROM {src}", params)[0][0] or 0)

    def merged_profile(self, selector: Selector, *, per_process: bool = False, event: str | None = None,
                       max_bins: int = MAX_TIME_BINS) -> Profile:
        """Every stored window the selector matches, merged into one aggregated Profile (sample_count per row).

        One scan of `samples`: rows come out of ClickHouse grouped by (event, time bin, comm[, pid], stack, stack
        end, counter names) — as many as the flame graph and time strip can show, however many samples and hosts
        were merged. Without `event`, the event with the most samples is reported (others are named in a note).
        """
        if event:
            selector = replace(selector, labels={**selector.labels, "event": (event,)})
        bin_s = self._bin_seconds(selector, max_bins)
        src, params = self.source(selector, ("event", "window_start", "comm", "stack_id", "stack_end", "samples",
                                             "period", "counter_names", "counter_values")
                                  + (("pid",) if per_process else ()), bin_s=bin_s, per_process=per_process)
        pid_col = "pid" if per_process else "toUInt32(0)"
        columns = self.execute(
            f"SELECT event, intDiv(toUInt32(window_start), {bin_s}) * {bin_s} AS t, comm, {pid_col} AS p, stack_id, "
            f"stack_end, sum(samples), sum(period), counter_names, sumForEach(counter_values) "
            f"FROM {src} GROUP BY event, t, comm, p, stack_id, stack_end, counter_names",
            params, columnar=True)
        if not columns:
            columns = [()] * 10
        events_col = np.asarray(columns[0], dtype=object)
        notes = []
        if len(events_col):
            names, counts = np.unique(events_col, return_inverse=True)
            totals = np.bincount(counts.reshape(-1), weights=np.asarray(columns[6], dtype=np.float64))
            chosen = int(np.argmax(totals))
            event = event or str(names[chosen])
            if len(names) > 1:
                notes.append("other sampling events in this selection (pick one with --event): "
                             + ", ".join(str(n) for i, n in enumerate(names) if i != chosen))
            keep = events_col == event
            # object arrays: ids are unsigned 64-bit, which numpy would otherwise turn into floats when mixed
            columns = [_object_array(c)[keep] for c in columns]
        _, t_col, comm_col, pid_col_v, stack_col, end_col, count_col, period_col, cnames_col, cvalues_col = columns
        wwhere, wparams = selector.where("windows")
        if event:
            wwhere += " AND event = %(event)s"
            wparams["event"] = event
        meta_rows = self.execute(
            f"SELECT min(start_ns), max(start_ns + duration_ns), sum(lost), groupUniqArray(host), "
            f"groupUniqArray(target) FROM {{db}}.windows WHERE {wwhere}", wparams)
        first, last, lost, hosts, targets = meta_rows[0]
        stack_ids = sorted({int(x) for x in stack_col if x})
        stacks = self._stacks(stack_ids)
        frame_ids = sorted({f for ids in stacks.values() for f in ids})
        frames = self._frames(frame_ids)
        functions = self._functions(sorted({f[0] for f in frames.values()}))
        counter_names: list[str] = []
        for names in {tuple(n) for n in cnames_col}:
            counter_names += [n for n in names if n not in counter_names]
        meta = ProfileMeta(target=", ".join(sorted(targets)[:3]) or "fleet", events=[event] if event else [],
                           weight_names=counter_names, start_time_ns=int(first or 0),
                           duration_ns=int((last or 0) - (first or 0)), lost=int(lost or 0),
                           hostname=", ".join(sorted(hosts)[:5]) + (" ..." if len(hosts) > 5 else ""),
                           source=f"hwprof fleet store {self.url.display()} ({len(hosts)} host(s))",
                           notes=notes)
        builder = ProfileBuilder(meta)
        frame_index: dict[int, int] = {}
        for fid, (function_id, file, line, inlined) in frames.items():
            name, module, kind = functions.get(function_id, ("[unknown]", "", 0))
            frame_index[fid] = builder.frame(function=name, module=module or None, address=0,
                                             kind=FrameKind(kind), file=file or None, line=line,
                                             inlined=bool(inlined))
        stack_index = {sid: builder.stack([frame_index[f] for f in ids if f in frame_index])
                       for sid, ids in stacks.items()}
        base = builder.build()
        n = len(t_col)
        comms = sorted(set(comm_col.tolist())) if n else []
        comm_codes = np.searchsorted(np.asarray(comms, dtype=object), comm_col) if n else np.zeros(0, np.int64)
        # Without per-process rows, each comm gets a stable pseudo pid so per-comm views still separate them.
        # The pid column is the kernel's u32: 4294967295 (an exiting task's -1) comes back as -1, as decoded locally.
        sample_pid = (np.array(list(pid_col_v), dtype=np.int64).astype(np.int32) if per_process
                      else -(comm_codes.astype(np.int32) + 1))
        threads = {}
        if n:
            first_row = np.unique(sample_pid, return_index=True)[1]
            threads = {int(sample_pid[i]): str(comm_col[i]) for i in first_row}
        uniq_stacks, stack_inverse = np.unique(np.array(list(stack_col), dtype=np.uint64), return_inverse=True)
        stack_lookup = np.array([stack_index.get(int(s), -1) for s in uniq_stacks], dtype=np.int32)
        counters = np.zeros((n, len(counter_names)))
        if counter_names:
            col_of = {name: i for i, name in enumerate(counter_names)}
            for i in range(n):
                for name, value in zip(cnames_col[i], cvalues_col[i], strict=False):
                    counters[i, col_of[name]] += value
        return replace(
            base,
            sample_time=np.array(list(t_col), dtype=np.uint64) * np.uint64(1_000_000_000),
            sample_pid=sample_pid, sample_tid=sample_pid.copy(), sample_cpu=np.full(n, -1, dtype=np.int32),
            sample_stack=stack_lookup[stack_inverse.reshape(-1)] if n else np.zeros(0, np.int32),
            sample_period=np.array(list(period_col), dtype=np.float64),
            sample_end=np.array(list(end_col), dtype=np.uint8),
            counters=counters, threads=threads,
            sample_count=np.array(list(count_col), dtype=np.int64))

    def _bin_seconds(self, selector: Selector, max_bins: int = MAX_TIME_BINS) -> int:
        """Time-bin width: a multiple of the 10 s window giving at most max_bins bins over the selection's span
        (the open ends of a range are looked up in the small windows table); from ROLLUP_BIN_FROM_S on, a multiple
        of the rollup's bucket, so that the range's whole buckets are read from `samples_10m` (a day in 100 bins:
        72 bins of 20 minutes)."""
        first, last = selector.start_s, selector.end_s
        if first is None or last is None:
            where, params = selector.where("windows")
            lo, hi = self.execute(f"SELECT min(toUInt32(window_start)), max(toUInt32(window_start)) + 10 "
                                  f"FROM {{db}}.windows WHERE {where}", params)[0]
            first = lo if first is None else first
            last = hi if last is None else last
        span = max(int(last or 0) - int(first or 0), 1)
        width = max(10, -(-span // max(max_bins, 1)))
        step = ROLLUP_S if width >= ROLLUP_BIN_FROM_S else 10
        return int(-(-width // step) * step)

    def _by_ids(self, query: str, ids: list[int]) -> Iterator[tuple]:
        for lo in range(0, len(ids), 50_000):
            chunk = ids[lo:lo + 50_000]
            yield from self.execute(query, external_tables=[{"name": "wanted", "structure": [("id", "UInt64")],
                                                             "data": [{"id": i} for i in chunk]}])

    def _stacks(self, ids: list[int]) -> dict[int, list[int]]:
        return {r[0]: list(r[1]) for r in self._by_ids(
            "SELECT stack_id, any(frame_ids) FROM {db}.stacks WHERE stack_id IN wanted GROUP BY stack_id", ids)}

    def _frames(self, ids: list[int]) -> dict[int, tuple[int, str, int, int]]:
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in self._by_ids(
            "SELECT frame_id, any(function_id), any(file), any(line), any(inlined) FROM {db}.frames "
            "WHERE frame_id IN wanted GROUP BY frame_id", ids)}

    def _functions(self, ids: list[int]) -> dict[int, tuple[str, str, int]]:
        return {r[0]: (r[1], r[2], r[3]) for r in self._by_ids(
            "SELECT function_id, any(name), any(module), any(kind) FROM {db}.functions "
            "WHERE function_id IN wanted GROUP BY function_id", ids)}

    def disk_usage(self) -> dict[str, dict]:
        rows = self.execute("SELECT table, sum(rows), sum(bytes_on_disk), count() FROM system.parts "
                            "WHERE database = %(db)s AND active GROUP BY table", {"db": self.db})
        return {t: {"rows": int(n), "bytes": int(b), "parts": int(p)} for t, n, b, p in rows}


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _datetime(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).replace(tzinfo=None)


def _call(url: ClickHouseURL, fn, *args, **kwargs):
    """Run a driver call; turn its failures into one line that names the server and what to do."""
    from clickhouse_driver import errors

    try:
        return fn(*args, **kwargs)
    except errors.NetworkError as exc:
        raise StoreUnavailable(f"cannot reach ClickHouse at {url.display()}: {_first_line(exc)}") from None
    except errors.SocketTimeoutError as exc:
        raise StoreUnavailable(f"ClickHouse at {url.display()} timed out: {_first_line(exc)}") from None
    except (EOFError, ConnectionError, OSError) as exc:
        raise StoreUnavailable(f"lost the connection to ClickHouse at {url.display()}: {exc}") from None
    except errors.ServerException as exc:
        if exc.code in (errors.ErrorCodes.UNKNOWN_USER, errors.ErrorCodes.WRONG_PASSWORD, 516):
            raise HwprofError(f"ClickHouse at {url.display()} refused user {url.user!r}: wrong user or password "
                              f"(give them as clickhouse://USER:PASSWORD@HOST/DB)") from None
        raise HwprofError(f"ClickHouse at {url.display()}: {_first_line(exc)}") from None
    except errors.Error as exc:
        raise HwprofError(f"ClickHouse at {url.display()}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    """The server's message without its code prefix and C++ stack trace."""
    text = getattr(exc, "message", None) or str(exc)
    text = text.split("Stack trace:")[0]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.strip().startswith("Code: ")]
    line = " ".join(lines) if lines else type(exc).__name__
    return line.replace("DB::Exception: ", "").strip().rstrip(".")[:300]


def stack_end_name(end: int) -> str:
    return StackEnd(end).name.lower()


def selector_from_args(store: ClickHouseStore, *, comms: tuple[str, ...] = (), pids: tuple[int, ...] = (),
                       labels: dict[str, tuple[str, ...]] | None = None, time_range: str | None = None) -> Selector:
    """The usual report filters (--comm, --pid, --label, --time) as one Selector, evaluated in ClickHouse."""
    from hwprof.fleet.timerange import needs_bounds, parse_time_range

    merged = dict(labels or {})
    if comms:
        merged["comm"] = tuple(comms)
    if pids:
        merged["pid"] = tuple(str(p) for p in pids)
    selector = Selector(labels=merged)
    if time_range:
        first = last = 0.0
        if needs_bounds(time_range):
            first, last = store.time_bounds(selector)
        start, end = parse_time_range(time_range, float(first or 0), float(last or 0))
        selector = replace(selector, start_s=start, end_s=end)
    return selector
