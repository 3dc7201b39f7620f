"""The CLI side of `hwprof stat`: options checked and turned into StatOptions, results rendered and saved.

The counting run itself is hwprof.collectors.stat_run (as record's is hwprof.collectors.sampling). Kept apart from
hwprof/commands/stat.py so the CLI's start-up only builds the parser; this module and the collectors load when stat
actually runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence

from hwprof.collectors.counting import Target
from hwprof.collectors.stat_run import StatOptions, run_stat_session
from hwprof.errors import HwprofError
from hwprof.stat_events import parse_groups
from hwprof.stat_output import (
    Slice,
    StatResult,
    interval_header,
    render_csv,
    render_interval_csv,
    render_interval_text,
    render_json,
    render_text,
)
from hwprof.system.cpus import online_cpus
from hwprof.system.cpus import parse_cpu_list as _parse_cpu_list
from hwprof.system.procfs import parse_id_list

MIN_INTERVAL_MS = 10


# --- options --------------------------------------------------------------------------------------------

def options_from_args(args: argparse.Namespace) -> StatOptions:
    """Every combination perf refuses is refused here, in one line, before anything is opened."""
    command = list(args.workload or [])
    if command and command[0] == "--":
        command = command[1:]
    pids = parse_id_list(args.pid) if args.pid else ()
    tids = parse_id_list(args.tid, "-t", thread=True) if args.tid else ()
    cpus = _parse_cpu_list(args.cpu) if args.cpu else (tuple(online_cpus()) if args.all_cpus else None)
    if pids and tids:
        raise HwprofError("give either -p or -t, not both", exit_code=2)
    if (pids or tids) and command:
        raise HwprofError("give either a command or -p/-t, not both", exit_code=2)
    if (pids or tids) and cpus is not None:
        raise HwprofError("-p/-t count tasks, -a/-C count CPUs: give one kind of target", exit_code=2)
    if not (command or pids or tids or cpus is not None):
        raise HwprofError("nothing to count: give a command after --, or -p PID, -t TID, -a or -C CPUS",
                          exit_code=2)
    if args.per_thread and not (pids or tids):
        raise HwprofError("--per-thread needs -p or -t", exit_code=2)
    cgroup = getattr(args, "cgroup", None)
    if cgroup is not None and (cpus is None or pids or tids):
        raise HwprofError("-G/--cgroup counts CPUs: give -a or -C (as perf: cgroup monitoring only in "
                          "system-wide mode)", exit_code=2)
    if args.per_cpu and cpus is None:
        raise HwprofError("-A/--per-cpu needs -a or -C", exit_code=2)
    if args.interval_print is not None and args.interval_print < MIN_INTERVAL_MS:
        raise HwprofError(f"-I must be at least {MIN_INTERVAL_MS} ms", exit_code=2)
    if args.interval_count is not None and (args.interval_print is None or args.interval_count < 1):
        raise HwprofError("--interval-count needs -I and a count of at least 1", exit_code=2)
    if args.repeat < 1:
        raise HwprofError("-r needs a count of at least 1", exit_code=2)
    if args.repeat > 1 and not command:
        raise HwprofError("-r repeats a command: give one after --", exit_code=2)
    if args.repeat > 1 and args.interval_print is not None:
        raise HwprofError("-r and -I cannot be combined", exit_code=2)
    if args.delay < 0:
        raise HwprofError("-D needs a delay of 0 ms or more", exit_code=2)
    if args.timeout is not None and args.timeout < MIN_INTERVAL_MS:
        raise HwprofError(f"--timeout must be at least {MIN_INTERVAL_MS} ms", exit_code=2)
    separator = "," if args.csv else args.field_separator
    if separator == "":
        raise HwprofError("-x needs a non-empty separator", exit_code=2)
    if separator is not None and args.json:
        raise HwprofError("choose one of -x/--csv and --json", exit_code=2)
    return StatOptions(
        target=Target(command=tuple(command), pids=pids, tids=tids, cpus=cpus, cgroup=cgroup),
        event_text=tuple(args.event), interval_ms=args.interval_print, interval_count=args.interval_count,
        repeat=args.repeat, per_thread=args.per_thread, per_cpu=args.per_cpu, separator=separator,
        json=args.json, output=args.output, no_scale=args.no_scale, timeout_ms=args.timeout, topdown=args.topdown,
        save=args.save or bool(args.name), name=args.name, detailed=args.detailed, inherit=not args.no_inherit,
        delay_ms=args.delay,
    )


# --- the command ------------------------------------------------------------------------------------------

def save_run(result: StatResult, name: str = "") -> str:
    """Keep the run's JSON document in the profile store as a 'stat' entry; return its id."""
    from hwprof.store import ProfileStore, StoreEntry

    store = ProfileStore()
    try:
        entry_id, path = store.reserve("stat", "json")
        path.write_text(render_json(result))
    except OSError as exc:
        raise HwprofError(f"cannot write to the profile store at {store.root}: {exc.strerror}") from None
    store.add(StoreEntry(
        id=entry_id, kind="stat", file=path.name, created=time.time(), name=name, target=result.target,
        command=list(result.command), events=[e.name for e in result.events], duration_ns=result.duration_ns,
        extra={"exit_code": result.exit_code, "runs": result.runs}))
    return entry_id


def run_stat(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    plan = None
    topdown_level = getattr(args, "topdown_level", None)
    if opts.topdown and not topdown_level:
        from hwprof.commands._stat_metrics import vendor_topdown_available

        if vendor_topdown_available():  # --topdown: the vendor's level-1 formulas where the model has them
            topdown_level = 1
            opts = dataclasses.replace(opts, topdown=False)
    if getattr(args, "metrics", None) or topdown_level:
        from hwprof.commands._stat_metrics import build_plan

        plan = build_plan(args.metrics, topdown_level)  # -M / --topdown-level: the vendor's metrics
    groups = parse_groups(opts.event_text, opts.topdown, opts.detailed) if opts.event_text or not plan else []
    if plan is not None:
        from hwprof.commands._stat_metrics import plan_groups

        groups += plan_groups(plan, len(groups), sum(len(g.events) for g in groups))
    verbose = getattr(args, "verbose", 0)
    sink = _open_sink(opts.output)
    try:
        if verbose >= 2:  # -vv: each perf_event_attr before it is opened, as perf prints it
            from hwprof.perf.syscall import trace_opens

            with trace_opens(sys.stderr.write):
                return _run(opts, groups, sink, plan, verbose)
        return _run(opts, groups, sink, plan, verbose)
    finally:
        if sink is not sys.stderr:
            sink.close()


def _open_sink(path: str | None):
    if path is None:
        return sys.stderr
    try:
        return open(path, "w")
    except OSError as exc:
        raise HwprofError(f"cannot write {path}: {exc.strerror}") from None


def _run(opts: StatOptions, groups: Sequence, sink, plan=None, verbose: int = 0) -> int:
    live = opts.interval_ms is not None and not opts.json
    header_printed = False

    def emit(s: Slice) -> None:
        nonlocal header_printed
        if plan is not None and not s.per_cpu and not s.per_thread:
            from hwprof.commands._stat_metrics import interval_slice

            s = interval_slice(plan, s, (opts.interval_ms or 0) * 1e6, verbose > 0)
        if opts.separator is not None:
            sink.write(render_interval_csv(s, opts.separator))
        else:
            if not header_printed:
                sink.write(interval_header(opts.per_cpu, opts.per_thread))
                header_printed = True
            sink.write(render_interval_text(s))
        sink.flush()

    result = run_stat_session(groups, opts, emit if live else None)
    shown, tree_text = result, ""
    if plan is not None:
        from hwprof.commands._stat_metrics import apply_plan

        result, shown, tree_text = apply_plan(result, plan, verbose > 0, plan.first_slot)
    if opts.json:
        sink.write(render_json(result))
    elif opts.separator is not None:
        if not live:
            sink.write(render_csv(result, opts.separator))
    elif not live:
        sink.write(render_text(shown) + tree_text)
    sink.flush()
    if opts.save:
        entry_id = save_run(result, opts.name)
        print(f"[ hwprof stat: saved {entry_id} ]", file=sys.stderr)
    return result.exit_code if result.exit_code is not None else 0

