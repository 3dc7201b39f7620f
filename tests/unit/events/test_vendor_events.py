"""Named vendor events, resolved for CPU models this machine is not (perf's PERF_CPUID override).

Each model's every core event is encoded and checked field by field against the vendor's own record (the
shipped perfmon / perf JSON), decoding the config bits with the kernel's layout written out here
independently of hwprof's format tables; where libpfm4 knows the same event, its encoder must agree.
"""

from __future__ import annotations

import collections

import pytest

from hwprof.events import vendor as vendor_mod
from hwprof.events.cpuid import machine_cpuid, parse_cpuid
from hwprof.events.parser import EventParseError, EventParser
from hwprof.events.pmu import PmuRegistry
from hwprof.events.vendor import model_for

# Model strings as perf prints them ("Using CPUID ..."), one per microarchitecture under test.
INTEL_MODELS = {
    "SKX": "GenuineIntel-6-55-4",      # Skylake-SP
    "CLX": "GenuineIntel-6-55-7",      # Cascade Lake-SP (same model number, later stepping)
    "ICX": "GenuineIntel-6-6A-6",      # Ice Lake-SP
    "SPR": "GenuineIntel-6-8F-8",      # Sapphire Rapids
    "EMR": "GenuineIntel-6-CF-2",      # Emerald Rapids
    "ADL": "GenuineIntel-6-97-2",      # Alder Lake (hybrid: Golden Cove + Gracemont)
}
AMD_MODELS = {"amdzen2": "AuthenticAMD-23-31-0", "amdzen3": "AuthenticAMD-25-1-1", "amdzen4": "AuthenticAMD-25-11-1"}


def _parser(cpuid: str) -> EventParser:
    model = model_for(parse_cpuid(cpuid))
    assert model is not None, cpuid
    return EventParser(pmus=PmuRegistry("/nonexistent"), vendor=model)


def _decode_intel(config: int, config1: int) -> dict[str, int]:
    """arch/x86/events/intel/core.c formats: event 0-7, umask 8-15 (+ umask2 40-47), edge 18, any 21,
    inv 23, cmask 24-31."""
    return {"event": config & 0xFF, "umask": (config >> 8) & 0xFF | ((config >> 40) & 0xFF) << 8,
            "edge": (config >> 18) & 1, "any": (config >> 21) & 1, "inv": (config >> 23) & 1,
            "cmask": (config >> 24) & 0xFF, "config1": config1}


def _raw_int(text: str | None) -> int:
    return int(text.split(",")[0], 0) if text else 0


@pytest.mark.parametrize("model_name", sorted(INTEL_MODELS))
def test_every_intel_core_event_encodes_the_vendor_fields(model_name):
    parser = _parser(INTEL_MODELS[model_name])
    model = parser.vendor
    assert model.name == model_name
    checked = 0
    for pmu, stem in model.event_files.items():
        raw_events = vendor_mod._load(model.directory, stem)["events"]
        seen = set()
        for raw in raw_events:
            if raw["name"].upper() in seen or ":" in raw["name"]:
                continue  # duplicates, and perfmon's old matrix rows named 'OFFCORE_RESPONSE:request=...'
            if raw["name"].upper() in vendor_mod.FIXED_COUNTER_CODES:
                continue  # architectural codes instead of perfmon's pseudo-codes: test_fixed_counter_events

            seen.add(raw["name"].upper())
            groups = parser.parse(f"{pmu}/{raw['name']}/" if model.is_hybrid else raw["name"])
            spec = groups[0].events[0]
            assert spec.attr.type == 4
            got = _decode_intel(spec.attr.config, spec.attr.config1)
            want_msr = raw.get("msr", "").lower()
            want = {"event": _raw_int(raw.get("code")),
                    "umask": _raw_int(raw.get("umask")) | _raw_int(raw.get("umask_ext")) << 8,
                    "edge": _raw_int(raw.get("edge")), "any": _raw_int(raw.get("any")),
                    "inv": _raw_int(raw.get("inv")), "cmask": _raw_int(raw.get("cmask")),
                    "config1": _raw_int(raw.get("msr_value")) if want_msr in (
                        "0x3f6", "0x1a6", "0x1a7", "0x1a6,0x1a7", "0x3f7") else 0}
            assert got == want, raw["name"]
            assert spec.sample_period == (_raw_int(raw.get("period")) or None)
            checked += 1
    assert checked >= 300


@pytest.mark.parametrize("model_name", sorted(AMD_MODELS))
def test_every_amd_core_event_encodes_the_vendor_fields(model_name):
    parser = _parser(AMD_MODELS[model_name])
    model = parser.vendor
    assert model.name == model_name
    raw_events = vendor_mod._load(model.directory, model.event_files["cpu"])["events"]
    for raw in raw_events:
        spec = parser.parse(raw["EventName"])[0].events[0]
        config = spec.attr.config
        # arch/x86/events/amd/core.c: event=config:0-7,32-35, umask=config:8-15
        assert (config & 0xFF) | ((config >> 32) & 0xF) << 8 == int(raw["EventCode"], 16), raw["EventName"]
        assert (config >> 8) & 0xFF == int(raw.get("UMask", "0"), 16), raw["EventName"]
        assert config & ~0xF0000FFFF == 0
    assert len(raw_events) >= 190


# perfmon is newer than Debian's libpfm4 4.13: where the two disagree, perfmon changed the event after libpfm4
# copied it (or libpfm4 names a different event with the same name). Each difference is listed, so a new one
# fails the test.
KNOWN_LIBPFM_DIFFERENCES = {
    # libpfm4 keeps the pre-2019 STALL_CYCLES/TOTAL_CYCLES as aliases of UOPS_RETIRED:ALL (umask 0x1);
    # perfmon moved them onto RETIRE_SLOTS (umask 0x2).
    "SKX": {"UOPS_RETIRED.STALL_CYCLES", "UOPS_RETIRED.TOTAL_CYCLES"},
    "CLX": {"UOPS_RETIRED.STALL_CYCLES", "UOPS_RETIRED.TOTAL_CYCLES"},
    # libpfm4 encodes the TOPDOWN.*_SLOTS umasks without the 0xa4 event select fix-up perfmon made, and
    # MEM_LOAD_MISC_RETIRED.UC moved from 0xd4/0x04 (perfmon) vs libpfm's 0xc4 typo.
    "ICX": {"TOPDOWN.BACKEND_BOUND_SLOTS", "MEM_LOAD_MISC_RETIRED.UC"},
}


def _libpfm_differences(model_name: str, pfm_pmu: str) -> tuple[int, set[str]]:
    from hwprof.events.libpfm import LibpfmError, libpfm

    lib = libpfm()
    parser = _parser(INTEL_MODELS[model_name])
    agree, differ = 0, set()
    for event in parser.vendor.events():
        if event.fixed_counter is not None:
            continue  # perf's pseudo-encodings (event 0, umask = counter + 1); libpfm4 uses the GP codes
        head, _, tail = event.name.partition(".")
        try:
            encoded = lib.encode(f"{pfm_pmu}::{head}" + (f":{tail}" if tail else ""))
        except LibpfmError:
            continue  # not shared
        spec = parser.parse(event.name)[0].events[0]
        if (spec.attr.config, spec.attr.config1) == (encoded.config, encoded.config1):
            agree += 1
        else:
            differ.add(event.name)
    return agree, differ


@pytest.mark.parametrize(("model_name", "pfm_pmu"), [("SKX", "skx"), ("CLX", "clx"), ("ICX", "icx")])
def test_libpfm4_agrees_on_every_shared_core_event(model_name, pfm_pmu):
    pytest.importorskip("ctypes")
    from hwprof.events.libpfm import LibpfmError, libpfm

    try:
        libpfm()
    except LibpfmError as exc:
        pytest.skip(str(exc))
    agree, differ = _libpfm_differences(model_name, pfm_pmu)
    assert differ == KNOWN_LIBPFM_DIFFERENCES[model_name]
    assert agree >= 230


# Sapphire and Emerald Rapids (libpfm4 4.13 has one table, spr, for both). In every case Linux 6.12's perf JSON
# for sapphirerapids has perfmon's encoding, not libpfm4's: TOPDOWN.*_SLOTS lack libpfm4's event select 0xa4,
# ARITH.*DIV*_ACTIVE need cmask=1, UNKNOWN_BRANCH_CYCLES and UOPS_RETIRED.MS are frontend-MSR (config1)
# events with umasks 0x40/0x4, STORE_SAMPLE is umask 0x2, AMX_BUSY has no config1.
SPR_LIBPFM_DIFFERENCES = {
    "ARITH.IDIV_ACTIVE", "ARITH.INT_DIVIDER_ACTIVE", "EXE.AMX_BUSY", "INT_MISC.UNKNOWN_BRANCH_CYCLES",
    "MEM_TRANS_RETIRED.STORE_SAMPLE", "TOPDOWN.BACKEND_BOUND_SLOTS", "TOPDOWN.BAD_SPEC_SLOTS",
    "TOPDOWN.BR_MISPREDICT_SLOTS", "TOPDOWN.MEMORY_BOUND_SLOTS", "UOPS_RETIRED.MS",
}


def test_libpfm4_agrees_on_sapphire_and_emerald_rapids_except_perfmon_updates():
    from hwprof.events.libpfm import LibpfmError, libpfm

    try:
        libpfm()
    except LibpfmError as exc:
        pytest.skip(str(exc))
    for model_name in ("SPR", "EMR"):
        agree, differ = _libpfm_differences(model_name, "spr")
        assert agree >= 260
        assert differ == SPR_LIBPFM_DIFFERENCES, model_name


def test_libpfm4_agrees_on_amd_events_it_names_alike():
    """libpfm4 spells AMD events as the PPR does (RETIRED_INSTRUCTIONS); perf's JSON as ex_ret_instr. Where
    both name the unit mask alike under the same event select, the encodings must be identical."""
    from hwprof.events.libpfm import LibpfmError, libpfm

    try:
        lib = libpfm()
    except LibpfmError as exc:
        pytest.skip(str(exc))
    for model_name, pfm_pmu, floor in (("amdzen3", "amd64_fam19h_zen3", 90), ("amdzen4", "amd64_fam19h_zen4", 200)):
        parser = _parser(AMD_MODELS[model_name])
        by_code = collections.defaultdict(list)
        for event in lib.events(pfm_pmu):
            by_code[event.code].append(event)
        agree = 0
        for event in parser.vendor.events():
            code = dict(event.terms)["event"]
            suffix = event.name.partition(".")[2].upper()
            match = None
            for candidate in by_code.get(code, []):
                names = {u.name for u in candidate.umasks}
                if suffix and suffix in names:
                    match = f"{pfm_pmu}::{candidate.name}:{suffix}"
                elif not suffix and not candidate.umasks:
                    match = f"{pfm_pmu}::{candidate.name}"
            if match is None:
                continue
            assert parser.parse(event.name)[0].events[0].attr.config == lib.encode(match).config, event.name
            agree += 1
        assert agree >= floor


def test_names_resolve_in_any_case_with_modifiers_and_terms():
    parser = _parser(INTEL_MODELS["SPR"])
    upper = parser.parse("MEM_LOAD_RETIRED.L3_MISS")[0].events[0]
    lower = parser.parse("mem_load_retired.l3_miss:pp")[0].events[0]
    assert upper.attr.config == lower.attr.config == 0x20D1
    assert lower.attr.precise_ip == 2 and lower.name == "mem_load_retired.l3_miss:pp"
    assert upper.sample_period == 50021  # perfmon's SampleAfterValue, as perf's alias carries it
    user = parser.parse("MEM_LOAD_RETIRED.L3_MISS:u")[0].events[0]
    assert (user.attr.exclude_kernel, user.attr.exclude_hv, user.attr.exclude_user) == (1, 1, 0)
    with_terms = parser.parse("cpu/mem_load_retired.l3_miss,cmask=2,inv,edge/k")[0].events[0]
    assert with_terms.attr.config == 0x20D1 | 2 << 24 | 1 << 23 | 1 << 18
    assert with_terms.attr.exclude_user == 1
    ldlat = parser.parse("cpu/MEM_TRANS_RETIRED.LOAD_LATENCY_GT_32,ldlat=64/pp")[0].events[0]
    assert (ldlat.attr.config, ldlat.attr.config1, ldlat.attr.precise_ip) == (0x1CD, 64, 2)
    offcore = parser.parse("OCR.DEMAND_DATA_RD.L3_MISS")[0].events[0]
    assert (offcore.attr.config, offcore.attr.config1) == (0x12A, 0x3FBFC00001)
    group = parser.parse("{INST_RETIRED.ANY,CPU_CLK_UNHALTED.THREAD,CPU_CLK_UNHALTED.REF_TSC,TOPDOWN.SLOTS}:u")[0]
    assert group.is_group and [e.attr.config for e in group] == [0xC0, 0x3C, 0x0300, 0x0400]
    amd = _parser(AMD_MODELS["amdzen3"]).parse("ls_dc_accesses:u")[0].events[0]
    assert amd.attr.config == 0x40 and amd.attr.exclude_kernel == 1


def test_fixed_counter_events_use_the_codes_perf_and_the_kernel_use():
    """perf's jevents.py rewrites perfmon's fixed-counter pseudo-codes (event 0, umask n+1) to the architectural
    codes, because the kernel's constraint tables (arch/x86/events/intel/core.c) map 0x00c0 and 0x003c to fixed
    counters 0 and 1 on every model but know the pseudo-codes only for REF (0x0300) and SLOTS (0x0400)."""
    for cpuid in (INTEL_MODELS["SKX"], INTEL_MODELS["SPR"]):
        parser = _parser(cpuid)
        got = {name: parser.parse(name)[0].events[0].attr.config for name in (
            "INST_RETIRED.ANY", "CPU_CLK_UNHALTED.THREAD", "CPU_CLK_UNHALTED.REF_TSC")}
        assert got == {"INST_RETIRED.ANY": 0xC0, "CPU_CLK_UNHALTED.THREAD": 0x3C, "CPU_CLK_UNHALTED.REF_TSC": 0x0300}
    any_thread = _parser(INTEL_MODELS["SKX"]).parse("CPU_CLK_UNHALTED.THREAD_ANY")[0].events[0]
    assert any_thread.attr.config == 0x3C | 1 << 21
    from hwprof.events.libpfm import LibpfmError, libpfm

    try:
        lib = libpfm()
    except LibpfmError:
        return
    # libpfm4 agrees: its architectural INSTRUCTION_RETIRED / UNHALTED_CORE_CYCLES / UNHALTED_REFERENCE_CYCLES
    assert lib.encode("skx::INSTRUCTION_RETIRED").config == 0xC0
    assert lib.encode("skx::UNHALTED_CORE_CYCLES").config == 0x3C
    assert lib.encode("skx::UNHALTED_REFERENCE_CYCLES").config == 0x0300


def test_hybrid_model_opens_each_event_on_the_core_types_that_have_it():
    parser = _parser(INTEL_MODELS["ADL"])
    both = parser.parse("OCR.DEMAND_DATA_RD.L3_MISS")[0]
    assert [(e.name, e.pmu) for e in parser.parse("OCR.DEMAND_DATA_RD.L3_MISS") for e in e.events] == [
        ("cpu_atom/OCR.DEMAND_DATA_RD.L3_MISS/", "cpu_atom"), ("cpu_core/OCR.DEMAND_DATA_RD.L3_MISS/", "cpu_core")]
    assert both.events[0].attr.config == 0x1B7  # Gracemont's offcore response event select
    core_only = parser.parse("MEM_LOAD_RETIRED.L3_MISS")[0].events[0]
    assert (core_only.name, core_only.pmu) == ("MEM_LOAD_RETIRED.L3_MISS", "cpu_core")


def test_bad_names_fail_with_one_clear_line():
    intel, amd = _parser(INTEL_MODELS["SPR"]), _parser(AMD_MODELS["amdzen3"])
    with pytest.raises(EventParseError, match=r"^'ls_dc_accesses' is an AMD event; this CPU model "
                                              r"\(GenuineIntel-6-8F-8, SPR\) is Intel"):
        intel.parse("ls_dc_accesses")
    with pytest.raises(EventParseError, match=r"is an Intel event.*is AMD"):
        amd.parse("MEM_LOAD_RETIRED.L3_MISS:pp")
    with pytest.raises(EventParseError, match=r"did you mean: mem_load_retired\.l3_miss"):
        intel.parse("mem_load_retired.l3_mis")
    with pytest.raises(EventParseError, match=r"did you mean: MEM_LOAD_RETIRED\.L3_MISS"):
        intel.parse("MEM_LOAD_RETIRED.L3_MISSS")
    for parser, text in ((intel, "ls_dc_accesses"), (amd, "MEM_LOAD_RETIRED.L3_MISS"), (intel, "mem_load_x.y")):
        with pytest.raises(EventParseError) as info:
            parser.parse(text)
        assert "\n" not in str(info.value)


def test_perf_cpuid_override_selects_the_model(monkeypatch):
    monkeypatch.setenv("PERF_CPUID", "GenuineIntel-6-55-4")
    vendor_mod.current_model.cache_clear()
    try:
        model = vendor_mod.current_model()
        assert (model.name, model.cpuid.overridden) == ("SKX", True)
        # the same family/model with a later stepping is Cascade Lake: perf's regex rows decide
        monkeypatch.setenv("PERF_CPUID", "GenuineIntel-6-55-7")
        vendor_mod.current_model.cache_clear()
        assert vendor_mod.current_model().name == "CLX"
        monkeypatch.setenv("PERF_CPUID", "GenuineIntel-6-55")
        vendor_mod.current_model.cache_clear()
        with pytest.raises(EventParseError, match="PERF_CPUID"):
            monkeypatch.setenv("PERF_CPUID", "Intel 6 85")
            vendor_mod.current_model.cache_clear()
            EventParser(pmus=PmuRegistry("/nonexistent")).parse("MEM_LOAD_RETIRED.L3_MISS")
    finally:
        vendor_mod.current_model.cache_clear()


def test_machine_cpuid_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
                    "stepping\t: 8\n\nprocessor\t: 1\n")
    assert machine_cpuid(str(info)).text == "GenuineIntel-6-8F-8"


@pytest.mark.parametrize("cpuid", ["GenuineIntel-6-55-7", "GenuineIntel-6-97-2", "AuthenticAMD-25-1-1"])
def test_finding_an_event_builds_the_same_event_the_full_table_has(cpuid: str) -> None:
    """find() builds one event from its record (start-up); the listing builds them all: the same objects."""
    one_by_one = model_for(parse_cpuid(cpuid))
    found = {(e.pmu, e.name.upper()): e for name in one_by_one.event_names() for e in one_by_one.find(name)}
    everything = {(e.pmu, e.name.upper()): e for e in one_by_one.events()}
    assert found == everything and all(found[k] is everything[k] for k in found)
    assert everything == {(e.pmu, e.name.upper()): e for e in model_for(parse_cpuid(cpuid)).events()}
