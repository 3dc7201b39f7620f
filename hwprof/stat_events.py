"""What `hwprof stat` and `hwprof.count` count: the user's event lists, perf's default set, top-down inputs.

Kept out of the CLI so the Python API shares it; the event parser loads only when a list is parsed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hwprof.errors import HwprofError
from hwprof.perf.abi import PerfType


def parse_groups(event_text: Sequence[str], topdown: bool = False, detailed: int = 0) -> list:
    """Groups to count: the user's -e lists, or perf's default set for this machine (-d adds cache events, as
    perf's); plus --topdown's."""
    from hwprof.events import default_stat_events, parse_events

    groups = []
    if event_text:
        for text in event_text:
            groups.extend(parse_events(text))
    else:
        # duration_time is in perf's list for its metric code only; perf 6.1 does not print it, nor do we.
        groups.extend(parse_events(",".join(e for e in default_stat_events(detailed) if e != "duration_time")))
    if topdown:
        groups.append(topdown_group())
    return groups


def topdown_group():
    """Top-down level 1 inputs for this CPU, as one group (they must be scheduled together to add up)."""
    from hwprof.events import EventGroup, EventSpec, parse_events
    from hwprof.metrics import AMD_TOPDOWN
    from hwprof.perf.attr import PerfEventAttr

    if os.path.exists("/sys/bus/event_source/devices/cpu/events/topdown-retiring"):
        return parse_events("{slots,topdown-retiring,topdown-bad-spec,topdown-fe-bound,topdown-be-bound}")[0]
    vendor, family, model = cpu_identity()
    if vendor == "AuthenticAMD" and (family > 25 or family == 25 and model >= 0x10):
        # amdzen4/pipeline.json encodings; raw config: event[7:0], umask[15:8], event[11:8] at bits 32-35.
        configs = (0x76, 0xC1, 0x07AA, 0x1_0000_01A0, 0x1_0000_1EA0)
        events = tuple(
            EventSpec(name, PerfEventAttr(type=PerfType.RAW, config=config), "cpu", is_hardware=True)
            for name, config in zip(AMD_TOPDOWN, configs, strict=True)
        )
        return EventGroup(events, True)
    raise HwprofError(
        f"top-down level 1 needs Intel perf-metrics (sysfs cpu/events/topdown-*) or AMD Zen 4 or newer; "
        f"this CPU is {vendor} family {family} model {model}")


def cpu_identity() -> tuple[str, int, int]:
    from hwprof.system.cpus import first_cpu

    fields = first_cpu()
    try:
        return fields.get("vendor_id", "unknown"), int(fields.get("cpu family", 0)), int(fields.get("model", 0))
    except ValueError:
        return fields.get("vendor_id", "unknown"), 0, 0
