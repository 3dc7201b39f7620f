"""Named vendor events and metrics for one CPU model, offline: `MEM_LOAD_RETIRED.L3_MISS`, `ls_dc_accesses`.

Sources (shipped as package data, see hwprof/events/data/):
- Intel: Intel's perfmon repository (BSD-3-Clause): per-model core event JSON and TMA metric JSON, chosen by
  `mapfile.csv` rows matched against the CPU model string (hwprof.events.cpuid, PERF_CPUID overrides it).
- AMD: the AMD Zen event and metric JSON of Linux perf (tools/perf/pmu-events/arch/x86/amdzen*, GPL-2.0, from
  Linux 6.12), chosen by perf's own mapfile rows. libpfm4 knows the same events under AMD's PPR names and
  is the independent encoder the tests compare with.

An event becomes PMU terms (`event=0xd1,umask=0x20,period=50021`) exactly as perf's jevents turns the vendor
JSON into aliases, so the rest is the ordinary sysfs-PMU path of the parser: the terms are encoded through the
core PMU's `format/` files, or, where this machine has no such PMU (a VM, or PERF_CPUID naming another model),
through the kernel's formats for that vendor (below), with type PERF_TYPE_RAW.
"""

from __future__ import annotations

import json
import lzma
import os
import re
from dataclasses import dataclass, field
from functools import cache, cached_property

from hwprof.events.cpuid import CpuId, current_cpuid
from hwprof.events.pmu import FormatField, Pmu, PmuAlias
from hwprof.perf.abi import PerfType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hwprof.events.vendor_metrics import CounterLayout, VendorMetric

DATA_ROOT = os.path.join(os.path.dirname(__file__), "data")
SHIPPED_DIR = os.path.join(DATA_ROOT, "perfmon")
AMD_DIR = os.path.join(DATA_ROOT, "perf_amd")
ARM_DIR = os.path.join(DATA_ROOT, "perf_arm64")

# The kernel's format/ files of the core PMUs (arch/x86/events/intel/core.c, amd/core.c). Intel's umask is the
# umask2 layout (bits 40-47 take perfmon's UMaskExt); older CPUs have no event that sets those bits.
INTEL_FORMATS = {
    "event": "config:0-7", "umask": "config:8-15,40-47", "edge": "config:18", "pc": "config:19",
    "any": "config:21", "inv": "config:23", "cmask": "config:24-31", "in_tx": "config:32",
    "in_tx_cp": "config:33", "eq": "config:36", "offcore_rsp": "config1:0-63", "ldlat": "config1:0-15",
    "frontend": "config1:0-23",
}
ARM_FORMATS = {"event": "config:0-15"}  # arch/arm64/kernel/perf_event.c (armv8 PMUv3)
AMD_FORMATS = {"event": "config:0-7,32-35", "umask": "config:8-15", "edge": "config:18", "inv": "config:23",
               "cmask": "config:24-31"}

# perfmon MSRIndex -> the PMU term its MSRValue fills (Linux's intel core PMU formats).
_MSR_TERMS = {"0x3f6": "ldlat", "0x1a6": "offcore_rsp", "0x1a7": "offcore_rsp", "0x1a6,0x1a7": "offcore_rsp",
              "0x3f7": "frontend"}
# perfmon writes fixed-counter events as event 0 / umask n+1; the kernel knows those pseudo-encodings for
# REF_TSC (0x0300) and SLOTS (0x0400) only, and counts the others by their architectural codes. perf's jevents
# rewrites them so (tools/perf/pmu-events/jevents.py), and so do we: same encodings as perf, and countable.
FIXED_COUNTER_CODES = {
    "INST_RETIRED.ANY": (("event", 0xC0),), "INST_RETIRED.ANY_P": (("event", 0xC0),),
    "CPU_CLK_UNHALTED.REF": (("event", 0x0), ("umask", 0x3)), "CPU_CLK_UNHALTED.THREAD": (("event", 0x3C),),
    "CPU_CLK_UNHALTED.CORE": (("event", 0x3C),), "CPU_CLK_UNHALTED.THREAD_ANY": (("event", 0x3C), ("any", 1)),
}
# perfmon "Core Role Name" -> perf's hybrid PMU.
_ROLE_PMUS = {"Core": "cpu_core", "Atom": "cpu_atom", "LowPower_Atom": "cpu_lowpower"}

# Topics for Intel events (perf groups its x86 JSON the same way): first match wins.
_TOPIC_RULES = (
    ("Virtual memory", r"(DTLB|ITLB|STLB|TLB_|EPT\.|PAGE_WALK)"),
    ("Floating point", r"(FP_|.*AVX|.*SIMD|X87|ASSISTS\.FP|.*FPDIV|ARITH\.FP)"),
    ("Memory", r"(.*L3_MISS|.*LLC_MISS|.*DRAM|MEM_TRANS_RETIRED|.*MEMORY_ORDERING|RTM_|HLE_|TX_|MEMORY_ACTIVITY|"
               r"OCR\..*(MEMORY|PMM))"),
    ("Cache", r"(.*CACHE|L1D|L1I|L2_|LONGEST_LAT|MEM_LOAD|MEM_INST|MEM_UOPS|MEM_STORE|OCR\.|OFFCORE_|SQ_MISC|"
              r"SW_PREFETCH|LD_HEAD|CORE_SNOOP|XQ_)"),
    ("Frontend", r"(FRONTEND|ICACHE|IDQ|DSB|DECODE|BACLEARS|ILD_|MS_DECODED|UOPS\.MS|LSD\.)"),
    ("Branch", r"(BR_|BTCLEAR|BACLEAR|.*BRANCH)"),
)
# AMD: perf's JSON file names are the topics (Zen 1-4: cache.json, core.json, ...; Zen 5: load-store.json,
# decode.json, branch-prediction.json, inst-cache.json, ...). A name not here is titled from the file name.
_AMD_TOPICS = {"branch": "Branch", "cache": "Cache", "core": "Pipeline", "floating-point": "Floating point",
               "memory": "Memory", "other": "Other", "pipeline": "Pipeline", "recommended": "Recommended",
               "branch-prediction": "Branch prediction", "decode": "Decode", "load-store": "Load-store",
               "execution": "Execution", "inst-cache": "Cache", "l2-cache": "Cache"}


ARM_PMU = "armv8_pmuv3_0"  # the name Linux gives the core PMU described by the DT/ACPI PMUv3 node
_NAMEABLE = re.compile(r"^[A-Za-z0-9_.]+$")


class VendorDataError(ValueError):
    pass


@cache
def _topic_regexes() -> tuple[tuple[str, re.Pattern], ...]:
    """Compiled on the first Intel event, not on every start (an AMD or Arm model never needs them)."""
    return tuple((topic, re.compile(rule)) for topic, rule in _TOPIC_RULES)


def intel_topic(name: str) -> str:
    for topic, regex in _topic_regexes():
        if regex.match(name):
            return topic
    return "Pipeline"


@dataclass(frozen=True)
class VendorEvent:
    """One named event of one core PMU, as the vendor describes it."""

    name: str
    pmu: str                                   # cpu, cpu_core, cpu_atom
    terms: tuple[tuple[str, int], ...]         # (format term, value), in perf's jevents order
    description: str = ""
    long_description: str = ""
    topic: str = "Other"
    counters: str = ""                         # "0,1,2,3", "Fixed counter 1", ... (Intel)
    taken_alone: bool = False                  # must run without other events in its group (Intel)
    precise: bool = False                      # PEBS / precise sampling capable
    data_la: bool = False                      # PEBS records the data linear address
    deprecated: bool = False
    period: int | None = None                  # the vendor's SampleAfterValue
    source: str = "perfmon"

    @property
    def fixed_counter(self) -> int | None:
        m = re.match(r"fixed counter (\d+)", self.counters.lower())
        return int(m.group(1)) if m else None

    @property
    def term_string(self) -> str:
        """What perf's jevents writes into its alias table: the PMU terms (period included)."""
        parts = [f"{k}={v:#x}" for k, v in self.terms]
        if self.period:
            parts.append(f"period={self.period}")
        return ",".join(parts)

    @property
    def config_terms(self) -> str:
        return ",".join(f"{k}={v:#x}" for k, v in self.terms)


def _int(text: str | None) -> int:
    if text is None or text == "":
        return 0
    return int(str(text).split(",")[0].strip(), 0)


def _intel_event(raw: dict, pmu: str) -> VendorEvent:
    fixed = FIXED_COUNTER_CODES.get(raw["name"].upper())
    terms: list[tuple[str, int]] = list(fixed) if fixed else [("event", _int(raw.get("code")))]
    umask = _int(raw.get("umask")) | (_int(raw.get("umask_ext")) << 8)
    if umask and not fixed:
        terms.append(("umask", umask))
    for short, term in (("cmask", "cmask"), ("inv", "inv"), ("edge", "edge"), ("any", "any")):
        value = _int(raw.get(short))
        if value and not fixed:
            terms.append((term, value))
    msr = raw.get("msr", "").lower().replace(" ", "")
    if msr and raw.get("msr_value"):
        term = _MSR_TERMS.get(msr)
        if term is not None:
            terms.append((term, _int(raw["msr_value"])))
    precise = raw.get("precise", raw.get("pebs", "0")) not in ("0", "")
    return VendorEvent(
        name=raw["name"], pmu=pmu, terms=tuple(terms), description=raw.get("brief", ""),
        long_description=raw.get("public", ""), topic=intel_topic(raw["name"]), counters=raw.get("counter", ""),
        taken_alone=raw.get("alone", "0") == "1", precise=precise, data_la=raw.get("data_la", "0") == "1",
        deprecated=raw.get("deprecated", "0") == "1", period=_int(raw.get("period")) or None,
    )


def _perf_json_topic(file_stem: str) -> str:
    """perf's JSON file name as a topic (amd: cache.json; arm64: l1d_cache.json, tlb.json, spec_operation.json)."""
    if file_stem in _AMD_TOPICS:
        return _AMD_TOPICS[file_stem]
    if file_stem.endswith("cache"):
        return "Cache"
    if file_stem == "tlb":
        return "Virtual memory"
    return (file_stem or "other").replace("_", " ").replace("-", " ").capitalize()


def _amd_event(raw: dict, pmu: str = "cpu") -> VendorEvent:
    """An event of Linux perf's JSON (AMD and arm64 tables: EventCode/UMask, topics from the file names)."""
    terms: list[tuple[str, int]] = [("event", _int(raw.get("EventCode")))]
    if raw.get("UMask"):
        terms.append(("umask", _int(raw["UMask"])))
    for key, term in (("CounterMask", "cmask"), ("Invert", "inv"), ("EdgeDetect", "edge")):
        if _int(raw.get(key)):
            terms.append((term, _int(raw[key])))
    # PMUv3's dedicated cycle counter (PMCCNTR_EL0) counts CPU_CYCLES (0x11) beside the event counters.
    counters = "Fixed counter 0" if pmu.startswith("armv") and _int(raw.get("EventCode")) == 0x11 else ""
    return VendorEvent(
        name=raw["EventName"], pmu=pmu, terms=tuple(terms), description=raw.get("BriefDescription", ""),
        counters=counters,
        long_description=raw.get("PublicDescription", ""),
        topic=_perf_json_topic(raw.get("_topic", "")),
        period=_int(raw.get("SampleAfterValue")) or None, source="perf-json",
    )


def _data_dir() -> str:
    """The user's refreshed copy (hwprof list --refresh-perfmon) wins over the shipped one."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    user = os.path.join(base, "hwprof", "perfmon")
    return user if os.path.isfile(os.path.join(user, "index.json")) else SHIPPED_DIR


@cache
def _index(directory: str) -> dict:
    try:
        with open(os.path.join(directory, "index.json")) as f:
            return json.load(f)
    except OSError as exc:
        raise VendorDataError(f"vendor event data is missing ({exc}); reinstall hwprof or run "
                              "'hwprof list --refresh-perfmon PERFMON_DIR'") from None


@cache
def _load(directory: str, stem: str) -> dict:
    with open(os.path.join(directory, stem + ".json.xz"), "rb") as f:
        return json.loads(lzma.decompress(f.read()))


def _pmu_formats(vendor: str) -> dict[str, FormatField]:
    table = {"amd": AMD_FORMATS, "arm": ARM_FORMATS}.get(vendor, INTEL_FORMATS)
    return {name: FormatField.parse(name, text) for name, text in table.items()}


class VendorCorePmu(Pmu):
    """A core PMU this machine does not expose (no PMU in the VM, or PERF_CPUID names another model): the
    kernel's formats for the vendor and type PERF_TYPE_RAW, as perf encodes raw events."""

    def __init__(self, name: str, vendor: str) -> None:
        super().__init__(name, int(PerfType.RAW), "")
        object.__setattr__(self, "_vendor", vendor)

    @cached_property
    def formats(self) -> dict[str, FormatField]:  # type: ignore[override]
        return _pmu_formats(self._vendor)

    @property
    def is_core(self) -> bool:
        return True

    @cached_property
    def aliases(self) -> dict[str, PmuAlias]:  # type: ignore[override]
        return {}

    @cached_property
    def cpus(self) -> tuple[int, ...] | None:  # type: ignore[override]
        return None


@dataclass
class VendorModel:
    """Every named core event and metric of one CPU model."""

    cpuid: CpuId
    name: str                                  # perfmon folder (SKX, SPR, ADL) or perf's (amdzen3)
    vendor: str                                # intel, amd
    version: str = ""
    event_files: dict[str, str] = field(default_factory=dict)   # pmu -> data file stem
    metric_files: dict[str, str] = field(default_factory=dict)  # pmu -> data file stem
    directory: str = ""

    @property
    def core_pmus(self) -> tuple[str, ...]:
        return tuple(self.event_files)

    @property
    def is_hybrid(self) -> bool:
        return len(self.event_files) > 1

    @cached_property
    def _raw_events(self) -> dict[str, dict[str, dict]]:
        """Per core PMU: upper-case name -> the vendor's record of it (the first of a name, as perf keeps it).

        Events are built from their records only when asked for: resolving one name (`stat -e NAME`) builds one,
        where building all of them cost 13 ms for SPR's 411 and ~50 ms for CLX's 1,336 (the offcore matrix)."""
        out: dict[str, dict[str, dict]] = {}
        name_key = "EventName" if self.vendor in ("amd", "arm") else "name"
        for pmu, stem in self.event_files.items():
            table: dict[str, dict] = {}
            for raw in _load(self.directory, stem)["events"]:
                name = raw[name_key]
                if _NAMEABLE.match(name):  # perfmon's old 'OFFCORE_RESPONSE:request=...' rows are not
                    table.setdefault(name.upper(), raw)
            out[pmu] = table
        return out

    @cached_property
    def _built(self) -> dict[tuple[str, str], VendorEvent]:
        return {}

    def _event(self, pmu: str, key: str) -> VendorEvent:
        """The event `key` (upper case) of a core PMU, built once from its record."""
        event = self._built.get((pmu, key))
        if event is None:
            raw = self._raw_events[pmu][key]
            event = _amd_event(raw, pmu) if self.vendor in ("amd", "arm") else _intel_event(raw, pmu)
            self._built[(pmu, key)] = event
        return event

    @cached_property
    def _events(self) -> dict[str, dict[str, VendorEvent]]:
        return {pmu: {key: self._event(pmu, key) for key in table} for pmu, table in self._raw_events.items()}

    def events(self, pmu: str | None = None) -> list[VendorEvent]:
        pmus = [pmu] if pmu else list(self._events)
        return [e for p in pmus for e in self._events.get(p, {}).values()]

    def find(self, name: str) -> list[VendorEvent]:
        """The event of that name (any case) on each core PMU that has it."""
        key = name.upper()
        return [self._event(pmu, key) for pmu, table in self._raw_events.items() if key in table]

    def event_names(self) -> list[str]:
        name_key = "EventName" if self.vendor in ("amd", "arm") else "name"
        return sorted({raw[name_key] for table in self._raw_events.values() for raw in table.values()})

    @cached_property
    def _metrics(self) -> list[VendorMetric]:
        from hwprof.events.vendor_metrics import perf_json_metric, perfmon_metric

        out: list[VendorMetric] = []
        for pmu, stem in self.metric_files.items():
            body = _load(self.directory, stem)
            if self.vendor in ("amd", "arm"):
                out.extend(perf_json_metric(m, pmu) for m in body["metrics"])
            else:
                out.extend(perfmon_metric(m, pmu) for m in body["metrics"])
        return out

    def metrics(self) -> list[VendorMetric]:
        return list(self._metrics)

    def counter_layout(self, pmu: str = "cpu") -> CounterLayout:
        """General-purpose and fixed counters of a core PMU, from the vendor's per-event counter lists."""
        from hwprof.events.vendor_metrics import CounterLayout

        if self.vendor == "arm":
            # Armv8/v9 PMUv3: the cycle counter plus up to 31 event counters; cores implement 6 (Cortex-A/Neoverse
            # N1, V1) or more. 6 is the common floor (Arm TRMs, PMCR_EL0.N).
            return CounterLayout(generic=6, fixed=("CPU_CYCLES",))
        if self.vendor == "amd":
            # Zen 1-5 have six general-purpose core counters and no fixed ones (AMD PPR, "Core Performance
            # Monitor Counters"); libpfm4 agrees (num_cntrs 6 for amd64_fam17h/19h).
            return CounterLayout(generic=6, fixed=())
        generic = 0
        fixed: dict[int, str] = {}
        for event in self.events(pmu if pmu in self._events else None):
            if event.fixed_counter is not None:
                fixed.setdefault(event.fixed_counter, event.name)
                continue
            for part in event.counters.split(","):
                part = part.strip()
                if part.isdigit():
                    generic = max(generic, int(part) + 1)
        return CounterLayout(generic=generic, fixed=tuple(fixed[i] for i in sorted(fixed)))


# --- choosing the model -----------------------------------------------------------------------------------

def _perf_regex(pattern: str) -> str:
    """perf's mapfile uses POSIX classes; Python's re does not."""
    return pattern.replace("[[:xdigit:]]", "[0-9A-Fa-f]")


def model_for(cpuid: CpuId) -> VendorModel | None:
    """The vendor data for a CPU model, None when no source describes it."""
    if cpuid.is_intel:
        directory = _data_dir()
        index = _index(directory)
        model: VendorModel | None = None
        for row in index["mapfile"]:
            if not cpuid.matches(row["cpuid"]):
                continue
            if model is None:
                folder = row["file"].split("__")[0]
                model = VendorModel(cpuid, folder, "intel", row["version"], directory=directory)
            pmu = _ROLE_PMUS.get(row["role"], "cpu") if row["kind"] == "hybridcore" or row["role"] else "cpu"
            if row["kind"] in ("core", "hybridcore"):
                model.event_files.setdefault(pmu, row["file"])
            elif row["kind"] == "metrics":
                model.metric_files.setdefault(pmu, row["file"])
        return model if model is not None and model.event_files else None
    if cpuid.is_arm:
        index = _index(ARM_DIR)
        for row in index["mapfile"]:
            if int(row["cpuid"], 16) == cpuid.midr & ~0xF0000F:
                model = VendorModel(cpuid, row["model"].split("__")[-1], "arm", row.get("version", ""),
                                    directory=ARM_DIR)
                model.event_files[ARM_PMU] = row["model"]
                model.metric_files[ARM_PMU] = row["model"]
                return model
        return None
    if cpuid.is_amd:
        index = _index(AMD_DIR)
        for row in index["mapfile"]:
            if re.fullmatch(_perf_regex(row["cpuid"]), cpuid.text) or \
                    re.fullmatch(_perf_regex(row["cpuid"]), cpuid.without_stepping):
                model = VendorModel(cpuid, row["model"], "amd", row.get("version", ""), directory=AMD_DIR)
                model.event_files["cpu"] = row["model"]
                model.metric_files["cpu"] = row["model"]
                return model
    return None


@cache
def current_model() -> VendorModel | None:
    """The model of this machine, or of PERF_CPUID when set (cached for the process)."""
    cpuid = current_cpuid()
    return model_for(cpuid) if cpuid is not None else None


@cache
def all_event_names() -> dict[str, str]:
    """Every vendor event name of every shipped model (upper case) -> 'Intel' or 'AMD': for the one-line
    error when someone names another vendor's event."""
    out: dict[str, str] = {}
    for directory, vendor in ((_data_dir(), "Intel"), (AMD_DIR, "AMD"), (ARM_DIR, "Arm")):
        try:
            with open(os.path.join(directory, "names.json.xz"), "rb") as f:
                names = json.loads(lzma.decompress(f.read()))
        except OSError:
            continue
        for name in names:
            out.setdefault(name.upper(), vendor)
    return out
