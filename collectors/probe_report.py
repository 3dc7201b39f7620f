"""What `hwprof probe` prints: tables like bcc's funccount/funclatency, folded stacks, per-hit lines, or JSON.

The JSON shape (one object) is the contract for scripts and tests:
  {"mode", "target", "duration_ns", "lost", "exit_status",
   "probes": [{"probe", "spec", "kind", "mechanism", "hits",
               "processes": [{"pid", "comm", "hits"}], "threads": [{"pid", "tid", "comm", "hits"}]}],
   "latency": [{"probe", "calls", "unmatched_returns", "unfinished", "min_ns", "mean_ns", "p50_ns", "p90_ns",
                "p99_ns", "max_ns", "unit", "histogram": [{"low", "high", "count"}]}],      (latency mode)
   "stacks": {"folded": [...], "profile_id"},                                                  (stacks mode)
   "hits": [{"time_ns", "pid", "tid", "comm", "cpu", "probe", "args"}]}                          (args mode)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

import numpy as np
from hwprof.collectors.latency import format_duration, pair_calls, render_histogram, summarize
from hwprof.collectors.probes import Mode, SessionResult, iter_latency_groups

from hwprof.terminal import printable


def _probe_json(result: SessionResult) -> list[dict]:
    out = []
    for counts in result.probes:
        threads = sorted(counts.per_thread.items(), key=lambda kv: (-kv[1], kv[0]))
        processes = sorted(counts.per_process.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append({
            "probe": counts.probe.label,
            "spec": counts.probe.spec.text,
            "kind": counts.probe.kind.value,
            "mechanism": counts.mechanism,
            "hits": counts.total,
            "processes": [{"pid": pid, "comm": result.comm(pid), "hits": n} for pid, n in processes],
            "threads": [{"pid": pid, "tid": tid, "comm": result.comm(tid, pid), "hits": n}
                        for (pid, tid), n in threads],
        })
    return out


def latency_summaries(result: SessionResult, unit: str) -> list[dict]:
    out = []
    for entry, ret in iter_latency_groups(result):
        mask = (result.probe_index == entry) | (result.probe_index == ret)
        pairing = pair_calls(result.tids[mask], result.times[mask], result.probe_index[mask] == ret)
        summary = summarize(pairing.durations, unit)
        out.append({
            "probe": result.probes[entry].probe.label,
            "calls": summary.calls,
            "unmatched_returns": pairing.unmatched_returns,
            "unfinished": pairing.unfinished,
            "min_ns": summary.min_ns, "mean_ns": summary.mean_ns, "p50_ns": summary.p50_ns,
            "p90_ns": summary.p90_ns, "p99_ns": summary.p99_ns, "max_ns": summary.max_ns,
            "unit": unit,
            "histogram": [{"low": b.low, "high": b.high, "count": b.count} for b in summary.buckets],
            "_summary": summary,
        })
    return out


def _print_counts(result: SessionResult, out: TextIO) -> None:
    width = max([len(c.probe.label) for c in result.probes] + [5])
    out.write(f"{'PROBE':<{width}}  {'HITS':>12}  MECHANISM\n")
    for counts in result.probes:
        out.write(f"{counts.probe.label:<{width}}  {counts.total:>12}  {counts.mechanism}\n")
    for counts in result.probes:
        if not counts.per_thread:
            continue
        out.write(f"\n{counts.probe.label}\n")
        out.write(f"  {'PID':>8} {'TID':>8}  {'COMM':<16} {'HITS':>12}\n")
        by_process = counts.per_process
        for pid, n in sorted(by_process.items(), key=lambda kv: (-kv[1], kv[0])):
            out.write(f"  {pid:>8} {'*':>8}  {printable(result.comm(pid)):<16} {n:>12}\n")
            threads = [(tid, m) for (p, tid), m in counts.per_thread.items() if p == pid]
            if len(threads) > 1 or threads and threads[0][0] != pid:
                for tid, m in sorted(threads, key=lambda kv: (-kv[1], kv[0])):
                    out.write(f"  {'':>8} {tid:>8}  {printable(result.comm(tid, pid)):<16} {m:>12}\n")


def _print_latency(summaries: list[dict], out: TextIO) -> None:
    for item in summaries:
        s = item["_summary"]
        out.write(f"{item['probe']}\n")
        if not s.calls:
            out.write("  no completed calls\n\n")
            continue
        out.write("\n".join(render_histogram(s)) + "\n")
        out.write(f"\n  calls {s.calls}  min {format_duration(s.min_ns)}  avg {format_duration(s.mean_ns)}  "
                  f"p50 {format_duration(s.p50_ns)}  p90 {format_duration(s.p90_ns)}  "
                  f"p99 {format_duration(s.p99_ns)}  max {format_duration(s.max_ns)}\n")
        if item["unmatched_returns"] or item["unfinished"]:
            out.write(f"  ({item['unmatched_returns']} returns without their entry, "
                      f"{item['unfinished']} calls still running at the end)\n")
        out.write("\n")


def _hit_rows(result: SessionResult) -> list[dict]:
    rows = []
    for hit in sorted(result.hits, key=lambda h: h.time):
        rows.append({"time_ns": hit.time, "pid": hit.pid, "tid": hit.tid, "comm": result.comm(hit.tid),
                     "cpu": hit.cpu, "probe": result.probes[hit.probe].probe.label, "args": hit.args})
    return rows


def _print_hits(rows: list[dict], out: TextIO) -> None:
    out.write(f"{'TIME(s)':>14} {'COMM':<16} {'PID':>7} {'TID':>7} {'CPU':>3}  PROBE  ARGS\n")
    start = rows[0]["time_ns"] if rows else 0
    for row in rows:
        args = " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v:#x}" if v > 9 else f"{k}={v}"
                        for k, v in row["args"].items())
        out.write(f"{(row['time_ns'] - start) / 1e9:>14.6f} {printable(row['comm']):<16} {row['pid']:>7} "
                  f"{row['tid']:>7} {row['cpu']:>3}  {row['probe']}  {args}\n")


def _store_profile(profile, result: SessionResult, name: str) -> str:
    from hwprof.definitions import stack_quality
    from hwprof.store import ProfileStore, StoreEntry

    store = ProfileStore()
    entry_id, path = store.reserve("probe", "npz")
    profile.save(path)
    store.add(StoreEntry(
        id=entry_id, kind="probe", file=path.name, created=time.time(),
        name=name or " + ".join(c.probe.label for c in result.probes),
        target=result.target.describe(), command=list(result.target.command),
        events=[c.probe.label for c in result.probes], duration_ns=result.duration_ns,
        samples=profile.n_samples, lost=result.lost, stack_quality=stack_quality(profile).score,
    ))
    return entry_id


def emit(result: SessionResult, args: argparse.Namespace, make_symbolizer: Callable[[], object]) -> int:
    """Print the report to stdout, or to -o FILE (the probed command owns stdout too)."""
    if args.output:
        try:
            with open(args.output, "w") as out:
                return _emit(result, args, make_symbolizer, out)
        except OSError as exc:
            from hwprof.errors import HwprofError

            raise HwprofError(f"cannot write {args.output}: {exc.strerror}") from None
    return _emit(result, args, make_symbolizer, sys.stdout)


def _emit(result: SessionResult, args: argparse.Namespace, make_symbolizer: Callable[[], object],
          out: TextIO) -> int:
    doc: dict = {
        "mode": result.mode.value,
        "target": result.target.describe(),
        "duration_ns": result.duration_ns,
        "lost": result.lost,
        "exit_status": result.exit_status,
        "notes": result.notes,
        "probes": _probe_json(result),
    }
    if result.mode == Mode.LATENCY:
        summaries = latency_summaries(result, args.unit)
        doc["latency"] = [{k: v for k, v in s.items() if not k.startswith("_")} for s in summaries]
        if not args.json:
            _print_latency(summaries, out)
    elif result.mode == Mode.STACKS:
        from hwprof.collectors.probe_stacks import build_profile

        from hwprof.folded import profile_folded

        profile = build_profile(result, make_symbolizer(), args.max_stack)
        folded = list(profile_folded(profile))
        profile_id = None if args.no_store or not profile.n_samples else _store_profile(profile, result, args.name)
        doc["stacks"] = {"folded": folded, "profile_id": profile_id}
        if not args.json:
            out.writelines(line + "\n" for line in folded)
        if profile_id:
            print(f"stored as {profile_id} ('hwprof serve' shows its flame graph)", file=sys.stderr)
    elif result.mode == Mode.ARGS:
        rows = _hit_rows(result)
        doc["hits"] = rows
        if not args.json:
            _print_hits(rows, out)
    else:
        if not args.json:
            _print_counts(result, out)
    if args.json:
        json.dump(doc, out, indent=2, default=_json_default)
        out.write("\n")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.lost:
        print(f"warning: {result.lost} hits were not recorded (ring buffer full; totals are still exact): "
              "use a larger -m", file=sys.stderr)
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
