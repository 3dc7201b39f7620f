"""Fleet store ingest and query speed: 100 hosts x 24 h of windows made from a real capture's stack distribution.

1. A real capture: `hwprof record -a -g -F 99` of this machine running the demo workload, decoded and symbolized,
   becomes the template: its (process, stack) rows and their share of the samples (functions, frames and stacks are
   stored for real). Each process gets an executable, a build-id and a cgroup label, as the agent's labeler gives.
2. The agent's send path (ClickHouseStore.insert_window, one client connection): HOSTS x CLIENT_WINDOWS windows of
   10 s at 19 Hz x 2 CPUs (380 samples each, a Poisson draw from the template's shares). Reported: windows/s,
   rows/s, samples/s, and the parts that one-insert-per-window leaves for the server to merge.
3. The rest of the day, as bulk inserts measured on the server: every host-hour is 360 such windows. A pool of
   POOL host-hours is drawn once (numpy, fresh Poisson draws per window) and encoded once in ClickHouse's Native
   format; each (host, hour) reuses one pool entry and re-encodes only the columns that name the host and the time
   (window_start, window_id, host, pid, the service label). So generating costs milliseconds per million rows and
   what the timer measures is the server parsing, sorting, compressing and writing the rows (plus feeding the
   store's materialized rollup), sent over HTTP by SENDERS connections. Reported apart: generation CPU seconds,
   insert wall seconds, the server's own CPU seconds (/proc/PID/stat), rows/s.
   (The Native encoding is written here with numpy: clickhouse-driver serializes LowCardinality and Array columns
   in a Python loop per value, which would cost more CPU than the server spends storing them.)
4. Reported: rows and bytes on disk per table, bytes per sample, and for one service (10 of the 100 hosts, label
   service=svc3) over 1 h and 24 h, the query paths of `hwprof report --store` and the web view: merged flame
   graph (with 100 time bins for the web page, without for the report), top functions, a diff's two merges,
   counters over time, label values, a column-label filter; each with rows received by Python (bounded by
   stacks x bins, never the stored rows).
5. Retention at this scale: the day is dropped by enforce_retention (partition drops; Debian's 18.16 has no TTL).

6. `--batching 1,3,6,30` (instead of 2-5): the agent's send path with B windows per insert
   (ClickHouseStore.insert_windows, `hwprof agent --send-interval`): server and agent CPU per window for each B.

    .venv/bin/python benchmarks/fleet_ingest.py [--hosts 100] [--hours 24] [--client-windows 3] [--data DIR]
    .venv/bin/python benchmarks/fleet_ingest.py --batching 1,3,6,30
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SAMPLE_HZ = 19
CPUS_PER_HOST = 2
WINDOW_S = 10
SAMPLES_PER_WINDOW = SAMPLE_HZ * CPUS_PER_HOST * WINDOW_S   # 380
WINDOWS_PER_HOUR = 3600 // WINDOW_S
SERVICES = 10
HOSTS_PER_INSERT = 10          # one bulk insert: 10 host-hours (~1.1M rows)
PID_STRIDE = 7919              # hosts run the same programs under different pids


# --- ClickHouse Native format, column by column --------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return _varint(len(raw)) + raw


def strings_column(values: list[str], codes: np.ndarray) -> bytes:
    """A String column whose row i is values[codes[i]] (each value: varint length + bytes), by one numpy gather."""
    encoded = [_string(v) for v in values]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    source = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    row_lengths = lengths[codes]
    out_starts = np.cumsum(row_lengths) - row_lengths
    gather = np.repeat(starts[codes] - out_starts, row_lengths) + np.arange(int(row_lengths.sum()))
    return source[gather].tobytes()


def low_cardinality_column(values: list[str], codes: np.ndarray) -> bytes:
    """LowCardinality(String): key-version prefix, then one granule with its dictionary and the row indexes."""
    width = 0 if len(values) <= 0xFF else 1 if len(values) <= 0xFFFF else 2
    index_dtype = ("<u1", "<u2", "<u4")[width]
    header = np.array([1, (1 << 9) | (1 << 10) | width, len(values)], dtype="<u8").tobytes()
    return (header + strings_column(values, np.arange(len(values))) + np.array([len(codes)], "<u8").tobytes()
            + codes.astype(index_dtype).tobytes())


def constant_string_arrays(items: list[str], n: int) -> bytes:
    """Array(String) with the same list in each of n rows."""
    offsets = np.arange(1, n + 1, dtype="<u8") * len(items)
    return offsets.tobytes() + b"".join(_string(x) for x in items) * n


def empty_arrays(n: int) -> bytes:
    return np.zeros(n, dtype="<u8").tobytes()


def native_block(n_rows: int, columns: list[tuple[str, str, bytes]]) -> bytes:
    return _varint(len(columns)) + _varint(n_rows) + b"".join(
        _string(name) + _string(kind) + data for name, kind, data in columns)


def window_ids(hosts: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """A 64-bit id per (host, window) (splitmix64 of both), the same in `samples` and `windows`."""
    z = (hosts.astype(np.uint64) << np.uint64(32)) + windows.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# --- the template and its host-hours -------------------------------------------------------------------------
@dataclass
class Template:
    pid: np.ndarray
    stack_id: np.ndarray
    stack_end: np.ndarray
    comm_code: np.ndarray        # per template row, into comms (also executables, build-ids, cgroups: one each)
    comms: list[str]
    executables: list[str]
    build_ids: list[str]
    cgroups: list[str]
    mean: np.ndarray             # expected samples of each row in one window
    event: str


@dataclass
class HostHour:
    """One host-hour drawn from the template: its rows (window index within the hour, template row, samples) and
    the Native-encoded columns that do not depend on which host or hour it stands for."""

    window: np.ndarray
    row: np.ndarray
    samples: np.ndarray
    fixed: list[tuple[str, str, bytes]]


def draw_host_hour(template: Template, rng: np.random.Generator, first_window: int = 0) -> HostHour:
    counts = rng.poisson(template.mean, size=(WINDOWS_PER_HOUR, len(template.mean)))
    counts[:first_window] = 0
    window, row = np.nonzero(counts)
    samples = counts[window, row].astype(np.uint64)
    n = len(row)
    comm = template.comm_code[row]
    fixed = [
        ("comm", "LowCardinality(String)", low_cardinality_column(template.comms, comm)),
        ("executable", "LowCardinality(String)", low_cardinality_column(template.executables, comm)),
        ("build_id", "LowCardinality(String)", low_cardinality_column(template.build_ids, comm)),
        ("cgroup", "LowCardinality(String)", low_cardinality_column(template.cgroups, comm)),
        ("label_keys", "Array(String)", constant_string_arrays(["service"], n)),
        ("event", "LowCardinality(String)", low_cardinality_column([template.event], np.zeros(n, np.uint8))),
        ("stack_id", "UInt64", template.stack_id[row].astype("<u8").tobytes()),
        ("stack_end", "UInt8", template.stack_end[row].astype("<u1").tobytes()),
        ("samples", "UInt64", samples.astype("<u8").tobytes()),
        ("period", "Float64", (samples * (1e9 / SAMPLE_HZ)).astype("<f8").tobytes()),
        ("counter_names", "Array(String)", empty_arrays(n)),
        ("counter_values", "Array(Float64)", empty_arrays(n)),
    ]
    return HostHour(window=window.astype(np.int64), row=row, samples=samples, fixed=fixed)


def samples_block(template: Template, hh: HostHour, host: int, hour: int, day_start: int) -> bytes:
    n = len(hh.row)
    w = hh.window + hour * WINDOWS_PER_HOUR
    columns = [
        ("window_start", "DateTime", (day_start + WINDOW_S * w).astype("<u4").tobytes()),
        ("window_id", "UInt64", window_ids(np.full(n, host), w).astype("<u8").tobytes()),
        ("host", "LowCardinality(String)", low_cardinality_column([f"host{host:03d}"], np.zeros(n, np.uint8))),
        ("pid", "UInt32", ((template.pid[hh.row] + PID_STRIDE * host) % 4_194_304).astype("<u4").tobytes()),
        ("label_values", "Array(String)", constant_string_arrays([f"svc{host % SERVICES}"], n)),
    ] + hh.fixed
    return native_block(n, columns)


def windows_block(hosts: np.ndarray, windows: np.ndarray, samples: np.ndarray, day_start: int, event: str) -> bytes:
    n = len(hosts)
    start = (day_start + WINDOW_S * windows).astype(np.uint64)
    host_names = [f"host{h:03d}" for h in range(int(hosts.max()) + 1)]
    service_names = [f"svc{s}" for s in range(SERVICES)]
    zeros = np.zeros(n, "<u8").tobytes()
    label_values = np.arange(1, n + 1, dtype="<u8").tobytes() + strings_column(service_names, hosts % SERVICES)
    return native_block(n, [
        ("window_id", "UInt64", window_ids(hosts, windows).astype("<u8").tobytes()),
        ("window_start", "DateTime", start.astype("<u4").tobytes()),
        ("start_ns", "UInt64", (start * np.uint64(1_000_000_000)).astype("<u8").tobytes()),
        ("duration_ns", "UInt64", np.full(n, WINDOW_S * 10**9, "<u8").tobytes()),
        ("host", "LowCardinality(String)", low_cardinality_column(host_names, hosts)),
        ("target", "String", strings_column(["system-wide"], np.zeros(n, np.int64))),
        ("event", "LowCardinality(String)", low_cardinality_column([event], np.zeros(n, np.uint8))),
        ("label_keys", "Array(String)", constant_string_arrays(["service"], n)),
        ("label_values", "Array(String)", label_values),
        ("samples", "UInt64", samples.astype("<u8").tobytes()),
        ("lost", "UInt64", zeros), ("filtered", "UInt64", zeros),
        ("hwprof", "String", strings_column(["bench"], np.zeros(n, np.int64))),
        ("agent_cpu_ns", "UInt64", zeros), ("agent_rss_bytes", "UInt64", zeros),
    ])


class NativeSender:
    """POST bodies in FORMAT Native to the server's HTTP interface, one keep-alive connection per thread."""

    def __init__(self, port: int, database: str, user: str, password: str) -> None:
        self.port, self.database, self.user, self.password = port, database, user, password

    def insert(self, conn: http.client.HTTPConnection, table: str, columns: list[str], body: bytes) -> None:
        query = f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) FORMAT Native"
        params = urllib.parse.urlencode({"query": query, "allow_experimental_low_cardinality_type": 1})
        conn.request("POST", f"/?{params}", body=body,
                     headers={"X-ClickHouse-User": self.user, "X-ClickHouse-Key": self.password})
        response = conn.getresponse()
        text = response.read()
        if response.status != 200:
            raise RuntimeError(f"insert into {table} failed: {text[:300]!r}")


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load average " + "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- the benchmark -------------------------------------------------------------------------------------------
# What runs beside the demo while the template is captured: a host's usual mix of programs (a shell pipeline of
# coreutils started again and again, a compressor, and an interpreter compiling the standard library in memory),
# so the template has the stack diversity of a working host (~200 distinct (process, stack) rows per 10 s window
# at 19 Hz x 2 CPUs) whatever else the benchmark's machine runs at the time.
BUSY_HOST = [
    "while :; do find /usr/lib /usr/share/doc -type f 2>/dev/null | sort | uniq -c | sort -n | tail -1 >/dev/null; "
    "done",
    "while :; do tar -cf - /usr/share/doc 2>/dev/null | gzip -6 | wc -c >/dev/null; done",
    f"while :; do {sys.executable} -c \"import pathlib; [compile(p.read_text(errors='ignore'), str(p), 'exec') "
    f"for p in pathlib.Path('/usr/lib/python3.11').rglob('*.py')]\" 2>/dev/null; done",
]


def real_capture(tmp: Path):
    from hwprof.symbolize import Symbolizer

    from hwprof.pipeline import decode_file

    workload = tmp / "demo-workload"
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", str(workload),
                    str(ROOT / "demo" / "workload.c")], check=True)
    running = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
               for argv in [[str(workload), "30"]] + [["bash", "-c", script] for script in BUSY_HOST]]
    try:
        time.sleep(2)
        subprocess.run([sys.executable, "-m", "hwprof", "record", "-a", "-g", "-F", "99", "-d", "20", "-q", "-o",
                        str(tmp / "real.perf.data")], check=True)
    finally:
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # each in its own session: the shell and what it started
            proc.wait()
    return decode_file(tmp / "real.perf.data", Symbolizer())


def make_template(batch) -> Template:
    rows = batch.rows
    comms = sorted(set(rows["comm"]))
    comm_code = np.searchsorted(np.asarray(comms, dtype=object), np.asarray(rows["comm"], dtype=object))
    share = np.asarray(rows["samples"], dtype=np.float64)
    return Template(
        pid=np.asarray(rows["pid"], dtype=np.int64), stack_id=np.asarray(rows["stack_id"], dtype=np.uint64),
        stack_end=np.asarray(rows["stack_end"], dtype=np.uint8), comm_code=comm_code, comms=comms,
        executables=[rows["executable"][int(np.argmax(comm_code == i))] for i in range(len(comms))],
        build_ids=[rows["build_id"][int(np.argmax(comm_code == i))] for i in range(len(comms))],
        cgroups=[rows["cgroup"][int(np.argmax(comm_code == i))] for i in range(len(comms))],
        mean=SAMPLES_PER_WINDOW * share / share.sum(), event=batch.event)


def process_labels(pid: int, comm: str):
    from hwprof.fleet.window import ProcessLabels, stable_id

    return ProcessLabels(executable=f"/usr/bin/{comm}", build_id=f"{stable_id('build', comm):016x}" * 2 + "a1b2c3d4",
                         cgroup=f"/system.slice/{comm}.service")


def agent_window(template: Template, batch_rows: dict, rng: np.random.Generator, host: int, index: int,
                 day_start: int):
    """Window `index` of one host as its agent ships it (a WindowBatch), drawn from the template."""
    from hwprof.fleet.window import WindowBatch

    counts = rng.poisson(template.mean)
    keep = np.nonzero(counts)[0]
    batch = WindowBatch(
        window_id=int(window_ids(np.array([host]), np.array([index]))[0]), host=f"host{host:03d}",
        start_ns=(day_start + WINDOW_S * index) * 10**9, duration_ns=WINDOW_S * 10**9, target="system-wide",
        event=template.event, labels={"service": f"svc{host % SERVICES}"}, lost=0, filtered=0,
        counter_names=[], rows={name: [batch_rows[name][i] for i in keep] for name in batch_rows})
    batch.rows["pid"] = [(int(template.pid[i]) + PID_STRIDE * host) % 4_194_304 for i in keep]
    batch.rows["samples"] = [int(counts[i]) for i in keep]
    batch.rows["period"] = [float(counts[i]) * 1e9 / SAMPLE_HZ for i in keep]
    return batch


def client_path(server, store, template: Template, batch_rows: dict, args, day_start: int) -> int:
    """HOSTS x CLIENT_WINDOWS windows through insert_window, as agents send them. Returns the rows sent."""
    rng = np.random.default_rng(1)
    sent_rows = sent_samples = 0
    server_cpu0 = process_cpu_s(server.process.pid)
    started = time.perf_counter()
    for w in range(args.client_windows):
        for h in range(args.hosts):
            batch = agent_window(template, batch_rows, rng, h, w, day_start)
            store.insert_window(batch, first_attempt=True)  # what an agent does with a fresh window
            sent_rows += batch.n_rows
            sent_samples += batch.samples
    elapsed = time.perf_counter() - started
    server_cpu = process_cpu_s(server.process.pid) - server_cpu0
    n_windows = args.client_windows * args.hosts
    parts = store.execute("SELECT table, count() FROM system.parts WHERE database = %(db)s AND active "
                          "GROUP BY table ORDER BY table", {"db": store.db})
    print(f"agent send path (insert_window, one connection): {n_windows} windows, {sent_rows:,} rows, "
          f"{sent_samples:,} samples in {elapsed:.1f} s = {n_windows / elapsed:.0f} windows/s, "
          f"{sent_rows / elapsed:,.0f} rows/s, {sent_samples / elapsed:,.0f} samples/s; active parts after: "
          f"{', '.join(f'{t} {n}' for t, n in parts)}; server CPU {server_cpu:.2f} s = "
          f"{1000 * server_cpu / n_windows:.1f} ms per window, {n_windows / server_cpu:.0f} windows per server "
          f"CPU-second ({load()})", flush=True)
    return sent_rows


BATCH_WINDOWS = 600            # windows sent per batch size measured


def batching(server, template: Template, batch_rows: dict, sizes: list[int], day_start: int) -> None:
    """What sending B windows per insert (`hwprof agent --send-interval B x 10 s`) costs, per window, for each B:
    BATCH_WINDOWS fresh windows through ClickHouseStore.insert_windows (100 hosts x 6 windows; 20 x 30 for B = 30),
    each host's windows B at a time, into a database of its own.
    - the agent's CPU: this process's CPU time inside insert_windows (building the columns, the driver's encoding
      and round trips), the windows having been drawn before;
    - the server's CPU: /proc/PID/stat over the sends and the background merges they cause (until system.merges
      is empty for that database), less what the idle server used over the same time (measured just before)."""
    from hwprof.fleet.clickhouse import ClickHouseStore, Selector

    for size in sizes:
        per_host = max(size, 6)
        hosts = BATCH_WINDOWS // per_host
        rng = np.random.default_rng(size)
        windows = [[agent_window(template, batch_rows, rng, h, w, day_start) for w in range(per_host)]
                   for h in range(hosts)]
        store = ClickHouseStore.open(server.url(f"batch{size}"), timeout_s=600)
        idle0, t_idle = process_cpu_s(server.process.pid), time.perf_counter()
        time.sleep(5)
        idle_rate = (process_cpu_s(server.process.pid) - idle0) / (time.perf_counter() - t_idle)
        server0, started = process_cpu_s(server.process.pid), time.perf_counter()
        agent_cpu = 0.0
        for first in range(0, per_host, size):
            for h in range(hosts):
                t0 = time.thread_time()
                store.insert_windows(windows[h][first:first + size], first_attempt=True)
                agent_cpu += time.thread_time() - t0
        send_wall = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and store.execute(
                "SELECT count() FROM system.merges WHERE database = %(db)s", {"db": store.db})[0][0]:
            time.sleep(0.5)
        wall = time.perf_counter() - started
        server_cpu = process_cpu_s(server.process.pid) - server0 - idle_rate * wall
        n = hosts * per_host
        samples = sum(w.samples for host in windows for w in host)
        assert store.total_samples(Selector()) == samples
        parts = store.execute("SELECT table, count() FROM system.parts WHERE database = %(db)s AND active AND "
                              "table IN ('samples', 'windows') GROUP BY table ORDER BY table", {"db": store.db})
        print(f"batch of {size:>2} windows per insert ({hosts} hosts x {per_host} windows, "
              f"{sum(w.n_rows for host in windows for w in host) / n:.0f} rows per window): sent in "
              f"{send_wall:.1f} s, merges settled {wall - send_wall:.1f} s later; server CPU "
              f"{1000 * server_cpu / n:.1f} ms per window (idle {1000 * idle_rate:.0f} ms/s subtracted) = "
              f"{n / max(server_cpu, 1e-9) * 10:,.0f} hosts per server core at one window per 10 s; agent CPU "
              f"{1000 * agent_cpu / n:.1f} ms per window; active parts {', '.join(f'{t} {c}' for t, c in parts)} "
              f"({load()})", flush=True)
        store.execute("DROP DATABASE {db}")
        store.close()


def bulk_ingest(server, store, template: Template, args, day_start: int) -> None:
    """The rest of the day through the HTTP interface in FORMAT Native, SENDERS connections in parallel."""
    from hwprof.fleet.clickhouse import Selector

    rng = np.random.default_rng(2)
    gen_started = time.process_time()
    pool = [draw_host_hour(template, rng) for _ in range(args.pool)]
    first_hour = [draw_host_hour(template, rng, args.client_windows) for _ in range(min(args.pool, 8))]
    pool_cpu = time.process_time() - gen_started
    sender = NativeSender(server.http_port, store.db, server.user, server.password)
    sample_columns = ["window_start", "window_id", "host", "pid", "label_values"] + [c[0] for c in pool[0].fixed]
    window_columns = ["window_id", "window_start", "start_ns", "duration_ns", "host", "target", "event",
                      "label_keys", "label_values", "samples", "lost", "filtered", "hwprof", "agent_cpu_ns",
                      "agent_rss_bytes"]
    jobs: queue.Queue = queue.Queue(maxsize=2 * args.senders)
    errors: list[BaseException] = []
    stats = {"gen_cpu": pool_cpu, "rows": 0, "bytes": 0, "samples": 0}

    def produce() -> None:
        try:
            for hour in range(args.hours):
                window_samples = np.zeros((args.hosts, WINDOWS_PER_HOUR))
                for lo in range(0, args.hosts, HOSTS_PER_INSERT):
                    t0 = time.thread_time()
                    blocks, rows, samples = [], 0, 0
                    for host in range(lo, min(lo + HOSTS_PER_INSERT, args.hosts)):
                        choices = first_hour if hour == 0 else pool
                        hh = choices[int(rng.integers(len(choices)))]
                        blocks.append(samples_block(template, hh, host, hour, day_start))
                        window_samples[host] = np.bincount(hh.window, weights=hh.samples.astype(np.float64),
                                                           minlength=WINDOWS_PER_HOUR)
                        rows += len(hh.row)
                        samples += int(hh.samples.sum())
                    body = b"".join(blocks)
                    stats["gen_cpu"] += time.thread_time() - t0
                    stats["rows"] += rows
                    stats["samples"] += samples
                    stats["bytes"] += len(body)
                    jobs.put(("samples", sample_columns, body))
                t0 = time.thread_time()
                grid_w, grid_h = np.meshgrid(np.arange(WINDOWS_PER_HOUR) + hour * WINDOWS_PER_HOUR,
                                             np.arange(args.hosts), indexing="ij")
                keep = grid_w.reshape(-1) >= args.client_windows
                body = windows_block(grid_h.reshape(-1)[keep], grid_w.reshape(-1)[keep],
                                     window_samples.T.reshape(-1)[keep], day_start, template.event)
                stats["gen_cpu"] += time.thread_time() - t0
                jobs.put(("windows", window_columns, body))
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)
        finally:
            for _ in range(args.senders):
                jobs.put(None)

    insert_wall = [0.0] * args.senders

    def send(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=3600)
        try:
            while (job := jobs.get()) is not None:
                if errors:
                    continue
                t0 = time.perf_counter()
                sender.insert(conn, *job)
                insert_wall[i] += time.perf_counter() - t0
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    server_cpu0 = process_cpu_s(server.process.pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=produce)] + [threading.Thread(target=send, args=(i,))
                                                   for i in range(args.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    server_cpu = process_cpu_s(server.process.pid) - server_cpu0
    if errors:
        raise errors[0]
    rows = stats["rows"]
    print(f"bulk ingest (HTTP, FORMAT Native, {args.senders} connections, {HOSTS_PER_INSERT} host-hours per insert): "
          f"{rows:,} rows, {stats['samples']:,} samples, {stats['bytes'] / 1e9:.2f} GB sent in {wall:.1f} s wall "
          f"= {rows / wall:,.0f} rows/s, {stats['samples'] / wall:,.0f} samples/s; server CPU {server_cpu:.1f} s "
          f"= {rows / server_cpu:,.0f} rows per server CPU-second; generation (pool of {args.pool} host-hours + "
          f"per-insert host/time columns) {stats['gen_cpu']:.1f} CPU s ({load()})", flush=True)
    total = store.total_samples(Selector())
    print(f"stored samples (sum over the store) {total:,}", flush=True)


def disk_report(store) -> None:
    from hwprof.fleet.clickhouse import Selector

    usage = store.disk_usage()
    total_samples = store.total_samples(Selector())
    disk = sum(t["bytes"] for t in usage.values())
    for table, u in sorted(usage.items()):
        print(f"  {table:<12} {u['rows']:>13,} rows {u['bytes'] / 1e6:>10.1f} MB in {u.get('parts', 0)} parts")
    raw = usage["samples"]
    print(f"on disk: {total_samples:,} samples in {raw['rows']:,} sample rows; all tables {disk / 1e6:.1f} MB = "
          f"{disk / total_samples:.2f} bytes per sample; `samples` alone {raw['bytes'] / total_samples:.2f} "
          f"bytes per sample ({raw['bytes'] / raw['rows']:.1f} per row) ({load()})", flush=True)


def timed(fn, repeat: int = 3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def queries(store, args, day_start: int) -> None:
    """Each query path for one service over the last hour and the whole day: through the rollup (what hwprof
    does), best of 3; the merged flame graphs also from `samples` alone (schema 2's plan), once."""
    from hwprof.fleet.clickhouse import Selector

    end = day_start + args.hours * 3600
    spans = [("1 h", end - 3600)] + ([(f"{args.hours} h", day_start)] if args.hours > 1 else [])
    service = {"service": ("svc3",)}
    for label, start in spans:
        selector = Selector(start_s=start, end_s=end, labels=service)
        half = Selector(start_s=start, end_s=start + (end - start) // 2, labels=service)
        web_s, web = timed(lambda sel=selector: store.merged_profile(sel, max_bins=100))
        page_s, page = timed(lambda sel=selector: web_page(store, sel))
        report_s, report = timed(lambda sel=selector: store.merged_profile(sel, max_bins=1))
        top_s, top = timed(lambda sel=selector: store.top_functions(sel, 50))
        diff_s, _ = timed(lambda sel=selector, b=half: (store.merged_profile(b, max_bins=100),
                                                        store.merged_profile(sel, max_bins=100)))
        series_s, series = timed(lambda sel=selector: store.series(sel))
        values_s, values = timed(lambda sel=selector: store.label_values("service", Selector(sel.start_s, sel.end_s)))
        comm = Selector(start_s=start, end_s=end, labels={**service, "comm": (_busiest_comm(report),)})
        comm_s, by_comm = timed(lambda sel=comm: store.merged_profile(sel, max_bins=1))
        busiest_pid = str(_busiest_pid(store, selector))
        pid = Selector(start_s=start, end_s=end, labels={"host": ("host003",), "pid": (busiest_pid,)})
        pid_s, by_pid = timed(lambda sel=pid: store.merged_profile(sel, max_bins=1, per_process=True))
        # `hwprof report --store URL --pid N --time=...`: one pid on every host (pids are per host: here it is one
        # process), and the web view's page of that pid (its time strip: 100 bins).
        any_host = Selector(start_s=start, end_s=end, labels={"pid": (busiest_pid,)})
        pid_report_s, pid_report = timed(lambda sel=any_host: store.merged_profile(sel, max_bins=1, per_process=True))
        pid_web_s, _ = timed(lambda sel=any_host: store.merged_profile(sel, max_bins=100))
        # `hwprof report --store URL --sort pid` of the service: every process of its hosts.
        per_process_s, per_process = timed(lambda sel=selector: store.merged_profile(sel, max_bins=1,
                                                                                      per_process=True))
        store.use_rollup = False
        raw_web_s, raw_web = timed(lambda sel=selector: store.merged_profile(sel, max_bins=100), repeat=1)
        raw_report_s, raw_report = timed(lambda sel=selector: store.merged_profile(sel, max_bins=1), repeat=1)
        raw_top_s, _ = timed(lambda sel=selector: store.top_functions(sel, 50), repeat=1)
        store.use_rollup = True
        assert raw_report.total_samples == report.total_samples, (raw_report.total_samples, report.total_samples)
        print(f"one service ({args.hosts // SERVICES} hosts), {label}: {report.total_samples:,} samples "
              f"({load()})\n"
              f"  merged flame graph, web view (100 time bins): {web_s:6.2f} s ({web.n_samples:,} rows received, "
              f"{len(np.unique(web.sample_time))} bins); from samples alone {raw_web_s:.2f} s "
              f"({raw_web.n_samples:,} rows)\n"
              f"  the web page's payload (merge, payload, gzip): {page_s:6.2f} s ({len(page) / 1e6:.1f} MB gzipped)\n"
              f"  merged flame graph, report (no time bins):    {report_s:6.2f} s ({report.n_samples:,} rows); "
              f"from samples alone {raw_report_s:.2f} s\n"
              f"  top functions in ClickHouse:                  {top_s:6.2f} s ({top[0]['function']} "
              f"{top[0]['total_pct']:.1f}%); from samples alone {raw_top_s:.2f} s\n"
              f"  diff (web: two merges, first half and all):   {diff_s:6.2f} s\n"
              f"  counters over time:                           {series_s:6.2f} s ({len(series['bins'])} bins)\n"
              f"  label values (service, all hosts):            {values_s:6.2f} s ({len(values)} values)\n"
              f"  + comm filter ({comm.labels['comm'][0]}):{' ' * max(1, 29 - len(comm.labels['comm'][0]))}"
              f"{comm_s:6.2f} s ({by_comm.total_samples:,} samples)\n"
              f"  one host, one pid, per process:               {pid_s:6.2f} s ({by_pid.total_samples:,} samples)\n"
              f"  one pid, every host (report --pid):           {pid_report_s:6.2f} s "
              f"({pid_report.total_samples:,} samples); its web page (100 time bins) {pid_web_s:.2f} s\n"
              f"  the service per process (report --sort pid):  {per_process_s:6.2f} s "
              f"({per_process.n_samples:,} rows, {len(per_process.threads):,} processes)",
              flush=True)
    summary_s, summary = timed(store.summary)
    keys_s, keys = timed(store.label_keys)
    ls_s, listing = timed(lambda: store.windows(Selector(end - 3600, end), limit=1000))
    print(f"page load: summary {summary_s:.2f} s ({summary['windows']:,} windows, {summary['samples']:,} samples), "
          f"label keys {keys_s:.2f} s, "
          f"`hwprof ls` of the last hour {ls_s:.2f} s ({len(listing)} windows) ({load()})", flush=True)


def web_page(store, selector) -> bytes:
    """What `hwprof serve --store` does for /api/profile/fleet-...: merge, build the page's payload, gzip it."""
    from hwprof.web.fleet import FleetSource

    source = FleetSource(store.url.display())
    source._store = store
    view = source.create_view(selector, "bench", None)
    return source.payload_gzip(source.entry(view.id))


def _busiest_comm(profile) -> str:
    comms = {}
    for pid, comm in profile.threads.items():
        comms[comm] = comms.get(comm, 0) + int(profile.sample_count[profile.sample_pid == pid].sum())
    return max(comms, key=comms.get)


def _busiest_pid(store, selector) -> int:
    rows = store.execute("SELECT pid, sum(samples) AS n FROM {db}.samples WHERE host = 'host003' AND "
                         "window_start >= toDateTime(%(t)s) GROUP BY pid ORDER BY n DESC LIMIT 1",
                         {"t": int(selector.start_s)})
    return int(rows[0][0])


def retention(store, day_start: int) -> None:
    usage = store.disk_usage()
    t0 = time.perf_counter()
    dropped = store.enforce_retention(1, now=day_start + 2 * 86400 + 1)
    elapsed = time.perf_counter() - t0
    left = store.disk_usage()
    print(f"retention (1 day, two days later): dropped {', '.join(dropped)} in {elapsed:.2f} s; "
          f"rows left {sum(t['rows'] for t in left.values() if t['rows']):,} of "
          f"{sum(t['rows'] for t in usage.values()):,} ({load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--client-windows", type=int, default=3, help="windows per host sent through the client")
    parser.add_argument("--pool", type=int, default=24, help="distinct host-hours drawn and reused")
    parser.add_argument("--senders", type=int, default=2, help="parallel insert connections")
    parser.add_argument("--data", metavar="DIR", help="the server's data directory, kept afterwards; when it "
                        "already holds a store, its data is queried again (no new capture or ingest)")
    parser.add_argument("--batching", metavar="B[,B...]", help="only measure sending B windows per insert "
                        "(the agent's --send-interval), e.g. 1,3,6,30: CPU per window of the server and the agent")
    parser.add_argument("--retention", action="store_true", help="with --data of a stored store: drop its day "
                        "(retention) instead of querying it")
    args = parser.parse_args()
    from hwprof.fleet.clickhouse import ClickHouseStore
    from hwprof.fleet.localserver import LocalClickHouse
    from hwprof.fleet.window import window_from_profile

    tmp = Path(tempfile.mkdtemp(prefix="hwprof-ingest-bench-"))
    server = LocalClickHouse(Path(args.data) if args.data else tmp / "clickhouse", max_memory=8_000_000_000).start()
    try:
        store = ClickHouseStore.open(server.url("bench"), timeout_s=3600, migrate=False)
        found = store.schema_version()
        cpu0, t0 = process_cpu_s(server.process.pid), time.perf_counter()
        applied = store.migrate()
        migrated = (f"; migrated from version {found} ({', '.join(map(str, applied))} applied) in "
                    f"{time.perf_counter() - t0:.1f} s, server CPU {process_cpu_s(server.process.pid) - cpu0:.1f} s"
                    if applied and found else "")
        print(f"machine: {os.cpu_count()} CPUs, {load()}; ClickHouse {'.'.join(map(str, store.server_version))}; "
              f"store schema version {store.schema_version()}{migrated}", flush=True)
        stored = store.execute("SELECT min(toUInt32(window_start)), max(toUInt32(window_start)), "
                               "uniqExact(host) FROM {db}.windows")[0]
        if stored[2]:
            day_start = int(stored[0]) // 86400 * 86400
            args.hosts, args.hours = int(stored[2]), -(-(int(stored[1]) + WINDOW_S - day_start) // 3600)
            print(f"querying the stored store again: {args.hosts} hosts x {args.hours} h", flush=True)
            disk_report(store)
            if args.retention:
                retention(store, day_start)
            else:
                queries(store, args, day_start)
            return
        profile = real_capture(tmp)
        batch = window_from_profile(profile, host="template", start_ns=0, duration_ns=0, labels={},
                                    labeler=process_labels)
        template = make_template(batch)
        print(f"template: {profile.n_samples:,} samples of a real capture -> {batch.n_rows} (process, stack) rows, "
              f"{len(batch.stacks)} stacks, {len(batch.frames)} frames, {len(batch.functions)} functions, "
              f"{len(template.comms)} programs; expected rows per window "
              f"{float((1 - np.exp(-template.mean)).sum()):.0f}", flush=True)
        store._insert_ids("functions", "(function_id, name, module, kind)", batch.functions)
        store._insert_ids("frames", "(frame_id, function_id, file, line, inlined)", batch.frames)
        store._insert_ids("stacks", "(stack_id, frame_ids)", batch.stacks)
        day_start = int(time.time()) // 86400 * 86400 - 86400  # yesterday 00:00 UTC: one whole day partition
        if args.batching:
            batching(server, template, batch.rows, [int(b) for b in args.batching.split(",")], day_start)
            return
        client_path(server, store, template, batch.rows, args, day_start)
        bulk_ingest(server, store, template, args, day_start)
        disk_report(store)
        queries(store, args, day_start)
        time.sleep(30)
        print("after 30 s of background merges:")
        disk_report(store)
        if args.retention or not args.data:
            retention(store, day_start)
        print(f"end: {load()}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
