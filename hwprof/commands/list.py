"""hwprof list: the events this machine knows, like `perf list`, each marked by whether it opens here."""

from __future__ import annotations

import argparse
import sys

from hwprof.errors import HwprofError

EPILOG = """\
examples:
  hwprof list                       # everything, each event opened once to show whether it works here
  hwprof list hw cache              # generic hardware events and the hardware-cache grid
  hwprof list sw                    # software events (always available)
  hwprof list tracepoint 'sched:*'  # tracepoints matching a glob (each one opened)
  hwprof list pmu                   # sysfs PMU events such as msr/tsc/ and power/energy-pkg/
  hwprof list --openable cache      # only what can be counted here
  hwprof list --json | jq '.[] | select(.openable)'
  hwprof list cache miss            # cache events (generic and this CPU model's) that mention "miss"
  hwprof list vendor                # every named event of this CPU model, by topic
  PERF_CPUID=GenuineIntel-6-8F-8 hwprof list memory   # another model's events (listed, not opened)
  hwprof list metric TopdownL1      # the vendor's metrics and metric groups (hwprof stat -M NAME)
  hwprof list --refresh-perfmon ~/src/perfmon        # newer Intel event data from a perfmon checkout
"""

# perf list's spellings of the kinds, and ours.
KIND_ALIASES = {
    "hw": "hardware", "hardware": "hardware", "cache": "cache", "hwcache": "cache",
    "sw": "software", "software": "software", "tool": "tool", "pmu": "pmu", "kernel": "pmu",
    "tracepoint": "tracepoint", "tp": "tracepoint", "breakpoint": "breakpoint", "bp": "breakpoint", "raw": "raw",
    "vendor": "vendor", "metric": "metric", "metrics": "metric", "metricgroup": "metric",
    "metricgroups": "metric",
}
# Vendor topics a word selects (perf list's spellings): the word also selects these topics' named events.
TOPIC_WORDS = {
    "cache": "Cache", "memory": "Memory", "pipeline": "Pipeline", "frontend": "Frontend", "branch": "Branch",
    "floating-point": "Floating point", "fp": "Floating point", "virtual-memory": "Virtual memory",
    "tlb": "Virtual memory", "other": "Other", "recommended": "Recommended",
    "branch-prediction": "Branch prediction", "decode": "Decode", "load-store": "Load-store", "execution": "Execution",
}
TITLES = {
    "hardware": "Hardware events [generic, need a CPU PMU]",
    "cache": "Hardware cache events [need a CPU PMU]",
    "software": "Software events [kernel]",
    "tool": "Tool events [measured by hwprof]",
    "pmu": "Kernel PMU events [sysfs]",
    "tracepoint": "Tracepoint events [tracefs]",
    "breakpoint": "Hardware breakpoints",
    "raw": "Raw CPU events",
    "vendor": "Named events of this CPU model",
    "metric": "Metrics of this CPU model",
}


class ListCommand:
    name = "list"
    help = "list the events this machine has, marking which ones open here"
    description = ("List hardware, cache, software, tool, sysfs PMU and tracepoint events, as perf list does. "
                   "Each event is opened (and closed at once) as the calling user to show whether it can be "
                   "counted here, and why not; a trailing glob filters by name.")
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("filters", nargs="*", metavar="KIND|GLOB",
                            help="kinds (hw, cache, sw, tool, pmu, tracepoint, breakpoint, raw) and/or a name glob")
        parser.add_argument("--json", action="store_true", help="print a JSON list of events")
        parser.add_argument("--no-probe", action="store_true", help="do not try to open the events")
        parser.add_argument("--openable", action="store_true", help="show only events that open here")
        parser.add_argument("-v", "--verbose", action="store_true", help="show the encoding of each event")
        parser.add_argument("--refresh-perfmon", metavar="PERFMON_DIR",
                            help="rebuild the Intel event data from a newer perfmon checkout (github.com/intel/"
                                 "perfmon) into your data folder; it is used from then on")

    def run(self, args: argparse.Namespace) -> int:
        from hwprof.events.catalog import KINDS, build_catalog

        if args.refresh_perfmon:
            return _refresh(args.refresh_perfmon)
        kinds: list[str] = []
        patterns: list[str] = []
        words: list[str] = []
        topics: list[str] = []
        for item in args.filters:
            if item in KIND_ALIASES:
                kinds.append(KIND_ALIASES[item])
            if item.lower() in TOPIC_WORDS:
                topics.append(TOPIC_WORDS[item.lower()])
                if "vendor" not in kinds:
                    kinds.append("vendor")
            if item in KIND_ALIASES or item.lower() in TOPIC_WORDS:
                continue
            if any(c in item for c in "*?[:/"):
                patterns.append(item)
            else:
                words.append(item)
        if len(patterns) > 1:
            raise HwprofError(f"one name glob at most (got {' '.join(patterns)}); "
                              f"kinds are: {', '.join(sorted(KIND_ALIASES))}")
        if words and not patterns and len(words) == 1 and not kinds:
            patterns, words = words, []  # one plain word: perf list's name search, as before
        entries = build_catalog(tuple(k for k in KINDS if k in kinds) or KINDS, probe=not args.no_probe,
                                pattern=patterns[0] if patterns else None, words=tuple(words), topics=tuple(topics),
                                encodings=args.verbose or args.json)
        if args.openable:
            entries = [e for e in entries if e.openable is not None and e.openable.ok]
        if args.json:
            import json

            json.dump([_as_json(e) for e in entries], sys.stdout, indent=1)
            sys.stdout.write("\n")
            return 0
        tracepoint_note = ""
        if "tracepoint" in (kinds or KINDS) and not any(e.kind == "tracepoint" for e in entries):
            from hwprof.events.tracefs import tracefs_status

            path, why = tracefs_status()
            if path is None:
                tracepoint_note = f"tracepoints are not listed: {why}"
        if not entries:
            wanted = " ".join(patterns + words)
            raise HwprofError(tracepoint_note or "no event matches" + (f" '{wanted}'" if wanted else ""))
        _print_table(entries, args.verbose, tuple(kinds) or KINDS)
        if "pmu" in kinds or args.verbose and not kinds:
            _print_pmu_terms()
        if tracepoint_note:
            sys.stdout.write(f"\n{tracepoint_note}\n")
        return 0


def _as_json(entry) -> dict:
    out = {"name": entry.name, "kind": entry.kind, "aliases": list(entry.aliases), "pmu": entry.pmu,
           "description": entry.description, "unit": entry.unit, "encoding": entry.encoding, "topic": entry.topic}
    if entry.openable is not None:
        out.update(openable=entry.openable.ok, user_space_only=entry.openable.user_only,
                   reason=entry.openable.reason)
    return out


def _print_table(entries, verbose: bool, kinds: tuple[str, ...]) -> None:
    lines: list[str] = []  # one write per section: ~2,600 lines through the escaping stream cost 15 ms one by one
    write = lines.append
    # one pass over the entries (by kind, each label made once): ~2,300 tracepoints are most of them
    by_kind: dict[str, list] = {}
    labels: dict[int, str] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
        labels[id(entry)] = _label(entry)
    width = min(48, max(map(len, labels.values())) + 2)
    for kind in kinds:
        section = by_kind.get(kind)
        if not section:
            continue
        if kind in ("vendor", "metric"):
            _print_vendor(section, kind, verbose)
            continue
        write(f"\n{TITLES[kind]}\n")
        reasons = {e.openable.reason for e in section if e.openable is not None and not e.openable.ok}
        shared_reason = len(reasons) == 1 and all(e.openable is not None and not e.openable.ok for e in section)
        for entry in section:
            status = f"[{entry.openable.label}]" if entry.openable is not None else ""
            line = f"  {labels[id(entry)]:<{width}} {status:<26} {entry.description}"
            if entry.unit:
                line += f" ({entry.unit})"
            if verbose and entry.encoding:
                line += f"  <{entry.encoding}>"
            write(line.rstrip() + "\n")
            if entry.openable is not None and not entry.openable.ok and not shared_reason:
                write(f"  {'':<{width}}   why: {entry.openable.reason}\n")
        if shared_reason:
            write(f"  why not: {reasons.pop()}\n")
        elif kind == "tracepoint" and section[0].openable is not None and "probed with" in section[0].openable.reason:
            write(f"  ({section[0].openable.reason})\n")
        sys.stdout.write("".join(lines))
        lines.clear()


def _print_vendor(section, kind: str, verbose: bool) -> None:
    """Named events (or metrics) under the vendor's topics, each event marked by whether it opens here."""
    from hwprof.events.vendor_catalog import model_title

    out = sys.stdout
    out.write(f"\n{model_title(kind)}\n")
    width = min(56, max(len(e.name) for e in section) + 2)
    reasons = {e.openable.reason for e in section if e.openable is not None and not e.openable.ok}
    shared = len(reasons) == 1 and all(e.openable is not None and not e.openable.ok for e in section)
    topics: dict[str, list] = {}
    for entry in section:
        topics.setdefault(entry.topic or "Other", []).append(entry)
    for topic in sorted(topics):
        out.write(f" {topic}:\n")
        for entry in sorted(topics[topic], key=lambda e: e.name):
            status = f"[{entry.openable.label}]" if entry.openable is not None else ""
            line = f"  {entry.name:<{width}} {status:<6} {entry.description}"
            if kind == "metric" and entry.aliases:
                line += f" (groups: {', '.join(entry.aliases)})"
            if verbose and entry.encoding:
                line += f"  <{entry.encoding}>"
            out.write(line.rstrip() + "\n")
            if entry.openable is not None and not entry.openable.ok and not shared:
                out.write(f"  {'':<{width}}   why: {entry.openable.reason}\n")
    if shared:
        out.write(f"  why not: {reasons.pop()}\n")


def _refresh(source: str) -> int:
    import os

    from hwprof.events.perfmon_build import build

    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    target = os.path.join(base, "hwprof", "perfmon")
    index = build(source, target)
    sys.stdout.write(f"perfmon {index['revision'][:12]}: {len(index['mapfile'])} mapfile rows written to {target}; "
                     "hwprof uses them from now on (delete the folder to go back to the shipped data)\n")
    return 0


def _print_pmu_terms() -> None:
    """What `pmu/term=value,.../` may say for each PMU here: its sysfs format/ files."""
    from hwprof.events.pmu import PmuRegistry

    pmus = [p for p in PmuRegistry().pmus.values() if p.formats]
    if not pmus:
        return
    sys.stdout.write("\nPMU terms [sysfs format/: pmu/term=value,.../]\n")
    for pmu in pmus:
        terms = ", ".join(f"{name}={fmt.target}:" + ",".join(f"{lo}-{hi}" if hi != lo else str(lo)
                                                           for lo, hi in fmt.bits)
                          for name, fmt in pmu.formats.items())
        sys.stdout.write(f"  {pmu.name} (type {pmu.type}): {terms}\n")


def _label(entry) -> str:
    return " OR ".join((entry.name, *entry.aliases)) if entry.kind != "pmu" else entry.name


COMMAND = ListCommand()
