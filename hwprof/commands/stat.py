"""`hwprof stat`: count events on a command, processes, threads or CPUs, with derived metrics, like perf stat."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hwprof stat -- make -j2                  # perf's default events on a command and all its children
  hwprof stat -e task-clock,page-faults -- ./a.out
  hwprof stat -e '{cycles,instructions}' -- ./a.out   # a group: IPC from co-scheduled counters
  hwprof stat -e syscalls:sys_enter_write -- ./a.out  # exact count of write(2) calls (root or paranoid -1)
  hwprof stat -p 1234 --timeout 5000       # attach to every thread of PID 1234 for 5 s (Ctrl-C stops early)
  hwprof stat -p 1234 --per-thread -I 1000 # one row per thread, every second
  hwprof stat -a -A -e cpu-clock -- sleep 1  # system-wide, one row per CPU
  hwprof stat -a -G system.slice/nginx.service -e task-clock -- sleep 5   # one cgroup's tasks
  hwprof stat -r 5 -- ./bench              # 5 runs: mean and +- spread
  hwprof stat --json -o out.json -- ./bench  # machine-readable (schema in README)
  hwprof stat -x, -- ./bench               # CSV like perf stat -x,
  hwprof stat --save -I 500 -- ./bench     # keep the run in the store; 'hwprof serve' charts its intervals
  hwprof stat -M TopdownL1,Info_Thread_IPC -- ./bench  # vendor metrics / metric groups of this CPU model
  hwprof stat --topdown-level 3 -- ./bench # the TMA tree to level 3, bottleneck path marked <==
  PERF_CPUID=GenuineIntel-6-8F-8 hwprof stat -vv -M TopdownL2 -- true  # another model's metric events
"""

class StatCommand:
    name = "stat"
    help = "count events (hardware, software, tracepoints) and derive metrics"
    description = (
        "Count events on a command, processes (-p), threads (-t) or CPUs (-a, -C) and print their totals with "
        "derived metrics (IPC, miss ratios, GHz, top-down), like perf stat. Hardware events this machine cannot "
        "count show '<not supported>' while the others are still counted. Output goes to stderr (as perf's) "
        "unless -o is given; the command's own output is untouched and its exit code becomes hwprof's."
    )
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-e", "--event", action="append", default=[], metavar="EVENTS",
                            help="events to count: comma list, {groups}, modifiers (repeatable); "
                                 "default: perf's default set")
        parser.add_argument("-d", "--detailed", action="count", default=0,
                            help="add cache events to the default set, like perf -d (repeat: -dd, -ddd)")
        target = parser.add_argument_group("target")
        target.add_argument("-p", "--pid", metavar="PID[,PID]", help="count every thread of these processes")
        target.add_argument("-t", "--tid", metavar="TID[,TID]", help="count these threads only")
        target.add_argument("-a", "--all-cpus", action="store_true", help="count system-wide, on every CPU")
        target.add_argument("-C", "--cpu", metavar="CPUS", help="count system-wide on these CPUs (e.g. 0-3,6)")
        target.add_argument("-G", "--cgroup", metavar="CGROUP",
                            help="with -a/-C: count only while tasks of this cgroup (or of its descendants) run; "
                                 "the path is relative to the cgroup hierarchy, as perf's")
        target.add_argument("-i", "--no-inherit", action="store_true",
                            help="do not count threads and child processes the target creates later")
        out = parser.add_argument_group("output")
        out.add_argument("-I", "--interval-print", type=int, metavar="MS", help="print counts every MS milliseconds")
        out.add_argument("--interval-count", type=int, metavar="N", help="stop after N intervals (with -I)")
        out.add_argument("-r", "--repeat", type=int, default=1, metavar="N",
                         help="run the command N times; print means and the spread")
        out.add_argument("--per-thread", action="store_true", help="one row per thread (with -p/-t)")
        out.add_argument("-A", "--per-cpu", "--no-aggr", dest="per_cpu", action="store_true",
                         help="one row per CPU (with -a/-C)")
        out.add_argument("-x", "--field-separator", metavar="SEP", help="CSV-like output with this separator")
        out.add_argument("--csv", action="store_true", help="same as -x ,")
        out.add_argument("-j", "--json", action="store_true", help="one JSON document (schema in README)")
        out.add_argument("-o", "--output", metavar="FILE", help="write the results to FILE instead of stderr")
        out.add_argument("--no-scale", action="store_true", help="print raw counts, not scaled for multiplexing")
        out.add_argument("--save", action="store_true",
                         help="also keep the run (its JSON document) in the profile store, for hwprof ls/serve")
        out.add_argument("--name", default="", help="a name for the saved run (implies --save)")
        parser.add_argument("--timeout", type=int, metavar="MS",
                            help="stop after MS milliseconds (a command gets SIGTERM) and print the counts")
        parser.add_argument("-D", "--delay", type=int, default=0, metavar="MS",
                            help="start counting MS milliseconds after the command (or the attach) starts")
        parser.add_argument("--topdown", action="store_true",
                            help="top-down level 1: the vendor's formulas (as --topdown-level 1) where this CPU "
                                 "model has them, else Intel perf-metrics / AMD Zen 4 pipeline events")
        parser.add_argument("-M", "--metrics", action="append", default=[], metavar="METRIC|GROUP",
                            help="the CPU vendor's metrics or metric groups (comma list, repeatable; "
                                 "'hwprof list metric' shows them), evaluated over scheduled event groups")
        parser.add_argument("--topdown-level", type=int, metavar="N",
                            help="the vendor's top-down (TMA) tree to level N (1-6), printed as toplev does")
        parser.add_argument("-v", "--verbose", action="count", default=0,
                            help="-vv: print each perf_event_attr before opening it, in perf's -vv layout")
        parser.add_argument("workload", nargs=argparse.REMAINDER, metavar="command",
                            help="command to run (after --)")

    def run(self, args: argparse.Namespace) -> int:
        from hwprof.commands._stat_run import run_stat

        return run_stat(args)


COMMAND = StatCommand()
