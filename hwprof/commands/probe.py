"""`hwprof probe`: put uprobes, kprobes and tracepoints in, ask how often / how long / from where, take them out."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Dynamic tracing: probe any function of a program or library (uprobes), of the kernel (kprobes), or a static
tracepoint, for as long as you ask, and leave nothing behind. One question per run:
  --count    hits per probe, per process and thread (default)
  --latency  entry-to-return time per call: log2 histogram and p50/p90/p99/max (funclatency)
  --stacks   call stacks at each hit: folded output, stored for the web view ('hwprof serve')
  --args     one line per hit with the fetch-args of tracefs probes or the fields of a tracepoint

System-wide probes use the perf 'uprobe'/'kprobe' PMUs (gone with their file descriptors). Probes on a command or
-p use tracefs uprobe_events/kprobe_events (they follow new threads and children, PMU probes cannot); those are
removed on exit, Ctrl-C and SIGTERM, and a SIGKILLed run's leftovers are removed by the next start."""

EPILOG = """\
probe specs:
  -u BINARY:SYMBOL[+OFF]   uprobe on a function (C++/Rust by demangled name); -u BINARY:0xADDR (ELF address)
  -u LIB:SYMBOL            a library by name (c, libc, libc.so.6): from the target's mappings or ldconfig
  -r BINARY:SYMBOL         return probe (or append %return to any -u/-k)
  -k KSYM[+OFF]  -K KSYM   kprobe / kretprobe
  -t SUBSYS:EVENT          tracepoint
  'SPEC ARG...'            fetch-args after the location, tracefs syntax: 'prog:greet name=+0(%di):string'

examples:
  hwprof probe -u ./app:parse -- ./app input.txt        # how many calls to parse()
  hwprof probe -u c:malloc -u c:free -p 1234 -d 5       # malloc/free per thread of pid 1234 for 5 s
  hwprof probe --latency -u ./app:handle -p 1234        # histogram of handle() durations; Ctrl-C to stop
  hwprof probe --latency -k vfs_read -d 10              # kernel function latency, system-wide
  hwprof probe --stacks -u c:malloc -- ./app            # who calls malloc: folded stacks + stored profile
  hwprof probe -t syscalls:sys_enter_write -- ./app     # write(2) calls of a command
  hwprof probe --args -u './app:greet name=+0(%di):string' -- ./app
  hwprof probe -t sched:sched_process_exec --filter comm=bash -d 10 --json
"""


class ProbeCommand:
    name = "probe"
    help = "count hits, measure latency, capture stacks at uprobes/kprobes/tracepoints"
    description = DESCRIPTION
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        specs = parser.add_argument_group("probes (several allowed)")
        specs.add_argument("-u", "--uprobe", action="append", default=[], metavar="BIN:SYM[+OFF]",
                           help="user function entry (BIN may be a library name)")
        specs.add_argument("-r", "--uretprobe", action="append", default=[], metavar="BIN:SYM",
                           help="user function return")
        specs.add_argument("-k", "--kprobe", action="append", default=[], metavar="KSYM[+OFF]",
                           help="kernel function entry")
        specs.add_argument("-K", "--kretprobe", action="append", default=[], metavar="KSYM",
                           help="kernel function return")
        specs.add_argument("-t", "--tracepoint", action="append", default=[], metavar="SUBSYS:EVENT",
                           help="static tracepoint")
        scope = parser.add_argument_group("scope")
        scope.add_argument("-p", "--pid", metavar="PID[,PID]", help="probe these processes (all threads)")
        scope.add_argument("-d", "--duration", type=float, metavar="SECONDS", help="stop after this long")
        scope.add_argument("--filter", action="append", default=[], metavar="pid=N|comm=NAME",
                           help="keep only hits of these processes (repeatable; comma lists allowed)")
        modes = parser.add_argument_group("mode (one)").add_mutually_exclusive_group()
        modes.add_argument("--count", dest="mode", action="store_const", const="count", help="hits (default)")
        modes.add_argument("--latency", dest="mode", action="store_const", const="latency",
                           help="entry-to-return time per call")
        modes.add_argument("--stacks", dest="mode", action="store_const", const="stacks", help="stacks at hits")
        modes.add_argument("--args", dest="mode", action="store_const", const="args", help="print each hit")
        out = parser.add_argument_group("output")
        out.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        out.add_argument("--unit", choices=("ns", "us", "ms"), default="us", help="latency histogram unit")
        out.add_argument("-o", "--output", metavar="FILE", help="write the report (table, JSON, folded) here")
        out.add_argument("--no-store", action="store_true", help="--stacks: do not keep the profile in the store")
        out.add_argument("--name", default="", help="--stacks: name of the stored profile")
        tune = parser.add_argument_group("tuning")
        tune.add_argument("--mechanism", choices=("auto", "pmu", "tracefs"), default="auto",
                          help="how probes are created (default: perf PMU when available)")
        tune.add_argument("-m", "--mmap-pages", type=int, default=256, metavar="PAGES",
                          help="ring buffer pages per CPU/thread (power of two)")
        tune.add_argument("--max-stack", type=int, default=127, help="--stacks: deepest stack kept")
        parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                            help="run and probe this command")

    def run(self, args: argparse.Namespace) -> int:
        from hwprof.collectors import probe_report
        from hwprof.collectors.probe_spec import ProbeKind, parse_spec, resolve
        from hwprof.collectors.probes import Mechanism, Mode, ProbeSession, SessionOptions, Target
        from hwprof.errors import HwprofError
        from hwprof.system.procfs import parse_id_list

        command = list(args.cmd)
        if command and command[0] == "--":
            command = command[1:]
        pids = parse_id_list(args.pid) if args.pid else ()
        if command and pids:
            raise HwprofError("give -p PID or a command, not both")
        mode = Mode(args.mode or "count")
        specs = [parse_spec(kind, text) for kind, texts in (
            (ProbeKind.UPROBE, args.uprobe), (ProbeKind.URETPROBE, args.uretprobe),
            (ProbeKind.KPROBE, args.kprobe), (ProbeKind.KRETPROBE, args.kretprobe),
            (ProbeKind.TRACEPOINT, args.tracepoint)) for text in texts]
        if not specs:
            raise HwprofError("no probes given: use -u, -r, -k, -K or -t (see -h)")
        if args.duration is not None and args.duration <= 0:
            raise HwprofError("-d must be a positive number of seconds")
        probes = [resolve(spec, pids) for spec in specs]
        if mode == Mode.LATENCY:
            probes = _latency_pairs(probes)
        target = Target(pids=pids, command=tuple(command))
        options = SessionOptions(mode=mode, duration_s=args.duration, filter=_parse_filters(args.filter),
                                 mechanism=Mechanism(args.mechanism), ring_pages=args.mmap_pages,
                                 max_stack=args.max_stack)
        with ProbeSession(probes, target, options) as session:
            session.open()

            def attached() -> None:
                # Scripts wait for this line before they start the workload (bpftrace's "Attaching N probes"), so
                # it is printed once the probes are enabled.
                until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
                print(f"hwprof probe: {len(probes)} probe(s) attached to {target.describe()} {until}",
                      file=sys.stderr, flush=True)

            result = session.run(None if target.command else attached)
        return probe_report.emit(result, args, _symbolizer)


def _parse_filters(items: list[str]):
    from hwprof.collectors.probes import Filter
    from hwprof.errors import HwprofError

    pids: set[int] = set()
    comms: set[str] = set()
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().rstrip("=")
        if not sep or not value:
            raise HwprofError(f"--filter wants pid=N or comm=NAME, got {item!r}")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if key == "pid":
            try:
                pids.update(int(v) for v in values)
            except ValueError:
                raise HwprofError(f"--filter pid= wants numbers, got {value!r}") from None
        elif key == "comm":
            comms.update(v[:15] for v in values)  # the kernel keeps 15 characters of a command name
        else:
            raise HwprofError(f"--filter knows pid and comm, not {key!r}")
    return Filter(frozenset(pids), frozenset(comms))


def _latency_pairs(probes):
    """Each entry probe gets its return probe; the session sees entry, return, entry, return..."""
    from hwprof.errors import HwprofError

    out = []
    for probe in probes:
        if probe.kind.is_return:
            raise HwprofError(f"--latency takes function entries (-u/-k) and adds the return probe itself; "
                              f"drop the return probe {probe.spec.text!r}")
        if not (probe.kind.is_user or probe.kind.is_kernel_function):
            raise HwprofError(f"--latency needs a function probe (-u or -k), not {probe.label}")
        out.extend((probe, probe.returning()))
    return out


def _symbolizer():
    from hwprof.symbolize import Symbolizer

    return Symbolizer()


COMMAND = ProbeCommand()
