"""`hwprof report`: top functions, call graphs, folded stacks and per-function ratios from a recording."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hwprof report                            # the newest recording in the store: top functions, self and total
  hwprof report -i perf.data               # any perf.data file, from hwprof or from perf record
  hwprof report record-20260101-120000-ab12cd --no-children --sort dso,symbol
  hwprof report --sort comm,pid            # where the samples went, by process
  hwprof report --pid 1234 --time 1,3      # one process, seconds 1 to 3 of the capture
  hwprof report --call-graph               # caller-first tree with percentages
  hwprof report --folded > out.folded      # FlameGraph's 'a;b;c N' lines (flamegraph.pl, speedscope)
  hwprof report --folded --weight page-faults   # weight stacks by a group member's deltas
  hwprof report --json | jq .rows[0]
  hwprof report --html profile.html        # a self-contained flame graph page
  hwprof report --format pprof -o cpu.pb.gz    # any export format: folded, speedscope, pprof, html
  hwprof report --off-cpu                  # (record --off-cpu) where threads blocked, by stack and state
  hwprof report --off-cpu --folded --min-block 1000   # folded, weights in microseconds, blocks >= 1 ms
  hwprof report --wall                     # on-CPU + off-CPU time per stack, and wall time per thread
"""


class ReportCommand:
    name = "report"
    help = "show a recording: top functions, call graph, folded stacks, ratios"
    description = (
        "Decode and symbolize a recording (the newest in the store by default, a store id, or -i FILE) and show "
        "its top functions by self and total share, the event, sample and lost counts, and how many stacks were "
        "complete. With group reads in the samples, adds per-function ratios (IPC, miss rates, MPKI, or each "
        "member per leader for software groups)."
    )
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", nargs="?", help="store id of the recording (default: the newest)")
        parser.add_argument("-i", "--input", metavar="FILE", help="a perf.data file to read instead of the store")
        parser.add_argument("--event", help="which sampling event to report when the file has several")
        from hwprof.commands._fleet import add_store_options

        add_store_options(parser)
        sel = parser.add_argument_group("selection")
        sel.add_argument("--sort", default="symbol", metavar="KEYS",
                         help="comma list of symbol, dso, pid, tid, comm (default: symbol)")
        sel.add_argument("--pid", metavar="PID[,PID]", help="only these processes")
        sel.add_argument("--tid", metavar="TID[,TID]", help="only these threads")
        sel.add_argument("--comm", metavar="NAME[,NAME]", help="only threads with these names")
        sel.add_argument("--time", metavar="START,END", help="seconds from the first sample, or percentages")
        sel.add_argument("--weight", default="samples", help="samples, period or a group member (default: samples)")
        children = sel.add_mutually_exclusive_group()
        children.add_argument("--children", dest="children", action="store_true", default=None,
                              help="show total (self + callees) shares, sorted by them (default with stacks)")
        children.add_argument("--no-children", dest="children", action="store_false",
                              help="self shares only")
        off = parser.add_argument_group("off-CPU (recordings of 'hwprof record --off-cpu')")
        view = off.add_mutually_exclusive_group()
        view.add_argument("--off-cpu", action="store_true",
                          help="time blocked per stack, split by task state (folded weights in microseconds)")
        view.add_argument("--wall", action="store_true",
                          help="on-CPU time (samples x period) plus off-CPU time per stack, and per thread")
        off.add_argument("--min-block", type=float, default=0.0, metavar="USEC",
                         help="leave out blocks shorter than USEC microseconds")
        out = parser.add_argument_group("output")
        mode = out.add_mutually_exclusive_group()
        mode.add_argument("--call-graph", action="store_true", help="caller-first tree with total percentages")
        mode.add_argument("--folded", action="store_true", help="folded stacks, one line per unique stack")
        mode.add_argument("--json", action="store_true", help="the report as one JSON document")
        mode.add_argument("--html", metavar="FILE", help="write a self-contained HTML flame graph page")
        mode.add_argument("--format", metavar="NAME",
                          help="export in this format (folded, speedscope, pprof, html: hwprof.web.export's "
                               "registry), to stdout or -o FILE")
        out.add_argument("-o", "--output", metavar="FILE", help="with --format: write the export here")
        out.add_argument("--limit", type=int, default=50, metavar="N", help="rows to show (0: all; default 50)")
        out.add_argument("--percent-limit", type=float, default=0.0, metavar="PCT",
                         help="hide rows below PCT percent (call graph: default 0.5)")
        sym = parser.add_argument_group("symbols")
        sym.add_argument("--debug-dir", action="append", default=[], metavar="DIR", help="extra debug-file dirs")
        sym.add_argument("--symfs", metavar="DIR", help="look for binaries under DIR (a copy of the target's /)")
        sym.add_argument("--no-debuginfod", action="store_true", help="never ask debuginfod servers")
        sym.add_argument("--no-demangle", action="store_true", help="keep C++/Rust names mangled")
        sym.add_argument("--raw", action="store_true", help="no symbolization (module+offset only)")
        parser.add_argument("-v", "--verbose", action="store_true", help="show symbolizer warnings")

    def run(self, args: argparse.Namespace) -> int:
        import json
        import logging
        import sys
        from pathlib import Path

        import numpy as np

        from hwprof.errors import HwprofError
        from hwprof.offcpu.stage import stages_for
        from hwprof.offcpu.views import has_offcpu, offcpu_summary, select_samples, view_selection
        from hwprof.pipeline import decode_file, load_profile
        from hwprof.report import ReportOptions, build_report, render_call_graph, render_text, sample_mask
        from hwprof.report import sample_weights as weights_for

        logging.basicConfig(format="hwprof report: warning: %(message)s")
        logging.getLogger("hwprof.symbolize").setLevel(logging.WARNING if args.verbose else logging.ERROR)
        symbolizer = None
        if not args.raw:
            from hwprof.symbolize import Symbolizer

            symbolizer = Symbolizer(debug_dirs=tuple(args.debug_dir), symfs=args.symfs,
                                    debuginfod=not args.no_debuginfod, demangle=not args.no_demangle)
        if args.input and args.id:
            raise HwprofError("give a store id or -i FILE, not both", exit_code=2)
        from hwprof.commands._fleet import fleet_profile, wants_fleet

        fleet = wants_fleet(args)
        if fleet:
            if args.input or args.id:
                raise HwprofError("--store reports the fleet store: no id or -i FILE with it", exit_code=2)
            comms = tuple(c for c in (args.comm or "").split(",") if c)
            profile, source = fleet_profile(args, _ints(args.pid, "--pid"), comms)
        elif args.input:
            path = Path(args.input)
            if not path.exists():
                raise HwprofError(f"no such file: {path}")
            stages = stages_for(path) + _raw_stages(args, f"{path}.jit")
            profile = decode_file(path, symbolizer, args.event, stages=stages, stacks=_stacks_needed(args, stages))
            source = str(path)
        else:
            from hwprof.store import ProfileStore

            store = ProfileStore()
            entry = store.get(args.id) if args.id else store.latest("record")
            if entry.kind != "record":
                raise HwprofError(f"{entry.id} is a {entry.kind} entry, not a recording")
            data = store.data_path(entry)
            stages = stages_for(data)
            if symbolizer is None:
                stages += _raw_stages(args, f"{data}.jit")
                profile = decode_file(data, None, args.event, stages=stages, stacks=_stacks_needed(args, stages))
            else:
                profile = load_profile(store, entry, symbolizer, args.event, stages=stages,
                                       stacks=_stacks_needed(args, stages))
            source = entry.id
        from hwprof.terminal import printable

        for note in profile.meta.notes:  # every mode: --folded and --json output must stay clean, not silent
            print(f"hwprof report: warning: {printable(note)}", file=sys.stderr)
        view = "off-cpu" if args.off_cpu else "wall" if args.wall else "on-cpu"
        if args.min_block < 0:
            raise HwprofError(f"--min-block must not be negative, got {args.min_block}", exit_code=2)
        offcpu_lines: list[str] = []
        offcpu_json: dict = {}
        if view != "on-cpu" or has_offcpu(profile):
            view_mask, _ = view_selection(profile, view, args.min_block)
            offcpu_lines, offcpu_json = offcpu_summary(profile, view, view_mask)
            profile = select_samples(profile, view_mask)
            if view != "on-cpu" and args.weight == "samples":
                args.weight = "period"  # nanoseconds: blocked time, and the time clock's period
        sort = tuple(k.strip() for k in args.sort.split(",") if k.strip())
        has_stacks = bool(profile.n_samples) and bool(np.any(profile.sample_end != 3))
        children = args.children if args.children is not None else has_stacks
        opts = ReportOptions(sort=sort or ("symbol",), pids=() if fleet else _ints(args.pid, "--pid"),
                             tids=_ints(args.tid, "--tid"),
                             comms=() if fleet else tuple(c for c in (args.comm or "").split(",") if c),
                             time=None if fleet else args.time,
                             children=children, weight=args.weight, limit=max(0, args.limit),
                             min_percent=args.percent_limit)
        if args.output is not None and not args.format:
            raise HwprofError("-o goes with --format (or use --html FILE)", exit_code=2)
        export_name = "folded" if args.folded else "html" if args.html else args.format
        if export_name:
            # Every export goes through the one registry the web view uses (hwprof.web.export).
            from hwprof.web.export import ExportView, exporter

            chosen = exporter(export_name)
            mask = sample_mask(profile, opts)
            weights = weights_for(profile, opts.weight)
            if view != "on-cpu" and args.weight == "period":
                weights = weights / 1000.0  # microseconds, as bcc's offcputime folds them
            data = chosen.render(profile, ExportView(mask, weights, source))
            target = args.html or args.output
            if target == "":
                raise HwprofError("-o needs a file name", exit_code=2)
            if target:
                try:
                    Path(target).write_bytes(data)
                except OSError as exc:
                    raise HwprofError(f"cannot write {target}: {exc.strerror}") from None
                print(f"wrote {target}", file=sys.stderr)
            elif chosen.media_type.startswith(("text/", "application/json")):
                sys.stdout.write(data.decode("utf-8", "replace"))  # through the CLI's terminal escaping
            elif sys.stdout.isatty():
                raise HwprofError(f"{chosen.name} is binary: write it with -o FILE", exit_code=2)
            else:
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
            return 0
        if args.call_graph:
            mask = sample_mask(profile, opts)
            weights = weights_for(profile, opts.weight)
            report = build_report(profile, ReportOptions(**{**opts.__dict__, "limit": 0}), source)
            sys.stdout.write(render_text(report).split("\n#\n", 1)[0] + "\n#\n")
            sys.stdout.write(render_call_graph(profile, mask, weights, args.percent_limit or 0.5))
            return 0
        report = build_report(profile, opts, source)
        if args.json:
            document = report.to_json()
            if offcpu_json:
                document["off_cpu"] = offcpu_json
            json.dump(document, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            sys.stdout.write("".join(line + "\n" for line in offcpu_lines))
            sys.stdout.write(render_text(report))
        return 0


def _stacks_needed(args: argparse.Namespace, stages: list) -> str:
    """A self table (--no-children as a table or JSON) needs each stack's leaf and outermost frame only: decoding
    just those is what makes it cheap ("leaf"); everything else needs whole stacks."""
    whole = (args.children is not False or args.folded or args.call_graph or args.html or args.format or stages
             or getattr(args, "off_cpu", False) or getattr(args, "wall", False))
    return "full" if whole else "leaf"


def _ints(text: str | None, option: str) -> tuple[int, ...]:
    from hwprof.errors import HwprofError

    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise HwprofError(f"{option} expects comma-separated numbers, got {text!r}") from None


COMMAND = ReportCommand()


def _raw_stages(args, jit_dir: str) -> list:
    """--raw names nothing, but --call-graph dwarf stacks are still unwound (unwinding is not symbolization)."""
    if not args.raw:
        return []
    from hwprof.symbolize import Symbolizer
    from hwprof.unwind.dwarf_stage import unwinding_stage

    stage = unwinding_stage(Symbolizer(debug_dirs=tuple(args.debug_dir), symfs=args.symfs,
                                       debuginfod=not args.no_debuginfod, demangle=False), jit_dir)
    return [stage] if stage is not None else []
