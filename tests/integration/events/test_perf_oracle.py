"""Encodings must equal perf's: `perf stat -vv -e EVENT true` prints the attr perf builds for a string, even
for events this machine cannot open. hwprof's attr for the same string must match it field by field."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from hwprof.errors import HwprofError
from hwprof.events import parse_events

PERF = shutil.which("perf")
pytestmark = [
    pytest.mark.skipif(PERF is None, reason="perf (Debian package linux-perf) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="tracepoint ids in tracefs are readable by root only"),
]

COMPARED = ("type", "config", "config1", "config2", "config3", "bp_type", "exclude_user", "exclude_kernel",
            "exclude_hv", "exclude_idle", "exclude_host", "exclude_guest", "precise_ip", "pinned", "exclusive")

ORACLE_STRINGS = [
    # generic hardware events and aliases (no CPU PMU here: perf prints the attr, then fails to open)
    "cycles", "cpu-cycles", "instructions", "cache-references", "cache-misses", "branches", "branch-instructions",
    "branch-misses", "bus-cycles", "stalled-cycles-frontend", "idle-cycles-backend", "ref-cycles",
    # the hardware-cache grid, canonical and alias spellings
    "L1-dcache-loads", "L1-dcache-load-misses", "L1-dcache-stores", "L1-dcache-prefetch-misses",
    "L1-icache-load-misses", "LLC-loads", "LLC-store-misses", "dTLB-load-misses", "iTLB-loads",
    "branch-load-misses", "node-loads", "node-speculative-read", "l1d-loads", "L1-data-Reference-write",
    "LLC-load-miss", "L1-dcache-miss-load", "Data-TLB-loads", "bpc",
    # software and tool events
    "cpu-clock", "task-clock", "page-faults", "faults", "cs", "migrations", "minor-faults", "major-faults",
    "alignment-faults", "emulation-faults", "dummy", "bpf-output", "cgroup-switches", "duration_time",
    # raw
    "r1a8", "rABC", "r1a8:u",
    # sysfs PMU events: by alias, by bare alias name, by format term, by config term
    "msr/tsc/", "tsc", "msr/tsc/u", "msr/tsc/k", "msr/event=0x0/", "msr/config=0x3/",
    # tracepoints, with modifiers and a glob
    "sched:sched_switch", "syscalls:sys_enter_write", "syscalls:sys_enter_write:u", "sched:sched_switch:k",
    "sched:sched_wak*",
    # modifiers
    "cycles:u", "cycles:k", "cycles:h", "cycles:uk", "cycles:p", "cycles:pp", "cycles:ppp", "cycles:G",
    "cycles:H", "cycles:GH", "cycles:up", "cycles:kp", "cycles:I", "cycles:D", "instructions:uppp",
    "cycles:P", "cycles:S", "cycles:W", "cycles:e", "cycles:b", "cpu-clock:P",
    "task-clock:u", "page-faults:k", "cpu-clock:ppp", "L1-dcache-load-misses:Hp",
    # lists and groups
    "cpu-clock,page-faults:u", "{cpu-clock,task-clock}", "{cpu-clock:u,task-clock}:k", "{cpu-clock,page-faults}:I",
    "{task-clock,page-faults}:u", "{cycles,instructions}:u", "{cpu-clock,msr/tsc/}:H", "{cpu-clock,task-clock}:D",
    # hardware breakpoints
    "mem:0x1000", "mem:0x1000/2:w", "mem:0x1000:x:u",
]

# Strings perf rejects while parsing; hwprof must reject them too (with its own one-line message).
REJECTED_STRINGS = ["cycles:uu", "cycles:pppp", "rXYZ", "L1-icache-stores", "CYCLES", "cycles:u:k",
                    "msr/nosuchterm=1/", "nosuchpmu/event=1/", "sched:no_such_tracepoint", "cycles,,instructions",
                    "msr/tsc/:k", "branches-load-misses", "branches-refs"]

_FIELD_RE = re.compile(r"^\s+(\{[^}]*\}|\S+)\s+(\S+)")


def _value(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None  # symbolic values (sample_type IDENTIFIER) are not compared


def perf_attrs(event: str) -> list[dict[str, int]]:
    """The first attr perf tries for each event; retries after 'switching off <feature>' are its fallbacks."""
    out = subprocess.run([PERF, "stat", "-vv", "-e", event, "true"], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    blocks: list[dict[str, int]] = []
    retry = False
    lines = iter(text.splitlines())
    for line in lines:
        if "switching off" in line:
            retry = True
        if line.strip() != "perf_event_attr:":
            continue
        block: dict[str, int] = {}
        for field_line in lines:
            if field_line.startswith("-----"):
                break
            m = _FIELD_RE.match(field_line)
            if not m:
                continue
            key = m.group(1)
            if key.startswith("{"):
                key = key.strip("{} ").split(",")[-1].strip()  # "{ bp_addr, config1 }" -> config1
            value = _value(m.group(2))
            if value is not None:
                block[key] = value
        if not retry:
            blocks.append(block)
        retry = False
    return blocks


def hwprof_attrs(event: str) -> list[dict[str, int]]:
    out = []
    for group in parse_events(event):
        for spec in group.events:
            attr = spec.attr
            out.append({name: int(getattr(attr, name)) for name in COMPARED})
    return out


@pytest.fixture(scope="module")
def oracle() -> dict[str, list[dict[str, int]]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(ORACLE_STRINGS, pool.map(perf_attrs, ORACLE_STRINGS), strict=True))


def test_oracle_list_is_large_enough():
    assert len(ORACLE_STRINGS) >= 40


@pytest.mark.parametrize("event", ORACLE_STRINGS)
def test_encoding_matches_perf(event, oracle):
    perf_blocks = oracle[event]
    assert perf_blocks, f"perf printed no attr for {event!r}"
    ours = hwprof_attrs(event)
    # perf stops at the first group leader it cannot open, so it may print fewer attrs than the string has.
    assert len(perf_blocks) <= len(ours), (event, perf_blocks, ours)
    for index, perf_block in enumerate(perf_blocks):
        expected = {name: perf_block.get(name, 0) for name in COMPARED}
        assert ours[index] == expected, f"{event!r} event #{index}: hwprof {ours[index]} != perf {expected}"


@pytest.mark.parametrize("event", REJECTED_STRINGS)
def test_rejected_like_perf(event):
    perf_out = subprocess.run([PERF, "stat", "-e", event, "true"], capture_output=True, text=True, timeout=60)
    assert perf_out.returncode != 0, f"perf accepted {event!r}"
    with pytest.raises(HwprofError) as info:
        parse_events(event)
    message = str(info.value)
    assert "\n" not in message and message


def _random_strings(count: int, seed: int) -> list[str]:
    """Cache names spelled every way perf's alias tables allow, events and groups under random modifiers."""
    import random

    from hwprof.events import generic

    rng = random.Random(seed)
    caches = [alias for aliases in generic.CACHE_NAMES.values() for alias in aliases]
    words = [w for table in (generic.CACHE_OP_NAMES, generic.CACHE_RESULT_NAMES) for ws in table.values() for w in ws]
    mods = ["", "u", "k", "h", "uk", "kh", "G", "H", "Gu", "Hk", "pu", "ppk", "I", "uI", "GHp", "hG", "D", "e", "W"]
    software = ["task-clock", "cpu-clock", "page-faults", "cs", "minor-faults", "dummy"]
    out: set[str] = set()
    while len(out) < count:
        mod = rng.choice(mods)
        kind = rng.random()
        if kind < 0.6:
            text = "-".join([rng.choice(caches)] + [rng.choice(words) for _ in range(rng.randint(0, 2))])
        elif kind < 0.8:
            text = rng.choice(["cycles", "instructions", "r1a8", "sched:sched_switch", "syscalls:sys_enter_read"])
        else:
            members = [s + (":" + rng.choice(mods[1:]) if rng.random() < 0.4 else "") for s in rng.sample(software, 2)]
            text = "{" + ",".join(members) + "}"
        out.add(text + (":" + mod if mod else ""))
    return sorted(out)


def test_random_strings_match_perf():
    strings = _random_strings(150, seed=20261128)
    with ThreadPoolExecutor(max_workers=4) as pool:
        oracle = dict(zip(strings, pool.map(perf_attrs, strings), strict=True))
    mismatches = []
    for event in strings:
        perf_blocks = oracle[event]
        try:
            ours = hwprof_attrs(event)
        except HwprofError as exc:
            if perf_blocks:
                mismatches.append(f"{event}: hwprof rejects ({exc}), perf accepts")
            continue
        if not perf_blocks:
            mismatches.append(f"{event}: hwprof accepts, perf rejects")
            continue
        expected = [{name: block.get(name, 0) for name in COMPARED} for block in perf_blocks]
        if ours[: len(expected)] != expected:
            mismatches.append(f"{event}: hwprof {ours} != perf {expected}")
    assert not mismatches, "\n".join(mismatches[:10])
