"""Every event this machine knows, for `hwprof list`: symbolic events, the cache grid, sysfs PMU events and
tracepoints, each optionally probed by opening it (and closing it at once) as the calling user."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, replace

from hwprof.events import generic, tracefs
from hwprof.events.opening import Openability, try_open
from hwprof.events.pmu import PmuRegistry
from hwprof.perf.abi import PerfType
from hwprof.perf.attr import PerfEventAttr

KINDS = ("hardware", "cache", "vendor", "software", "tool", "pmu", "tracepoint", "breakpoint", "raw", "metric")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    pmu: str = ""
    unit: str = ""
    encoding: str = ""
    openable: Openability | None = None  # None: not probed
    topic: str = ""                      # vendor events and metrics: the vendor's topic or metric group


def _attr(type_: int, config: int = 0) -> PerfEventAttr:
    return PerfEventAttr(type=type_, config=config, exclude_guest=1)


def _symbolic(event: generic.SymbolicEvent, kind: str) -> tuple[CatalogEntry, PerfEventAttr]:
    entry = CatalogEntry(event.name, kind, event.description, event.aliases,
                         "cpu" if kind == "hardware" else "software" if kind == "software" else "tool",
                         event.unit, f"type={int(event.type)},config={event.config:#x}")
    return entry, _attr(event.type, event.config)


def build_catalog(kinds: tuple[str, ...] = KINDS, probe: bool = True, pattern: str | None = None,
                  pmus: PmuRegistry | None = None, tracefs_path: str | None = None,
                  words: tuple[str, ...] = (), topics: tuple[str, ...] = (),
                  encodings: bool = True) -> list[CatalogEntry]:
    """The events of the requested kinds whose name (or an alias) matches the glob `pattern`, and, for each of
    `words`, whose name or description contains it. `topics` limits vendor events to those topics.
    `encodings=False` skips reading what only the encoding column needs (every tracepoint's id)."""
    pmus = pmus or PmuRegistry()
    found: list[tuple[CatalogEntry, PerfEventAttr | None]] = []
    vendor_probe_reason: str | None = None
    if "vendor" in kinds or "metric" in kinds:
        from hwprof.events.vendor_catalog import metric_entries, vendor_entries

        if "vendor" in kinds:
            entries, vendor_probe_reason = vendor_entries(pmus, topics)
            found.extend(entries)
        if "metric" in kinds:
            found.extend((entry, None) for entry in metric_entries())
    if "hardware" in kinds:
        found.extend(_symbolic(e, "hardware") for e in generic.HARDWARE_EVENTS)
    if "cache" in kinds:
        for name, config in generic.cache_events():
            found.append((CatalogEntry(name, "cache", "hardware cache event", (), "cpu", "",
                                       f"type=3,config={config:#x}"), _attr(PerfType.HW_CACHE, config)))
    if "software" in kinds:
        found.extend(_symbolic(e, "software") for e in generic.SOFTWARE_EVENTS)
    if "tool" in kinds:
        found.extend((_symbolic(e, "tool")[0], None) for e in generic.TOOL_EVENTS)
    if "pmu" in kinds:
        for pmu in pmus.pmus.values():
            for alias in pmu.aliases.values():
                entry = CatalogEntry(f"{pmu.name}/{alias.name}/", "pmu", f"{pmu.name} PMU event ({alias.terms})",
                                     (alias.name,), pmu.name, alias.unit, alias.terms)
                found.append((entry, None))
    root = None
    if "tracepoint" in kinds:
        root = tracefs_path or tracefs.find_tracefs()
        if root is not None:
            # ids (the encodings) are read below, only for the tracepoints that need one
            template = CatalogEntry("", "tracepoint", "tracepoint", (), "tracepoint")
            found.extend((_with_field(template, "name", f"{system}:{name}"), None)
                         for system, name in tracefs.all_tracepoints(root))
    if "breakpoint" in kinds:
        found.append((CatalogEntry("mem:<addr>[/len][:access]", "breakpoint",
                                   "hardware breakpoint (access r, w, x; length 1, 2, 4, 8)", (), "breakpoint"),
                      None))
    if "raw" in kinds:
        found.append((CatalogEntry("rNNN", "raw", "raw CPU PMU event (hex config, see the CPU vendor's manual)",
                                   (), "cpu"), None))
    if pattern:
        found = [(e, a) for e, a in found if _matches(e, pattern)]
    for word in words:
        found = [(e, a) for e, a in found if _mentions(e, word)]
    if root is not None:
        tracepoint_count = sum(1 for e, _ in found if e.kind == "tracepoint")
        wanted_ids = encodings or (probe and tracepoint_count <= PROBE_EACH_TRACEPOINT_LIMIT)
        found = [_with_tracepoint_id(e, root) if e.kind == "tracepoint" and (wanted_ids or (
            probe and e.name == "sched:sched_switch")) else (e, a) for e, a in found]
    if not probe:
        return [e for e, _ in found]
    if vendor_probe_reason is not None:
        found = [(replace(e, openable=Openability(False, reason=vendor_probe_reason)), None)
                 if e.kind == "vendor" else (e, a) for e, a in found]
    elif not pmus.has_core_pmu():
        # Without a core PMU every named CPU event fails for the one reason: one open says it for all.
        first = next((e for e, _ in found if e.kind == "vendor"), None)
        if first is not None:
            shared_vendor = _probe(first, None, pmus, tracefs_path).openable
            if shared_vendor is not None and not shared_vendor.ok:
                found = [(_with_openable(e, shared_vendor), None) if e.kind == "vendor" else (e, a)
                         for e, a in found]
    tracepoints = [(e, a) for e, a in found if e.kind == "tracepoint"]
    shared: Openability | None = None
    if len(tracepoints) > PROBE_EACH_TRACEPOINT_LIMIT:
        # The first open of a tracepoint registers its probe (an RCU grace period, ~40 ms here): opening
        # thousands would take minutes. They share one permission model, so one open speaks for them all.
        entry, attr = next(((e, a) for e, a in tracepoints if e.name == "sched:sched_switch"), tracepoints[0])
        if attr is None:
            entry, attr = _with_tracepoint_id(entry, root)
        shared = _probe(entry, attr, pmus, tracefs_path).openable
        if shared is not None:
            shared = replace(shared, reason=(shared.reason + "; " if shared.reason else "")
                             + f"probed with {entry.name} (use a pattern to open each)")
    return [_with_openable(e, shared) if shared is not None and e.kind == "tracepoint"
            else _probe(e, a, pmus, tracefs_path) for e, a in found]


def _with_openable(entry: CatalogEntry, openable: Openability) -> CatalogEntry:
    return _with_field(entry, "openable", openable)


def _with_field(entry: CatalogEntry, name: str, value: object) -> CatalogEntry:
    """dataclasses.replace() for one field, without its per-call cost (it runs for ~2,300 tracepoints, twice):
    a new instance sharing the other fields' values, made without __init__ (copy.copy costs 4x this, the frozen
    __init__ 3x)."""
    out = object.__new__(CatalogEntry)
    fields = out.__dict__
    fields.update(entry.__dict__)
    fields[name] = value
    return out


PROBE_EACH_TRACEPOINT_LIMIT = 40


def _with_tracepoint_id(entry: CatalogEntry, root: str) -> tuple[CatalogEntry, PerfEventAttr | None]:
    system, _, name = entry.name.partition(":")
    ident = tracefs.tracepoint_id(root, system, name)
    if ident is None:
        return entry, None
    return replace(entry, encoding=f"type=2,config={ident:#x}"), _attr(PerfType.TRACEPOINT, ident)


def _matches(entry: CatalogEntry, pattern: str) -> bool:
    """A plain word matches anywhere in a name; a glob matches a whole name or its end (`sched_sw*`)."""
    pattern = pattern.lower()
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return any(fnmatch.fnmatchcase(name.lower(), pattern) or fnmatch.fnmatchcase(name.lower(), "*" + pattern)
               for name in (entry.name, *entry.aliases))


def _mentions(entry: CatalogEntry, word: str) -> bool:
    """`hwprof list cache miss`: every word must appear in the name, an alias, the topic or the description."""
    word = word.lower()
    return any(word in text.lower() for text in (entry.name, *entry.aliases, entry.topic, entry.description))


def _probe(entry: CatalogEntry, attr: PerfEventAttr | None, pmus: PmuRegistry,
           tracefs_path: str | None) -> CatalogEntry:
    if entry.kind == "tool":
        return replace(entry, openable=Openability(True, reason="measured by hwprof itself"))
    if entry.kind == "metric" or entry.openable is not None:
        return entry
    if entry.kind == "vendor":
        from hwprof.events.parser import EventParseError, EventParser
        from hwprof.events.vendor import current_model

        try:
            attr = EventParser(pmus=pmus, vendor=current_model()).parse(entry.name)[0].events[0].attr
        except EventParseError as exc:
            return replace(entry, openable=Openability(False, reason=str(exc)))
    if entry.kind == "pmu":
        from hwprof.events.parser import EventParseError, parse_event

        try:
            spec = parse_event(entry.name, pmus=pmus, tracefs_path=tracefs_path)
        except EventParseError as exc:
            return replace(entry, openable=Openability(False, reason=str(exc)))
        attr = spec.attr
        if spec.cpus is not None:
            # Package-scope PMUs count system-wide on their cpumask CPUs only.
            return replace(entry, openable=try_open(attr, entry.name, pid=-1, cpu=spec.cpus[0]))
    if attr is None:
        return entry
    result = try_open(attr, entry.name)
    if not result.ok and entry.kind == "pmu" and os.geteuid() == 0:
        result = try_open(attr, entry.name, pid=-1, cpu=0)
    return replace(entry, openable=result)
