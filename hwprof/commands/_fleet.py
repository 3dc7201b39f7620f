"""The `--store clickhouse://...` side of report, ls and record: small hooks so those commands stay as they are."""

from __future__ import annotations

import argparse
import sys

STORE_HELP = "a fleet store, clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB (clickhouses:// for TLS)"


def add_store_options(parser: argparse.ArgumentParser, *, labels: bool = True) -> None:
    parser.add_argument("--store", metavar="URL", help=STORE_HELP)
    if labels:
        parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                            help="with --store: only samples with this label (host, executable, build_id, cgroup, "
                                 "or an agent --label; repeatable)")


def wants_fleet(args: argparse.Namespace) -> bool:
    from hwprof.errors import HwprofError
    from hwprof.fleet.url import is_store_url

    store = getattr(args, "store", None)
    if not store:
        if getattr(args, "label", None):
            raise HwprofError("--label selects samples of a fleet store: give --store clickhouse://...", exit_code=2)
        return False
    if not is_store_url(store):
        raise HwprofError(f"--store expects clickhouse://HOST[:PORT]/DB or clickhouses://..., got {store!r}",
                          exit_code=2)
    return True


def fleet_profile(args: argparse.Namespace, pids: tuple[int, ...], comms: tuple[str, ...]):
    """The merged profile of every stored window that matches the report's filters; filters run in ClickHouse."""
    from hwprof.errors import HwprofError
    from hwprof.fleet.clickhouse import ClickHouseStore, parse_label_args, selector_from_args

    if getattr(args, "tid", None):
        raise HwprofError("--tid is not kept in the fleet store (rows are per process): use --pid", exit_code=2)
    with ClickHouseStore.open(args.store) as store:
        selector = selector_from_args(store, comms=comms, pids=pids, labels=parse_label_args(args.label),
                                      time_range=args.time)
        per_process = any(k in ("pid",) for k in (args.sort or "").split(",")) or bool(pids)
        profile = store.merged_profile(selector, per_process=per_process, event=args.event, max_bins=1)
        if not profile.total_samples:
            print(f"hwprof report: no stored samples match in {store.url.display()}", file=sys.stderr)
        return profile, store.url.display()


def list_fleet(args: argparse.Namespace) -> int:
    import json
    import time

    from hwprof.fleet.clickhouse import ClickHouseStore, parse_label_args, selector_from_args

    with ClickHouseStore.open(args.store) as store:
        selector = selector_from_args(store, labels=parse_label_args(args.label), time_range=args.time)
        windows = store.windows(selector, limit=args.limit or 1000)
        if args.json:
            print(json.dumps(windows, indent=1))
            return 0
        summary = store.summary()
        print(f"{store.url.display()}: {summary['windows']:,} windows, {summary['samples']:,} samples, "
              f"{summary['hosts']} host(s)")
        if not windows:
            return 0
        print(f"{'WINDOW':<16} {'START (UTC)':<19} {'SECONDS':>7} {'HOST':<16} {'SAMPLES':>8} {'LOST':>5} "
              f"{'AGENT CPU':>9} {'RSS':>6}  EVENT  LABELS")
        for w in windows:
            start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(w["start_ns"] / 1e9))
            cpu = f"{100 * w['agent_cpu_ns'] / w['duration_ns']:.1f}%" if w["duration_ns"] else "-"
            rss = f"{w['agent_rss_bytes'] / 2**20:.0f}MB" if w["agent_rss_bytes"] else "-"
            labels = ",".join(f"{k}={v}" for k, v in sorted(w["labels"].items()))
            print(f"{w['window_id']:<16} {start:<19} {w['duration_ns'] / 1e9:>7.2f} {w['host'][:16]:<16} "
                  f"{w['samples']:>8,} {w['lost']:>5,} {cpu:>9} {rss:>6}  {w['event']}  {labels}")
    return 0


def record_to_fleet(args: argparse.Namespace, path: str, result) -> str:
    """Decode a finished `hwprof record` capture and store it as one window; returns the window id."""
    import socket

    from hwprof import __version__
    from hwprof.collectors.agent import ProcLabeler
    from hwprof.fleet.clickhouse import ClickHouseStore
    from hwprof.fleet.window import window_from_profile
    from hwprof.pipeline import decode_file
    from hwprof.symbolize import Symbolizer

    profile = decode_file(path, Symbolizer())
    labels = dict(kv.split("=", 1) for kv in getattr(args, "label", []) or [] if "=" in kv)
    batch = window_from_profile(profile, host=socket.gethostname(), start_ns=result.start_time_ns,
                                duration_ns=result.duration_ns, labels=labels, labeler=ProcLabeler(),
                                hwprof_version=__version__)
    batch.target = result.target
    with ClickHouseStore.open(args.store) as store:
        store.insert_window(batch)
    return f"{batch.window_id:016x}"
