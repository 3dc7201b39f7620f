"""hwprof check: a preflight report of what this machine and user can measure, and of a binary or process."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  hwprof check                 # kernel, CPU, PMU, paranoid level, tracefs, probes, BPF, limits
  hwprof check ./myapp         # ... plus: does ./myapp have frame pointers and debug info?
  hwprof check 1234            # ... plus the same for a running process and its libraries
  hwprof check --json | jq '.checks[] | select(.status == "no")'
  sudo -u alice hwprof check   # what an unprivileged user may do here
"""

MARKS = {"ok": "yes", "no": "NO", "warn": "warn", "info": ""}


class CheckCommand:
    name = "check"
    help = "preflight: what can be measured here, and why not"
    description = ("Report the kernel, CPU and PMU, which generic events really open, perf_event_paranoid, "
                   "kptr_restrict, privileges, tracefs, uprobe/kprobe support, BPF/BTF, the sample-rate and "
                   "memory limits. Given a binary or PID, also whether its code has frame pointers and debug "
                   "info. Every 'NO' and 'warn' line says why and how to fix it. Exit status 0 unless the "
                   "target cannot be inspected.")
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("target", nargs="?", metavar="BINARY|PID",
                            help="a binary (path or command name) or a process id to inspect")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from hwprof.preflight import PreflightReport, run_system_checks

        target_part = []
        if args.target is not None:
            from hwprof.commands._check_target import target_checks

            target_part = target_checks(args.target)  # bad input fails before the slower system checks
        report = run_system_checks()
        report = PreflightReport(report.checks + tuple(target_part))
        if args.json:
            import json

            json.dump(report.to_json(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print_table(report.checks)
        return 0


def print_table(checks) -> None:
    import shutil
    import textwrap

    out = sys.stdout
    width = max(len(c.title) for c in checks) + 2
    columns = shutil.get_terminal_size((120, 24)).columns
    indent = " " * (width + 8)
    wrap = max(40, columns - len(indent))
    for check in checks:
        mark = MARKS.get(check.status, check.status)
        lines = textwrap.wrap(check.value, wrap, break_on_hyphens=False) or [""]
        out.write(f"{check.title:<{width}}{mark:<6}  {lines[0]}\n")
        for line in lines[1:]:
            out.write(f"{indent}{line}\n")
        if check.fix and check.status in ("no", "warn", "info"):
            for i, line in enumerate(textwrap.wrap(check.fix, wrap, break_on_hyphens=False)):
                out.write(f"{indent}{'-> ' if i == 0 else '   '}{line}\n")


COMMAND = CheckCommand()
