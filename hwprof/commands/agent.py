"""`hwprof agent`: continuous, low-rate, whole-machine sampling shipped in windows to the fleet store."""

from __future__ import annotations

import argparse
import functools

EPILOG = """\
examples:
  hwprof agent --store clickhouse://ch.example:9000/profiles              # every CPU, 19 Hz, stacks, 10 s windows
  hwprof agent --store clickhouse://hw:secret@ch:9000/profiles --label service=api --label dc=eu1
  hwprof agent --store clickhouse://127.0.0.1/profiles --comm nginx,php-fpm -d 600   # two programs, 10 minutes
  hwprof agent --store clickhouses://ch:9440/profiles -p 1234 -F 49       # one process (TLS to the store)
  hwprof agent --store clickhouse://127.0.0.1/profiles --cgroup system.slice/nginx.service   # one service
then: hwprof report --store URL --comm nginx --time=-1h,now ; hwprof serve --store URL
"""


class AgentCommand:
    name = "agent"
    help = "profile this machine continuously into a ClickHouse fleet store"
    description = (
        "Sample the whole machine (or -p processes, --comm names, a --cgroup) at a low rate, cut the samples into "
        "windows, decode and symbolize each window here, and send it to the ClickHouse store with its labels "
        "(host, pid, comm, executable, build-id, cgroup, --label). Windows are spooled to local disk (size-capped) "
        "while the store is away and sent when it is back; windows go to the store together every --send-interval; "
        "SIGTERM sends the current window and the waiting ones before exiting."
    )
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--store", required=True, metavar="URL",
                            help="clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB (clickhouses:// for TLS)")
        parser.add_argument("-F", "--freq", type=int, default=19, metavar="HZ",
                            help="samples per second per CPU (default 19)")
        parser.add_argument("-e", "--event", action="append", metavar="EVENTS",
                            help="sampling event(s), as for record (default: cycles, else cpu-clock)")
        parser.add_argument("-g", action="store_true", default=True, help="call stacks (the default)")
        parser.add_argument("--no-stacks", action="store_true", help="leaf addresses only, no call stacks")
        parser.add_argument("--call-graph", metavar="MODE[,SIZE]",
                            help="fp (default) or dwarf[,SIZE] (user stacks unwound with the binaries' CFI)")
        parser.add_argument("--max-stack", type=int, metavar="N", help="at most N frames per stack")
        parser.add_argument("--window", type=float, default=10.0, metavar="SECONDS",
                            help="window length (default 10)")
        parser.add_argument("--send-interval", type=float, default=60.0, metavar="SECONDS",
                            help="send the windows of this long together, one insert per table (default 60; the "
                                 "store keeps each window; at most --window: every window alone)")
        parser.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
        scope = parser.add_argument_group("scope (default: the whole machine)")
        scope.add_argument("-p", "--pid", metavar="PID[,PID]", help="only these processes (and their threads)")
        scope.add_argument("--comm", metavar="NAME[,NAME]", help="only processes with these names")
        scope.add_argument("-G", "--cgroup", metavar="PATH",
                           help="only tasks in this cgroup or below it, sampled by the kernel as perf record -a -G "
                                "(the path is relative to the cgroup hierarchy, as /proc/PID/cgroup shows it)")
        parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                            help="a label stored with every window (repeatable)")
        parser.add_argument("--host", help="host label (default: this machine's hostname)")
        spool = parser.add_argument_group("spool (windows kept while the store is away)")
        spool.add_argument("--spool-dir", metavar="DIR", help="default: $TMPDIR/hwprof-agent-spool")
        spool.add_argument("--spool-max-mb", type=float, default=256, metavar="MB", help="size cap (default 256)")
        parser.add_argument("--retention-days", type=int, default=30, metavar="DAYS",
                            help="drop stored days older than this, checked hourly (default 30; 0: never)")
        parser.add_argument("--max-rss-mb", type=float, default=150, metavar="MB",
                            help="drop symbol caches when the decoding process grows above this (default 150)")
        parser.add_argument("-q", "--quiet", action="store_true", help="no notices, no summary")
        parser.add_argument("-v", "--verbose", action="store_true", help="show symbolizer warnings")

    def run(self, args: argparse.Namespace) -> int:
        import logging
        import sys

        from hwprof.collectors.agent import Agent, AgentOptions
        from hwprof.errors import HwprofError
        from hwprof.fleet.url import parse_store_url

        parse_store_url(args.store)
        for name, value in (("-F", args.freq), ("--window", args.window), ("--spool-max-mb", args.spool_max_mb),
                            ("--max-rss-mb", args.max_rss_mb), ("--send-interval", args.send_interval)):
            if value is not None and value <= 0:
                raise HwprofError(f"{name} must be positive, got {value}", exit_code=2)
        if args.retention_days < 0:
            raise HwprofError(f"--retention-days must be 0 (never) or more, got {args.retention_days}", exit_code=2)
        if args.duration is not None and args.duration <= 0:
            raise HwprofError(f"-d must be positive, got {args.duration}", exit_code=2)
        from hwprof.system.procfs import parse_id_list

        pids = parse_id_list(args.pid) if args.pid else ()
        if args.cgroup is not None:
            if pids:
                raise HwprofError("--cgroup samples the CPUs while that cgroup's tasks run: give it without -p",
                                  exit_code=2)
            import os

            from hwprof.system.cgroups import open_cgroup

            os.close(open_cgroup(args.cgroup))  # an unknown cgroup stops the agent before it starts
        labels = {}
        for item in args.label:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise HwprofError(f"--label expects KEY=VALUE, got {item!r}", exit_code=2)
            labels[key.strip()] = value
        callgraph, stack_dump = (None, 0) if args.no_stacks else ("fp", 0)
        if args.call_graph and not args.no_stacks:
            from hwprof.callgraph import parse_call_graph

            parsed = parse_call_graph(args.call_graph)
            if parsed.mode == "lbr":
                raise HwprofError("hwprof agent samples with fp or dwarf call graphs, not lbr", exit_code=2)
            callgraph, stack_dump = parsed.mode, parsed.stack_size
        options = AgentOptions(
            store_url=args.store, frequency=args.freq, events=",".join(args.event) if args.event else None,
            callgraph=callgraph, stack_dump=stack_dump, window_s=args.window, send_interval_s=args.send_interval,
            duration_s=args.duration, pids=pids, comms=tuple(c for c in (args.comm or "").split(",") if c),
            cgroup=args.cgroup, labels=labels, spool_dir=args.spool_dir or "",
            spool_max_bytes=int(args.spool_max_mb * (1 << 20)), host=args.host or "", max_stack=args.max_stack,
            max_rss_bytes=int(args.max_rss_mb * (1 << 20)), retention_days=args.retention_days or None)

        def notify(message: str) -> None:
            if not args.quiet:
                print(f"hwprof agent: {message}", file=sys.stderr, flush=True)

        # Per-binary symbolizer warnings ("no debug info") repeat for every stripped system binary: -v shows them.
        # (Configured once the options are known good: a refused command line changes no logging.)
        logging.basicConfig(format="hwprof agent: warning: %(message)s")
        logging.getLogger("hwprof.symbolize").setLevel(logging.WARNING if args.verbose else logging.ERROR)
        from hwprof.symbolize import Symbolizer

        # A new binary's DWARF index is built after its symbol table, not beside it: the two builds' transient
        # memory (node: ~60 + ~70 MB) would otherwise add up against --max-rss-mb.
        agent = Agent(options, notify, make_symbolizer=functools.partial(Symbolizer, overlap_index_builds=False))
        agent.check_store()
        stats = agent.run()
        if not args.quiet:
            print(f"hwprof agent: {stats.stop_reason}: {stats.windows} windows, {stats.samples:,} samples "
                  f"({stats.lost:,} lost, {stats.filtered:,} outside the scope), {stats.sent} sent, "
                  f"{stats.already_stored} already stored, {stats.spooled} spooled, {stats.backlog_sent} sent "
                  f"from the spool, {stats.dropped_windows} dropped ({stats.dropped_samples:,} samples), "
                  f"{stats.failed_windows} failed, {stats.skipped_windows} skipped "
                  f"({stats.skipped_samples:,} samples); sampled {stats.sampled_ns / 1e9:.1f} of "
                  f"{stats.wall_ns / 1e9:.1f} s; own CPU {stats.cpu_ns / 1e9:.2f} s "
                  f"({100 * stats.cpu_share():.2f}% of one CPU), peak RSS {stats.peak_rss_bytes / 2**20:.0f} MB "
                  f"(sampler {stats.sampler_rss_bytes / 2**20:.0f} MB), {stats.cache_resets} symbol cache resets",
                  file=sys.stderr)
        return 0 if not (stats.failed_windows or stats.skipped_windows) else 1


COMMAND = AgentCommand()
