"""The parser against perf's rules, on fake sysfs/tracefs trees (the real-perf comparison is the oracle test)."""

from __future__ import annotations

import pytest

from hwprof.events import parse_event, parse_events
from hwprof.events.generic import cache_events, parse_cache_event
from hwprof.events.parser import EventParseError, split_items
from hwprof.perf.abi import PerfType


def one(text, sysfs, fake_tracefs):
    return parse_event(text, pmus=sysfs, tracefs_path=fake_tracefs)


def test_split_items_keeps_terms_and_groups_together():
    assert split_items("cycles,{a,b}:u,cpu/event=1,umask=2/,mem:0x10/4:w") == [
        "cycles", "{a,b}:u", "cpu/event=1,umask=2/", "mem:0x10/4:w"]


@pytest.mark.parametrize("text, config", [
    ("cpu/event=0xc0,umask=0x1/", 0x1C0),
    ("cpu/event=0x3c,inv,cmask=1/", 0x3C | 1 << 23 | 1 << 24),
    ("cpu/cpu-cycles/", 0x3C),
    ("cpu/cpu-cycles,umask=0x2/", 0x23C),  # the user's terms refine an alias
    ("cpu/config=0x1234/", 0x1234),
    ("cpu/config=0x1200,event=0x34/", 0x1234),  # config terms first, format terms on top
    ("cpu/event=0x3c,event=0x2e/", 0x2E),  # a repeated term replaces its bits
    ("amd_like/event=0x1c0,umask=0x2/", 0xC0 | 0x2 << 8 | 0x1 << 32),  # split field: bits 0-7 then 32-35
])
def test_pmu_terms_encode_through_sysfs_format(text, config, sysfs, fake_tracefs):
    spec = one(text, sysfs, fake_tracefs)
    assert spec.attr.config == config
    assert spec.attr.type == (4 if text.startswith("cpu") else 11)
    assert spec.is_hardware == text.startswith("cpu")


def test_alias_with_config1_term(sysfs, fake_tracefs):
    spec = one("cpu/mem-loads/pp", sysfs, fake_tracefs)
    assert (spec.attr.config, spec.attr.config1, spec.attr.precise_ip) == (0x1CD, 3, 2)
    assert spec.name == "cpu/mem-loads/pp"


def test_scale_unit_and_cpumask_from_sysfs(sysfs, fake_tracefs):
    spec = one("power/energy-pkg/", sysfs, fake_tracefs)
    assert spec.attr.type == 23 and spec.attr.config == 2
    assert spec.scale == pytest.approx(2.3283064365386962890625e-10)
    assert spec.unit == "Joules"
    assert spec.cpus == (0,)
    assert not spec.is_hardware
    bare = one("energy-pkg", sysfs, fake_tracefs)
    assert (bare.attr.type, bare.attr.config, bare.unit, bare.name) == (23, 2, "Joules", "energy-pkg")
    assert one("cpu/topdown-retiring/", sysfs, fake_tracefs).scale == 4


def test_uncore_prefix_expands_to_every_instance(sysfs, fake_tracefs):
    groups = parse_events("uncore_imc/cas_count_read/", pmus=sysfs, tracefs_path=fake_tracefs)
    specs = [g.leader for g in groups]
    assert [s.attr.type for s in specs] == [30, 31]
    assert all(s.attr.config == 0x304 and s.scale == 64 and s.unit == "bytes" and s.cpus == (0, 4) for s in specs)


def test_name_period_and_freq_terms(sysfs, fake_tracefs):
    spec = one("cpu/event=0xc0,name=retired,period=100003/", sysfs, fake_tracefs)
    assert spec.name == "retired" and spec.sample_period == 100003 and spec.attr.sample_period == 0
    assert one("cpu-clock/freq=999/", sysfs, fake_tracefs).sample_freq == 999


@pytest.mark.parametrize("text, message", [
    ("cpu/evnt=1/", "unknown term 'evnt' for PMU 'cpu' (did you mean: event?"),
    ("cpu/event=0x1ff/", "too big for term 'event' (8 bits)"),
    ("cpuu/event=1/", "unknown PMU 'cpuu'"),
    ("cpu/event=zz/", "is not a number"),
    ("cpu/event=1", "missing '/'"),
    ("cyles", "unknown event 'cyles' (did you mean: cycles"),
    ("L1-dcache-lod-misses", "did you mean: L1-dcache-load-misses"),
    ("L1-icache-stores", "has no store operation"),
    ("iTLB-prefetches", "has no prefetch operation"),
    ("cycles:x", "unknown modifier letter 'x'"),
    ("cycles:uu", "repeats 'u'"),
    ("cycles:pppp", "maximum is 3"),
    ("sched:sched_swich", "did you mean: sched:sched_switch"),
    ("shed:sched_switch", "did you mean: sched:sched_switch"),
    ("{cycles,instructions", "unbalanced '{'"),
    ("{cycles,{instructions}}", "nested groups"),
    ("cycles,,instructions", "stray ','"),
    ("{cycles}x", "unexpected 'x' after group"),
    ("mem:0x1000/3", "length must be 1, 2, 4 or 8"),
    ("mem:0x1000:rx", "execute breakpoint"),
    ("msr/tsc/:u", "right after the closing '/'"),
    ("a:b:c:d", "too many ':'"),
])
def test_bad_strings_give_one_clear_line(text, message, sysfs, fake_tracefs):
    with pytest.raises(EventParseError) as info:
        parse_events(text, pmus=sysfs, tracefs_path=fake_tracefs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_no_cpu_pmu_is_explained(tmp_path, fake_tracefs):
    from hwprof.events.pmu import PmuRegistry

    (tmp_path / "msr").mkdir()
    (tmp_path / "msr" / "type").write_text("9")
    with pytest.raises(EventParseError, match="no CPU PMU"):
        parse_events("cpu/event=0xc0/", pmus=PmuRegistry(str(tmp_path)), tracefs_path=fake_tracefs)


def test_tracepoints_and_globs(sysfs, fake_tracefs):
    spec = one("sched:sched_switch:k", sysfs, fake_tracefs)
    assert (spec.attr.type, spec.attr.config, spec.is_tracepoint, spec.attr.exclude_user) == (2, 316, True, 1)
    names = sorted(g.leader.name for g in parse_events("syscalls:sys_*_write", pmus=sysfs,
                                                       tracefs_path=fake_tracefs))
    assert names == ["syscalls:sys_enter_write", "syscalls:sys_exit_write"]


def test_groups_leader_first_and_group_modifiers(sysfs, fake_tracefs):
    groups = parse_events("{cycles:u,instructions,sched:sched_switch}:kD,page-faults", pmus=sysfs,
                          tracefs_path=fake_tracefs)
    assert [g.is_group for g in groups] == [True, False]
    leader, member, tracepoint = groups[0].events
    assert leader.name == "cycles:ukD" and member.name == "instructions:kD"
    # perf's group modifier starts from each member's bits: cycles:u then k counts user and kernel.
    assert (leader.attr.exclude_user, leader.attr.exclude_kernel, leader.attr.exclude_hv) == (0, 0, 1)
    assert (member.attr.exclude_user, member.attr.exclude_kernel, member.attr.exclude_guest) == (1, 0, 1)
    assert leader.attr.pinned == 1 and member.attr.pinned == 0  # pinned belongs to the leader
    assert tracepoint.is_tracepoint and groups[1].leader.attr.config == 2


def test_several_strings_and_breakpoints(sysfs, fake_tracefs):
    groups = parse_events(["cycles", "mem:0x1000/2:w:u"], pmus=sysfs, tracefs_path=fake_tracefs)
    bp = groups[1].leader.attr
    assert (bp.type, bp.bp_type, bp.bp_addr, bp.bp_len, bp.exclude_kernel) == (PerfType.BREAKPOINT, 2, 0x1000, 2, 1)
    assert parse_event("mem:0x2000:x", pmus=sysfs, tracefs_path=fake_tracefs).attr.bp_len == 8


def test_tool_and_software_events(sysfs, fake_tracefs):
    duration = one("duration_time", sysfs, fake_tracefs)
    assert duration.is_tool and duration.unit == "ns"
    clock = one("task-clock", sysfs, fake_tracefs)
    assert (clock.pmu, clock.unit, clock.attr.config, clock.is_hardware) == ("software", "msec", 1, False)


def test_every_canonical_cache_name_parses_to_its_config():
    grid = cache_events()
    assert len(grid) == 2 * (3 + 2 + 3 + 3 + 1 + 1 + 3)  # valid ops per cache, access and miss each
    for name, config in grid:
        assert parse_cache_event(name) == config, name
    assert parse_cache_event("LLC") == 2 and parse_cache_event("cycles") is None


def test_raw_events(sysfs, fake_tracefs):
    spec = one("r01c0:k", sysfs, fake_tracefs)
    assert (spec.attr.type, spec.attr.config, spec.is_hardware) == (PerfType.RAW, 0x1C0, True)


def test_hybrid_cpu_expands_hardware_events_per_core_type(tmp_path, fake_tracefs):
    from hwprof.events.pmu import PmuRegistry

    for name, type_ in (("cpu_core", 4), ("cpu_atom", 10)):
        (tmp_path / name / "format").mkdir(parents=True)
        (tmp_path / name / "type").write_text(f"{type_}\n")
        (tmp_path / name / "format" / "event").write_text("config:0-7\n")
    pmus = PmuRegistry(str(tmp_path))
    cycles = [g.leader for g in parse_events("cycles:u", pmus=pmus, tracefs_path=fake_tracefs)]
    assert [(s.name, s.attr.type, s.attr.config) for s in cycles] == [
        ("cpu_core/cycles/u", 0, 4 << 32), ("cpu_atom/cycles/u", 0, 10 << 32)]
    assert all(s.attr.exclude_kernel for s in cycles)
    cache = [g.leader.attr for g in parse_events("LLC-load-misses", pmus=pmus, tracefs_path=fake_tracefs)]
    assert [(a.type, a.config) for a in cache] == [(3, 0x10002 | 4 << 32), (3, 0x10002 | 10 << 32)]
    raw = [g.leader.attr for g in parse_events("r1a8", pmus=pmus, tracefs_path=fake_tracefs)]
    assert [(a.type, a.config) for a in raw] == [(4, 0x1A8), (10, 0x1A8)]
    atom = parse_event("cpu_atom/cycles/", pmus=pmus, tracefs_path=fake_tracefs).attr
    assert (atom.type, atom.config) == (0, 10 << 32)


def test_typo_with_modifier_without_tracefs(sysfs, monkeypatch):
    import hwprof.events.tracefs as tf

    def unreadable():
        raise tf.TracefsError("tracepoints need tracefs: not readable")

    monkeypatch.setattr(tf, "require_tracefs", unreadable)
    with pytest.raises(EventParseError, match=r"unknown event 'cyles' \(did you mean: cycles\?\)"):
        parse_events("cyles:u", pmus=sysfs)
    with pytest.raises(EventParseError, match="tracepoints need tracefs"):
        parse_events("sched:sched_switch", pmus=sysfs)


def test_random_strings_never_escape_as_tracebacks(sysfs, fake_tracefs):
    """Whatever the user types, the parser answers with an event list or one HwprofError line."""
    import random

    from hwprof.errors import HwprofError

    rng = random.Random(7)
    pieces = [*"{},:/=rukhGHIpPSDWeb0x1a9-_*?. ", "cycles", "cpu", "power", "energy-pkg", "sched", "sched_switch",
              "event", "umask", "L1-dcache", "load", "misses", "config1", "period", "name", "mem:", "0x10",
              "uncore_imc"]
    parsed = 0
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        try:
            parse_events(text, pmus=sysfs, tracefs_path=fake_tracefs)
            parsed += 1
        except HwprofError as exc:
            assert str(exc) and "\n" not in str(exc), text
    assert parsed > 0


def test_generic_event_named_on_a_core_pmu(sysfs, fake_tracefs):
    # sysfs aliases win (cpu/instructions/ is event=0xc0 here); names sysfs lacks fall back to the generic encoding
    assert one("cpu/instructions/", sysfs, fake_tracefs).attr.config == 0xC0
    spec = one("cpu/branch-misses/u", sysfs, fake_tracefs)
    assert (spec.attr.type, spec.attr.config, spec.attr.exclude_kernel) == (PerfType.HARDWARE, 5, 1)
    assert one("cpu/LLC-load-misses/", sysfs, fake_tracefs).attr.config == 0x10002
    with pytest.raises(EventParseError, match="unknown term 'branch-misses' for PMU 'power'"):
        one("power/branch-misses/", sysfs, fake_tracefs)
