"""Tables of the fleet store, their version, and the migrations from every older version.

The shape (why): a profile is a few thousand distinct stacks sampled millions of times, so
- `functions` (name, module, kind), `frames` (function + file:line + inlined) and `stacks` (frame ids, root first)
  are keyed by a 64-bit hash of their content: every host computes the same id for the same stack, a stack is
  stored once however often and wherever it is sampled, and inserting it again is harmless (ReplacingMergeTree
  folds repeats; queries read them with `any()` per id);
- `samples` holds one row per (window, process, stack, how the stack ended) with the sample count, the sampling
  event's period and one value per group member (`counter_names`/`counter_values`, summed element-wise), and the
  labels a query selects on: host, pid, comm, executable, build-id, cgroup, and `--label key=value` pairs;
- `windows` holds one row per shipped window (who, when, how long, how many samples and lost records, the agent's
  own CPU and memory), which `hwprof ls --store` lists and idempotent inserts check.
- `samples_10m` (version 3) is `samples` rolled up to ten-minute buckets per host, process labels but the pid,
  window labels and stack: filled at insert time by a materialized view (`samples_10m_mv`, AggregatingMergeTree:
  rows of one bucket that arrive in separate windows are summed when parts merge, and queries sum them anyway).
  An agent's host has a few thousand distinct (process, stack) rows in ten minutes where its 60 windows stored
  ~300 each, so a query over hours or days reads that many times fewer rows (measured: BENCHMARKS.md, "Fleet
  store"). Queries read whole buckets from it and only the unaligned edges of a range (and anything per pid)
  from `samples`; see ClickHouseStore.source.
- `samples_pid_10m` (version 4) is the same rollup with the pid kept, sorted by (host, pid, time): a question about
  one process reads that process's rows (a host's range, then its pid's; without a host, each host's pid range),
  and a question per process (`--sort pid`) of some hosts reads their ranges, instead of every row of the time
  range in `samples`. A host's processes are few and long-lived, so it is not much larger than `samples_10m`.
All of them are partitioned by day, so retention drops whole partitions and a time-range query reads only its days.
The sort key of `samples` is (time, host, comm, stack): every query names a time range, which then reads a
contiguous slice of its day partitions, and the idempotency check of one window (time, host, id) is an index
lookup rather than a scan. `samples_10m` is sorted by host first: a label selects hosts (looked up in `windows`),
and each host's buckets are then one contiguous range.

Versions: SCHEMA_VERSION is what this hwprof writes; `schema_version` records each version applied. A store of an
older version is migrated in order (MIGRATIONS[v] takes v-1 to v); a newer one is refused, since this hwprof would
not know what its columns mean.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 4
ROLLUP_S = 600                  # the bucket of `samples_10m`

# Version 1: the first layout (no cgroup label, no counter columns, no agent resource columns).
_V1 = (
    """CREATE TABLE IF NOT EXISTS {db}.schema_version (
        version UInt32, applied DateTime, hwprof String
    ) ENGINE = MergeTree ORDER BY version""",
    """CREATE TABLE IF NOT EXISTS {db}.functions (
        function_id UInt64, name String, module String, kind UInt8
    ) ENGINE = ReplacingMergeTree ORDER BY function_id""",
    """CREATE TABLE IF NOT EXISTS {db}.frames (
        frame_id UInt64, function_id UInt64, file String, line UInt32, inlined UInt8
    ) ENGINE = ReplacingMergeTree ORDER BY frame_id""",
    """CREATE TABLE IF NOT EXISTS {db}.stacks (
        stack_id UInt64, frame_ids Array(UInt64)
    ) ENGINE = ReplacingMergeTree ORDER BY stack_id""",
    """CREATE TABLE IF NOT EXISTS {db}.samples (
        window_start DateTime, window_id UInt64,
        host LowCardinality(String), pid UInt32, comm LowCardinality(String),
        executable LowCardinality(String), build_id LowCardinality(String),
        label_keys Array(String), label_values Array(String),
        event LowCardinality(String), stack_id UInt64, stack_end UInt8,
        samples UInt64, period Float64
    ) ENGINE = MergeTree PARTITION BY toDate(window_start)
      ORDER BY (window_start, host, comm, stack_id)""",
    """CREATE TABLE IF NOT EXISTS {db}.windows (
        window_id UInt64, window_start DateTime, start_ns UInt64, duration_ns UInt64,
        host LowCardinality(String), target String, event LowCardinality(String),
        label_keys Array(String), label_values Array(String),
        samples UInt64, lost UInt64, filtered UInt64, hwprof String
    ) ENGINE = ReplacingMergeTree PARTITION BY toDate(window_start) ORDER BY (host, window_start, window_id)""",
)

# Version 2: cgroup/container label, per-member counter values, the agent's own CPU time and memory per window.
_V2 = (
    "ALTER TABLE {db}.samples ADD COLUMN cgroup LowCardinality(String) DEFAULT '' AFTER build_id",
    "ALTER TABLE {db}.samples ADD COLUMN counter_names Array(String) AFTER period",
    "ALTER TABLE {db}.samples ADD COLUMN counter_values Array(Float64) AFTER counter_names",
    "ALTER TABLE {db}.windows ADD COLUMN agent_cpu_ns UInt64 DEFAULT 0",
    "ALTER TABLE {db}.windows ADD COLUMN agent_rss_bytes UInt64 DEFAULT 0",
)


@dataclass(frozen=True)
class Backfill:
    """Fill `table` from the rows `source` held before `view` existed: run by ClickHouseStore.migrate with the
    source's merges stopped, over the parts listed just before the view is created (later parts reach the table
    through the view), so no row is counted twice or left out -- except rows inserted in the moment between
    listing the parts and creating the view, by another client, during the migration."""

    table: str
    source: str
    view: str
    select: str                 # SELECT ... FROM {db}.<source> {where} GROUP BY ...: {where} restricts the parts


def _rollup(table: str, by_pid: bool) -> tuple[str, Backfill]:
    """A ten-minute rollup of `samples` (its table and the Backfill that creates its view and fills it): the same
    columns and sums for every rollup; `by_pid` keeps the pid and sorts by (host, pid, time) instead of
    (host, time)."""
    pid = "pid, " if by_pid else ""
    key = (f"host, {pid}window_start, comm, stack_id, stack_end, event, executable, build_id, cgroup, label_keys, "
           "label_values, counter_names")
    select = (f"SELECT toDateTime(intDiv(toUInt32(window_start), {ROLLUP_S}) * {ROLLUP_S}) AS window_start, "
              f"host, {pid}comm, executable, build_id, cgroup, label_keys, label_values, event, stack_id, stack_end, "
              "counter_names, sumState(samples) AS samples, sumState(period) AS period, "
              "sumForEachState(counter_values) AS counter_values FROM {db}.samples {where} "
              f"GROUP BY {key}")
    pid_column = "pid UInt32, " if by_pid else ""
    ddl = f"""CREATE TABLE IF NOT EXISTS {{db}}.{table} (
        window_start DateTime, host LowCardinality(String), {pid_column}comm LowCardinality(String),
        executable LowCardinality(String), build_id LowCardinality(String), cgroup LowCardinality(String),
        label_keys Array(String), label_values Array(String), event LowCardinality(String),
        stack_id UInt64, stack_end UInt8, counter_names Array(String),
        samples AggregateFunction(sum, UInt64), period AggregateFunction(sum, Float64),
        counter_values AggregateFunction(sumForEach, Array(Float64))
    ) ENGINE = AggregatingMergeTree PARTITION BY toDate(window_start)
      ORDER BY ({key}) PRIMARY KEY (host, {pid}window_start)"""
    return ddl, Backfill(table=table, source="samples", view=f"{table}_mv", select=select)


# Version 3: the ten-minute rollup, its materialized view, and the rows stored before it.
_V3 = _rollup("samples_10m", by_pid=False)

# Version 4: the ten-minute rollup per process, sorted by host and pid: what per-pid questions read (`--pid N`, the
# web view's page of one process, `--sort pid`), which `samples_10m` cannot answer (it has no pid) and which read
# every stored row of their range in `samples` (sorted by time, not pid) before: 6-15 s for a day.
_V4 = _rollup("samples_pid_10m", by_pid=True)

MIGRATIONS: dict[int, tuple[str | Backfill, ...]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4}

# Rollups of `samples` (ten-minute buckets), and the schema version that brought each.
ROLLUPS = {"samples_10m": 3, "samples_pid_10m": 4}
DATA_TABLES = ("samples", "windows", *ROLLUPS)  # partitioned by day: retention drops their old partitions
ID_TABLES = ("functions", "frames", "stacks")  # content-addressed, shared by all windows


def view_ddl(backfill: Backfill) -> str:
    """The materialized view that feeds a rollup from every insert into its source."""
    return (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{backfill.view} TO {{db}}.{backfill.table} AS "
            + backfill.select.replace("{where}", ""))


def statements(from_version: int, to_version: int = SCHEMA_VERSION) -> list[tuple[int, str | Backfill]]:
    """(version, DDL or Backfill) pairs that take a store from `from_version` (0: empty) to `to_version`, in order."""
    out = []
    for version in range(from_version + 1, to_version + 1):
        out += [(version, ddl) for ddl in MIGRATIONS[version]]
    return out
