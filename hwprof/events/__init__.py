"""Event catalog and parser: every string `perf stat -e` accepts, encoded the way perf encodes it.

Import cost matters (every CLI start): sysfs and tracefs are only read when a string needs them, and the parser
(with the event specs it makes) is imported on first use of its names below (PEP 562), not by importing this
package for a submodule: `hwprof list tracepoint`, or another model's `list vendor`, never parse a string.
"""

from __future__ import annotations

# name -> the submodule defining it, imported when the name is first used (`from hwprof.events import parse_events`)
_LAZY = {"EventParseError": "parser", "parse_event": "parser", "parse_events": "parser", "EventGroup": "spec",
         "EventSpec": "spec"}
TYPE_CHECKING = False
if TYPE_CHECKING:
    from hwprof.events.parser import EventParseError, parse_event, parse_events
    from hwprof.events.spec import EventGroup, EventSpec


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

# perf stat's default set (tools/perf/builtin-stat.c): software events first, then hardware events where
# the CPU has them. stalled-cycles-* are added only where the CPU PMU advertises them in sysfs.
DEFAULT_STAT_EVENTS: tuple[str, ...] = (
    "duration_time", "task-clock", "context-switches", "cpu-migrations", "page-faults",
    "cycles", "stalled-cycles-frontend", "stalled-cycles-backend", "instructions", "branches", "branch-misses",
)
# perf stat -d, -dd, -ddd add these, level by level.
DETAILED_STAT_EVENTS: tuple[tuple[str, ...], ...] = (
    ("L1-dcache-loads", "L1-dcache-load-misses", "LLC-loads", "LLC-load-misses"),
    ("L1-icache-loads", "L1-icache-load-misses", "dTLB-loads", "dTLB-load-misses", "iTLB-loads", "iTLB-load-misses"),
    ("L1-dcache-prefetches", "L1-dcache-prefetch-misses"),
)


def default_stat_events(detail: int = 0) -> tuple[str, ...]:
    """perf's default list for this machine: stalled-cycles-* only where sysfs `cpu/events/` lists them."""
    import os

    from hwprof.events.pmu import SYSFS_PMU_ROOT

    out = []
    for name in DEFAULT_STAT_EVENTS:
        if name.startswith("stalled-cycles-") and not os.path.exists(os.path.join(SYSFS_PMU_ROOT, "cpu", "events",
                                                                                  name)):
            continue
        out.append(name)
    for level in DETAILED_STAT_EVENTS[: max(0, detail)]:
        out.extend(level)
    return tuple(out)


def catalog(*args, **kwargs):
    """Every event this machine knows (see hwprof.events.catalog.build_catalog)."""
    from hwprof.events.catalog import build_catalog

    return build_catalog(*args, **kwargs)


__all__ = [
    "DEFAULT_STAT_EVENTS", "DETAILED_STAT_EVENTS", "EventGroup", "EventParseError", "EventSpec", "catalog",
    "default_stat_events", "parse_event", "parse_events",
]
