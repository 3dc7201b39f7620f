"""Fleet store ingest and query speed: many hosts' windows made from a real capture's stack distribution.

1. A real capture: `hwprof record -a -g -F 99` of this machine running the demo workload, decoded and symbolized,
   becomes the template: its (process, stack) rows and their share of the samples (functions, frames and stacks are
   stored for real).
2. Ingest through the agent's own path (ClickHouseStore.insert_window, one client, idempotency checks included):
   HOSTS x CLIENT_WINDOWS windows of 10 s at 19 Hz x 2 CPUs (380 samples each, drawn from the template's
   distribution). Reported: windows/s, rows/s, samples/s.
3. The day: the rest of HOSTS x 24 h (8640 windows per host) is generated inside ClickHouse by INSERT ... SELECT
   from the template (same row-presence and sample-count model as step 2, so the data has the same shape), an
   hour at a time. Each host belongs to one of 10 services (label service=svcN).
4. Reported: rows and bytes on disk per table, bytes per sample, and the time of a merged flame-graph query
   (ClickHouseStore.merged_profile: aggregate in ClickHouse, build the Profile in Python) and of the in-server top
   functions for one service over 1 h and over 24 h.

    .venv/bin/python benchmarks/fleet_ingest.py [--hosts 100] [--hours 24] [--client-windows 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SAMPLES_PER_WINDOW = 19 * 2 * 10   # 19 Hz, 2 CPUs, 10 s
SERVICES = 10


def real_capture(tmp: Path):
    from hwprof.symbolize import Symbolizer

    from hwprof.pipeline import decode_file

    workload = tmp / "demo-workload"
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", str(workload),
                    str(ROOT / "demo" / "workload.c")], check=True)
    demo = subprocess.Popen([str(workload), "30"], stdout=subprocess.DEVNULL)
    try:
        subprocess.run([sys.executable, "-m", "hwprof", "record", "-a", "-g", "-F", "99", "-d", "20", "-q", "-o",
                        str(tmp / "real.perf.data")], check=True)
    finally:
        demo.kill()
        demo.wait()
    return decode_file(tmp / "real.perf.data", Symbolizer())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--client-windows", type=int, default=12, help="windows per host sent through the client")
    args = parser.parse_args()
    from hwprof.fleet.clickhouse import ClickHouseStore, Selector
    from hwprof.fleet.localserver import LocalClickHouse
    from hwprof.fleet.window import ProcessLabels, WindowBatch, stable_id, window_from_profile

    tmp = Path(tempfile.mkdtemp(prefix="hwprof-ingest-bench-"))
    server = LocalClickHouse(tmp / "clickhouse", max_memory=8_000_000_000).start()
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; ClickHouse "
              f"{'.'.join(map(str, ClickHouseStore.open(server.url('bench')).server_version))}", flush=True)
        profile = real_capture(tmp)
        template = window_from_profile(profile, host="template", start_ns=0, duration_ns=0, labels={},
                                       labeler=lambda pid, comm: ProcessLabels(executable=f"/usr/bin/{comm}"))
        rows = template.rows
        share = np.asarray(rows["samples"], dtype=np.float64)
        share /= share.sum()
        mean = SAMPLES_PER_WINDOW * share     # expected samples of each template row in one window
        n_template = template.n_rows
        print(f"template: {profile.n_samples:,} samples of a real capture -> {n_template} (process, stack) rows, "
              f"{len(template.stacks)} stacks, {len(template.frames)} frames, {len(template.functions)} functions; "
              f"expected rows per window {np.minimum(mean, 1).sum() + 0:.0f}", flush=True)
        store = ClickHouseStore.open(server.url("bench"), timeout_s=3600)
        store._insert_ids("functions", "(function_id, name, module, kind)", template.functions)
        store._insert_ids("frames", "(frame_id, function_id, file, line, inlined)", template.frames)
        store._insert_ids("stacks", "(stack_id, frame_ids)", template.stacks)

        # --- 2. through the client, as agents send -----------------------------------------------------------
        rng = np.random.default_rng(1)
        day_start = int(time.time()) // 86400 * 86400 - 86400  # yesterday 00:00 UTC: one whole day partition
        sent_rows = sent_samples = 0
        started = time.perf_counter()
        for w in range(args.client_windows):
            for h in range(args.hosts):
                counts = rng.poisson(mean)
                keep = np.nonzero(counts)[0]
                batch = WindowBatch(
                    window_id=stable_id("bench", h, w), host=f"host{h:03d}", start_ns=(day_start + 10 * w) * 10**9,
                    duration_ns=10**10, target="system-wide", event=template.event,
                    labels={"service": f"svc{h % SERVICES}"}, lost=0, filtered=0,
                    counter_names=template.counter_names,
                    rows={name: [rows[name][i] for i in keep] for name in rows})
                batch.rows["samples"] = [int(counts[i]) for i in keep]
                batch.rows["period"] = [float(counts[i]) * 1e9 / 19 for i in keep]
                store.insert_window(batch, first_attempt=True)  # what an agent does with a fresh window
                sent_rows += len(keep)
                sent_samples += int(counts.sum())
        elapsed = time.perf_counter() - started
        n_windows = args.client_windows * args.hosts
        print(f"client ingest (insert_window, one connection): {n_windows} windows, {sent_rows:,} rows, "
              f"{sent_samples:,} samples in {elapsed:.1f} s = {n_windows / elapsed:.0f} windows/s, "
              f"{sent_rows / elapsed:,.0f} rows/s, {sent_samples / elapsed:,.0f} samples/s", flush=True)

        # --- 3. the rest of the day, generated in the server -------------------------------------------------
        # Frequent rows (expected >= RARE samples per window) are each present with probability min(1, mean);
        # the many rare rows (mostly stacks seen once in the capture) are drawn uniformly, as many per window as
        # their expected total. Both as the client path's Poisson draw has them, approximately.
        rare_cut = 0.2
        frequent = [i for i in range(n_template) if mean[i] >= rare_cut]
        rare = [i for i in range(n_template) if mean[i] < rare_cut]
        rare_per_window = int(round(float(mean[rare].sum()))) if rare else 0
        columns = "(r UInt32, pid UInt32, comm String, executable String, build_id String, cgroup String, " \
                  "stack_id UInt64, stack_end UInt8, mean Float64)"
        for table, members in (("frequent", frequent), ("rare", rare)):
            store.execute(f"CREATE TABLE {{db}}.{table} {columns} ENGINE = Memory")
            store.execute(f"INSERT INTO {{db}}.{table} VALUES",
                          [(j, rows["pid"][i], rows["comm"][i], rows["executable"][i], rows["build_id"][i],
                            rows["cgroup"][i], rows["stack_id"][i], rows["stack_end"][i], float(mean[i]))
                           for j, i in enumerate(members)])
        print(f"generation model: {len(frequent)} frequent rows (present with p = min(1, mean)), "
              f"{rare_per_window} of {len(rare)} rare rows drawn per window", flush=True)
        windows_per_hour = 360
        first_w = args.client_windows
        started = time.perf_counter()
        select = """SELECT toDateTime({day} + 10 * w), cityHash64('bench', h, w),
                    concat('host', substring(toString(1000 + h), 2)), pid, comm, executable, build_id, cgroup,
                    ['service'], [concat('svc', toString(h % {services}))], '{event}', stack_id, stack_end, n,
                    n * 1e9 / 19, [], []"""
        insert = """INSERT INTO {db}.samples (window_start, window_id, host, pid, comm, executable, build_id, cgroup,
                    label_keys, label_values, event, stack_id, stack_end, samples, period, counter_names,
                    counter_values) """
        for hour in range(args.hours):
            lo = max(hour * windows_per_hour, first_w)
            hi = (hour + 1) * windows_per_hour
            if lo >= hi:
                continue
            fill = {"day": day_start, "services": SERVICES, "event": template.event}
            grid = f"SELECT intDiv(number, {args.hosts}) + {lo} AS w, number % {args.hosts} AS h " \
                   f"FROM numbers({(hi - lo) * args.hosts})"
            store.execute(insert + select.format(**fill) + f"""
                FROM ({grid}) CROSS JOIN {{db}}.frequent
                WHERE (cityHash64(h, w, r) % 1000000) < least(mean, 1) * 1000000
                  AND (toUInt64(greatest(1, round(mean * (0.5 + (cityHash64(r, w, h) % 1000) / 1000)))) AS n) > 0""")
            if rare_per_window:
                store.execute(insert + select.format(**fill) + f"""
                    FROM (SELECT w, h, toUInt32(cityHash64(w, h, k) % {len(rare)}) AS r, toUInt64(1) AS n
                          FROM ({grid}) ARRAY JOIN range({rare_per_window}) AS k)
                    ANY INNER JOIN {{db}}.rare USING r""")
            store.execute(f"""
                INSERT INTO {{db}}.windows (window_id, window_start, start_ns, duration_ns, host, target, event,
                    label_keys, label_values, samples, lost, filtered, hwprof, agent_cpu_ns, agent_rss_bytes)
                SELECT cityHash64('bench', h, w), toDateTime({day_start} + 10 * w),
                       ({day_start} + 10 * w) * 1000000000, 10000000000,
                       concat('host', substring(toString(1000 + h), 2)),
                       'system-wide', '{template.event}', ['service'], [concat('svc', toString(h % {SERVICES}))],
                       {SAMPLES_PER_WINDOW}, 0, 0, 'bench', 0, 0
                FROM (SELECT intDiv(number, {args.hosts}) + {lo} AS w, number % {args.hosts} AS h
                      FROM numbers({(hi - lo) * args.hosts}))
            """)
        elapsed = time.perf_counter() - started
        usage = store.disk_usage()
        total_rows = usage["samples"]["rows"]
        total_samples = store.total_samples(Selector())
        print(f"server-side generation of {args.hosts} hosts x {args.hours} h: {elapsed:.1f} s "
              f"({(total_rows - sent_rows) / elapsed:,.0f} rows/s inside ClickHouse)", flush=True)
        time.sleep(5)
        usage = store.disk_usage()
        disk = sum(t["bytes"] for t in usage.values())
        for table, u in sorted(usage.items()):
            print(f"  {table:<10} {u['rows']:>13,} rows {u['bytes'] / 1e6:>10.1f} MB")
        print(f"stored: {total_samples:,} samples in {usage['samples']['rows']:,} sample rows, "
              f"{disk / 1e6:.1f} MB on disk = {disk / total_samples:.2f} bytes per sample "
              f"({usage['samples']['bytes'] / usage['samples']['rows']:.1f} bytes per sample row)", flush=True)

        # --- 4. queries -------------------------------------------------------------------------------------
        end = day_start + 10 * args.hours * windows_per_hour
        spans = [("1 h", end - 3600)] + ([(f"{args.hours} h", day_start)] if args.hours > 1 else [])
        for label, start in spans:
            selector = Selector(start_s=start, end_s=end, labels={"service": ("svc3",)})
            times, flame_only = [], []
            for _ in range(3):
                t0 = time.perf_counter()
                merged = store.merged_profile(selector, max_bins=100)   # what the web view asks for
                times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                store.merged_profile(selector, max_bins=1)              # what `hwprof report --store` asks for
                flame_only.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            top = store.top_functions(selector, 50)
            top_s = time.perf_counter() - t0
            print(f"one service ({args.hosts // SERVICES} hosts), {label}: merged flame graph with 100 time bins "
                  f"{min(times):.2f} s (best of 3; {merged.total_samples:,} samples -> {merged.n_samples:,} "
                  f"aggregated rows, {len(merged.stack_frame):,} stack nodes), without time bins "
                  f"{min(flame_only):.2f} s, top functions in ClickHouse {top_s:.2f} s "
                  f"({top[0]['function']} {top[0]['total_pct']:.1f}%)", flush=True)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
