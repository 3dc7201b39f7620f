"""`hwprof record`: sample stacks of a command, running processes or the whole machine into perf.data."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hwprof record -g -- ./a.out              # sample a command and its children at 4000 Hz, with call stacks
  hwprof record --call-graph dwarf -- ./a.out   # complete stacks without frame pointers (8 KiB stack copies)
  hwprof record --python -- python3 app.py  # Python functions among the native frames (CPython 3.12+)
  hwprof record -F 999 -g -p 1234 -d 10    # attach to every thread of PID 1234 for 10 s, then detach
  hwprof record -a -g -d 5                 # the whole machine for 5 s (Ctrl-C stops early)
  hwprof record -C 0 -e cpu-clock -d 2     # CPU 0 only
  hwprof record -a -G system.slice/nginx.service -g -d 10   # only that cgroup's tasks (and its descendants')
  hwprof record -e '{cpu-clock,page-faults,context-switches}' -g -- ./a.out
                                           # group read in every sample: per-function ratios in the report
  hwprof record -e sched:sched_switch -g -a -d 1   # a tracepoint as the sampling event (every hit)
  hwprof record -c 100000 -e page-faults -- ./a.out  # one sample every 100000 page faults
  hwprof record -o out.perf.data -g -- ./a.out       # a file instead of the profile store
  hwprof record --off-cpu -- ./server      # on-CPU samples plus where and how long threads block
  hwprof record --off-cpu --wakeups -p 1234 -d 5   # ... and who woke them ('hwprof report --off-cpu', --wall)
captures go to the profile store ($HWPROF_HOME, default ~/.local/share/hwprof) unless -o is given;
'hwprof report' then shows the newest one, 'hwprof ls' lists them. The file is a perf.data that
'perf report -i' and 'perf script -i' read too.
"""


class RecordCommand:
    name = "record"
    help = "sample call stacks into a perf.data capture"
    description = (
        "Sample a command (children followed), running processes (-p, new threads too) or CPUs (-a, -C) with any "
        "event as the sampling clock. Without -e, samples on cycles and falls back to cpu-clock with a notice "
        "where there is no CPU PMU. The capture copies raw ring-buffer bytes into a perf.data file; decoding "
        "happens in 'hwprof report'. Lost samples are counted and reported."
    )
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-v", "--verbose", action="count", default=0,
                            help="-vv: print each perf_event_attr before opening it, in perf's -vv layout")
        parser.add_argument("-e", "--event", action="append", metavar="EVENTS",
                            help="sampling event(s): comma list, {groups} read in every sample, modifiers "
                                 "(default: cycles, falling back to cpu-clock)")
        rate = parser.add_mutually_exclusive_group()
        rate.add_argument("-F", "--freq", type=int, metavar="HZ", help="samples per second (default 4000)")
        rate.add_argument("-c", "--count", type=int, metavar="PERIOD", help="one sample every PERIOD events")
        target = parser.add_argument_group("target")
        target.add_argument("-p", "--pid", metavar="PID[,PID]", help="attach to every thread of these processes")
        target.add_argument("-a", "--all-cpus", action="store_true", help="system-wide, every CPU")
        target.add_argument("-C", "--cpu", metavar="CPUS", help="only these CPUs (e.g. 0-3,6)")
        target.add_argument("-G", "--cgroup", metavar="CGROUP",
                            help="with -a/-C: only while tasks of this cgroup (or of its descendants) run; the "
                                 "path is relative to the cgroup hierarchy (/sys/fs/cgroup on cgroup v2), as perf's")
        target.add_argument("-d", "--duration", type=float, metavar="SECONDS",
                            help="stop after SECONDS (a command is sent SIGTERM)")
        target.add_argument("--no-inherit", action="store_true", help="do not follow child tasks")
        stacks = parser.add_argument_group("stacks")
        stacks.add_argument("-g", action="store_true", help="record kernel and user call stacks (frame pointers)")
        stacks.add_argument("--call-graph", metavar="MODE[,SIZE]",
                            help="fp (same as -g), or dwarf[,SIZE]: user registers and SIZE bytes of user stack "
                                 "(default 8192, max 65528) per sample, unwound with the binaries' CFI, for code "
                                 "built without frame pointers; lbr where the CPU has last branch records")
        stacks.add_argument("--python", action="store_true",
                            help="show Python functions (py::func:file.py) among the native frames: turns on "
                                 "CPython 3.12+'s perf support for the command (-X perf, or -X perf_jit on 3.13+) "
                                 "and unwinds with --call-graph dwarf (32 KiB stack copies unless a size is given)")
        stacks.add_argument("--max-stack", type=int, metavar="N", help="at most N frames per stack")
        only = stacks.add_mutually_exclusive_group()
        only.add_argument("--user-callchains", action="store_true", help="user-space frames only")
        only.add_argument("--kernel-callchains", action="store_true", help="kernel frames only")
        offcpu = parser.add_argument_group("off-CPU")
        offcpu.add_argument("--off-cpu", action="store_true",
                            help="also record every switch-out of a target thread (stack, state) and its switch-in: "
                                 "time blocked per stack (implies -g; root for stacks)")
        offcpu.add_argument("--wakeups", action="store_true",
                            help="with --off-cpu: the waker's stack at each wakeup (sched:sched_waking)")
        out = parser.add_argument_group("output")
        out.add_argument("-o", "--output", metavar="FILE", help="write this perf.data file instead of the store")
        out.add_argument("-m", "--mmap-pages", type=int, metavar="PAGES",
                         help="ring buffer size per CPU in pages, a power of two (default 128)")
        out.add_argument("--name", help="a name for the store entry")
        out.add_argument("--store", metavar="URL", help="also store the capture as one window of a fleet store "
                                                          "(clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DB)")
        out.add_argument("-q", "--quiet", action="store_true", help="no notices or summary")
        parser.add_argument("workload", nargs=argparse.REMAINDER, metavar="command", help="command to run (after --)")

    def run(self, args: argparse.Namespace) -> int:
        import os
        import sys
        import time

        from hwprof.collectors.sampling import SamplingOptions, SamplingSession, Target
        from hwprof.errors import HwprofError
        from hwprof.store import ProfileStore, StoreEntry
        from hwprof.system.cpus import parse_cpu_list
        from hwprof.system.procfs import parse_id_list

        command = list(args.workload or [])
        if command and command[0] == "--":
            command = command[1:]
        pids = parse_id_list(args.pid) if args.pid else ()
        cpus = tuple(parse_cpu_list(args.cpu)) if args.cpu else None
        chosen = sum(bool(x) for x in (command, pids, args.all_cpus))
        if args.cgroup is not None and (command or pids or not (args.all_cpus or cpus is not None)):
            raise HwprofError("-G/--cgroup samples CPUs: give -a or -C (as perf: cgroup monitoring only in "
                              "system-wide mode)", exit_code=2)
        if chosen == 0 and cpus is None:
            raise HwprofError("nothing to sample: give a command after --, -p PID, -a or -C CPUS", exit_code=2)
        if chosen > 1:
            raise HwprofError("choose one target: a command, -p PID or -a", exit_code=2)
        stack_dump = 0
        if args.call_graph:
            from hwprof.callgraph import lbr_refusal, parse_call_graph

            call_graph = parse_call_graph(args.call_graph)
            if call_graph.mode == "lbr":
                raise HwprofError(lbr_refusal() or "--call-graph lbr is not supported by hwprof yet: use "
                                  "--call-graph dwarf")
            stack_dump = call_graph.stack_size
        python_notices: list[str] = []
        if args.python:
            from hwprof.collectors.python_perf import python_perf_setup
            from hwprof.pyperf import PYTHON_STACK_DUMP

            if args.call_graph and not stack_dump:
                raise HwprofError("--python unwinds with --call-graph dwarf[,SIZE], not with frame pointers",
                                  exit_code=2)
            if not args.call_graph or args.call_graph.strip() == "dwarf":
                stack_dump = PYTHON_STACK_DUMP
            setup = python_perf_setup(command, stack_dump)
            os.environ.update(setup.env)  # the command inherits hwprof's environment
            python_notices = setup.notices
        for name, value in (("-F", args.freq), ("-c", args.count), ("--max-stack", args.max_stack)):
            if value is not None and value <= 0:
                raise HwprofError(f"{name} must be positive, got {value}", exit_code=2)
        if args.duration is not None and args.duration <= 0:
            raise HwprofError(f"-d must be positive, got {args.duration}", exit_code=2)
        if args.mmap_pages is not None:
            from hwprof.perf.ring import valid_data_pages

            valid_data_pages(args.mmap_pages)
        max_stack = args.max_stack
        if max_stack is not None:
            from hwprof.perf.syscall import read_sysctl

            limit = read_sysctl("perf_event_max_stack", 127) or 127
            if max_stack > limit:
                raise HwprofError(f"--max-stack {max_stack} is above kernel.perf_event_max_stack ({limit})")
        offcpu_plan = None
        if args.wakeups and not args.off_cpu:
            raise HwprofError("--wakeups needs --off-cpu", exit_code=2)
        if args.off_cpu:
            from hwprof.collectors.offcpu import CLOCKID, plan_capture

            offcpu_plan = plan_capture(args.wakeups)
            if args.mmap_pages is None:
                from hwprof.collectors.offcpu import data_pages

                args.mmap_pages = data_pages()
        options = SamplingOptions(
            events=",".join(args.event) if args.event else None, frequency=args.freq, period=args.count,
            callgraph=bool(args.g or args.call_graph or args.off_cpu or args.python), stack_dump=stack_dump,
            max_stack=max_stack,
            user_callchain=not args.kernel_callchains, kernel_callchain=not args.user_callchains,
            data_pages=args.mmap_pages, duration=args.duration, inherit=not args.no_inherit,
            extra_events=offcpu_plan.extra_events if offcpu_plan else None, context_switch=offcpu_plan is not None,
            clockid=CLOCKID if offcpu_plan else None)
        target = Target(command=tuple(command), pids=pids, system_wide=args.all_cpus, cpus=cpus, cgroup=args.cgroup)
        if args.store:
            from hwprof.fleet.url import parse_store_url

            parse_store_url(args.store)  # a wrong URL fails before the capture, not after it
        store = None
        entry_id = None
        if args.output == "":
            raise HwprofError("-o needs a file name (without -o the capture goes to the profile store)", exit_code=2)
        if args.output:
            path = args.output
            if os.path.isdir(path):
                raise HwprofError(f"-o {path} is a directory")
        else:
            store = ProfileStore()
            try:
                entry_id, store_path = store.reserve("record", "perf.data")
            except OSError as exc:
                raise HwprofError(f"cannot write to the profile store at {store.root}: {exc.strerror}") from None
            path = str(store_path)

        def notify(message: str) -> None:
            if not args.quiet:
                print(f"hwprof record: {message}", file=sys.stderr)

        cmdline = ["hwprof", "record", *sys.argv[2:]] if len(sys.argv) > 1 and sys.argv[1] == "record" else [
            "hwprof", "record", *(["--", *command] if command else [])]
        for message in [*(offcpu_plan.notices if offcpu_plan else ()), *python_notices]:
            notify(message)
        session = SamplingSession(target, options, path, cmdline=cmdline, notify=notify)
        if args.verbose >= 2:  # perf record -vv: every attr before it is opened (and the syscall's result)
            from hwprof.perf.syscall import trace_opens

            with trace_opens(sys.stderr.write):
                result = session.run()
        else:
            result = session.run()
        if store is not None and entry_id is not None:
            store.add(StoreEntry(
                id=entry_id, kind="record", file=os.path.basename(path), created=time.time(),
                name=args.name or "", target=result.target, command=result.command, events=result.events,
                duration_ns=result.duration_ns, samples=result.samples, lost=result.lost, size=result.size,
                extra={"notices": result.notices, "exit_status": result.exit_status,
                       "start_time_ns": result.start_time_ns}))
        if args.store:
            from hwprof.commands._fleet import record_to_fleet

            window = record_to_fleet(args, path, result)
            notify(f"stored as window {window} in {args.store.split('@')[-1]}")
        if not args.quiet:
            where = entry_id if entry_id else path
            lost = f", {result.lost:,} LOST" if result.lost else ", 0 lost"
            print(f"[ hwprof record: {result.size / 1e6:.3f} MB {where} ({result.samples:,} samples{lost}) ]",
                  file=sys.stderr)
            if result.lost:
                print("hwprof record: samples were lost: raise -m (ring pages) or lower -F", file=sys.stderr)
            if offcpu_plan:
                from hwprof.collectors.offcpu import summary

                for line in summary(result.switches, result.duration_ns, result.lost):
                    print(f"hwprof record: {line}", file=sys.stderr)
            if result.exit_status:
                print(f"hwprof record: the command exited with status {result.exit_status}", file=sys.stderr)
        # Like perf record (and hwprof stat), the profiled command's exit code becomes ours, so scripts see a
        # failing workload; a signal shows the shell's way, 128 + its number.
        return result.exit_status or 0


COMMAND = RecordCommand()
