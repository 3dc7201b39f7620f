"""perf's symbolic event names: generic hardware, software, tool events and the hardware-cache grid.

Names and aliases are tools/perf/util/parse-events.l and evsel.c (evsel__hw_cache*), so that every string
`perf stat -e` accepts here means the same counter in hwprof.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprof.perf.abi import HwCacheId, HwCacheOp, HwCacheResult, HwEvent, PerfType, SwEvent


@dataclass(frozen=True)
class SymbolicEvent:
    name: str  # perf's canonical name
    aliases: tuple[str, ...]
    type: PerfType
    config: int
    description: str
    unit: str = ""
    tool: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


HARDWARE_EVENTS: tuple[SymbolicEvent, ...] = (
    SymbolicEvent("cpu-cycles", ("cycles",), PerfType.HARDWARE, HwEvent.CPU_CYCLES, "CPU cycles (not halted)"),
    SymbolicEvent("instructions", (), PerfType.HARDWARE, HwEvent.INSTRUCTIONS, "instructions retired"),
    SymbolicEvent("cache-references", (), PerfType.HARDWARE, HwEvent.CACHE_REFERENCES,
                  "cache accesses (usually last-level cache)"),
    SymbolicEvent("cache-misses", (), PerfType.HARDWARE, HwEvent.CACHE_MISSES,
                  "cache misses (usually last-level cache)"),
    SymbolicEvent("branch-instructions", ("branches",), PerfType.HARDWARE, HwEvent.BRANCH_INSTRUCTIONS,
                  "branch instructions retired"),
    SymbolicEvent("branch-misses", (), PerfType.HARDWARE, HwEvent.BRANCH_MISSES, "mispredicted branches"),
    SymbolicEvent("bus-cycles", (), PerfType.HARDWARE, HwEvent.BUS_CYCLES, "bus cycles"),
    SymbolicEvent("stalled-cycles-frontend", ("idle-cycles-frontend",), PerfType.HARDWARE,
                  HwEvent.STALLED_CYCLES_FRONTEND, "cycles the frontend delivered no instructions"),
    SymbolicEvent("stalled-cycles-backend", ("idle-cycles-backend",), PerfType.HARDWARE,
                  HwEvent.STALLED_CYCLES_BACKEND, "cycles the backend accepted no instructions"),
    SymbolicEvent("ref-cycles", (), PerfType.HARDWARE, HwEvent.REF_CPU_CYCLES,
                  "reference cycles (constant rate, unaffected by frequency scaling)"),
)

SOFTWARE_EVENTS: tuple[SymbolicEvent, ...] = (
    SymbolicEvent("cpu-clock", (), PerfType.SOFTWARE, SwEvent.CPU_CLOCK, "per-CPU high-resolution timer", "msec"),
    SymbolicEvent("task-clock", (), PerfType.SOFTWARE, SwEvent.TASK_CLOCK, "time the task ran on a CPU", "msec"),
    SymbolicEvent("page-faults", ("faults",), PerfType.SOFTWARE, SwEvent.PAGE_FAULTS, "page faults"),
    SymbolicEvent("context-switches", ("cs",), PerfType.SOFTWARE, SwEvent.CONTEXT_SWITCHES, "context switches"),
    SymbolicEvent("cpu-migrations", ("migrations",), PerfType.SOFTWARE, SwEvent.CPU_MIGRATIONS,
                  "moves of the task to another CPU"),
    SymbolicEvent("minor-faults", (), PerfType.SOFTWARE, SwEvent.PAGE_FAULTS_MIN, "page faults served without I/O"),
    SymbolicEvent("major-faults", (), PerfType.SOFTWARE, SwEvent.PAGE_FAULTS_MAJ, "page faults that needed I/O"),
    SymbolicEvent("alignment-faults", (), PerfType.SOFTWARE, SwEvent.ALIGNMENT_FAULTS, "unaligned access fix-ups"),
    SymbolicEvent("emulation-faults", (), PerfType.SOFTWARE, SwEvent.EMULATION_FAULTS,
                  "instructions emulated by the kernel"),
    SymbolicEvent("dummy", (), PerfType.SOFTWARE, SwEvent.DUMMY, "counts nothing; carries side-band records"),
    SymbolicEvent("bpf-output", (), PerfType.SOFTWARE, SwEvent.BPF_OUTPUT, "output channel for BPF programs"),
    SymbolicEvent("cgroup-switches", (), PerfType.SOFTWARE, SwEvent.CGROUP_SWITCHES,
                  "context switches to a task in another cgroup"),
)

# perf's tool events: measured by the tool itself; perf encodes them as a dummy software event.
TOOL_EVENTS: tuple[SymbolicEvent, ...] = (
    SymbolicEvent("duration_time", (), PerfType.SOFTWARE, SwEvent.DUMMY, "wall-clock time of the run", "ns",
                  tool=True),
    SymbolicEvent("user_time", (), PerfType.SOFTWARE, SwEvent.DUMMY, "user CPU time of the command", "ns",
                  tool=True),
    SymbolicEvent("system_time", (), PerfType.SOFTWARE, SwEvent.DUMMY, "system CPU time of the command", "ns",
                  tool=True),
)

# evsel__hw_cache, evsel__hw_cache_op, evsel__hw_cache_result: first entry is the canonical spelling.
CACHE_NAMES: dict[HwCacheId, tuple[str, ...]] = {
    HwCacheId.L1D: ("L1-dcache", "l1-d", "l1d", "L1-data"),
    HwCacheId.L1I: ("L1-icache", "l1-i", "l1i", "L1-instruction"),
    HwCacheId.LL: ("LLC", "L2"),
    HwCacheId.DTLB: ("dTLB", "d-tlb", "Data-TLB"),
    HwCacheId.ITLB: ("iTLB", "i-tlb", "Instruction-TLB"),
    HwCacheId.BPU: ("branch", "branches", "bpu", "btb", "bpc"),
    HwCacheId.NODE: ("node",),
}
CACHE_OP_NAMES: dict[HwCacheOp, tuple[str, ...]] = {
    HwCacheOp.READ: ("load", "loads", "read"),
    HwCacheOp.WRITE: ("store", "stores", "write"),
    HwCacheOp.PREFETCH: ("prefetch", "prefetches", "speculative-read", "speculative-load"),
}
CACHE_RESULT_NAMES: dict[HwCacheResult, tuple[str, ...]] = {
    HwCacheResult.ACCESS: ("refs", "Reference", "ops", "access"),
    HwCacheResult.MISS: ("misses", "miss"),
}
# evsel__hw_cache_stat: which operations each cache has (L1-icache cannot be written, and so on).
CACHE_VALID_OPS: dict[HwCacheId, frozenset[HwCacheOp]] = {
    HwCacheId.L1D: frozenset(HwCacheOp),
    HwCacheId.L1I: frozenset({HwCacheOp.READ, HwCacheOp.PREFETCH}),
    HwCacheId.LL: frozenset(HwCacheOp),
    HwCacheId.DTLB: frozenset(HwCacheOp),
    HwCacheId.ITLB: frozenset({HwCacheOp.READ}),
    HwCacheId.BPU: frozenset({HwCacheOp.READ}),
    HwCacheId.NODE: frozenset(HwCacheOp),
}

SYMBOLIC_EVENTS: dict[str, SymbolicEvent] = {
    name: event for event in (*HARDWARE_EVENTS, *SOFTWARE_EVENTS, *TOOL_EVENTS) for name in event.names
}


def cache_config(cache: HwCacheId, op: HwCacheOp, result: HwCacheResult) -> int:
    return int(cache) | int(op) << 8 | int(result) << 16


def cache_event_name(cache: HwCacheId, op: HwCacheOp, result: HwCacheResult) -> str:
    """perf's canonical spelling: L1-dcache-loads, L1-dcache-load-misses."""
    if result == HwCacheResult.ACCESS:
        return f"{CACHE_NAMES[cache][0]}-{CACHE_OP_NAMES[op][1]}"
    return f"{CACHE_NAMES[cache][0]}-{CACHE_OP_NAMES[op][0]}-{CACHE_RESULT_NAMES[result][0]}"


def cache_events() -> list[tuple[str, int]]:
    """The valid cache grid as (canonical name, config), in perf list order."""
    out = []
    for cache in HwCacheId:
        for op in HwCacheOp:
            if op not in CACHE_VALID_OPS[cache]:
                continue
            for result in HwCacheResult:
                out.append((cache_event_name(cache, op, result), cache_config(cache, op, result)))
    return out


def _longest_alias(text: str, table: dict) -> int | None:
    """parse_aliases(): the first entry any of whose aliases is a case-insensitive prefix of `text`."""
    lowered = text.lower()
    for key, aliases in table.items():
        if any(lowered.startswith(alias.lower()) for alias in aliases):
            return key
    return None


class CacheNameError(ValueError):
    pass


def parse_cache_event(name: str) -> int | None:
    """Config for a hardware-cache name (`L1-dcache-load-misses`, `LLC-loads`, `dTLB-miss`), None if the text
    is not cache-event shaped. Raises CacheNameError for a cache/operation pair the grid does not have.

    The shape follows perf's lexer: a cache name, then up to two '-'-separated op/result words, matched
    case-sensitively against the alias lists (the lexer is), each word then decoded like parse_aliases().
    """
    for cache, aliases in CACHE_NAMES.items():
        for alias in sorted(aliases, key=len, reverse=True):
            if alias in _SHADOWED_CACHE_ALIASES:
                continue
            if name == alias:
                rest: list[str] = []
            elif name.startswith(alias + "-"):
                rest = _split_op_results(name[len(alias) + 1:])
                if not rest:
                    continue
            else:
                continue
            return _decode_cache(cache, rest, name)
    return None


# perf's lexer reads `branches` as the hardware event before it can start a cache name: `branches-load-misses`
# is a syntax error in perf (measured with perf 6.1), so it is not a cache name here either.
_SHADOWED_CACHE_ALIASES = frozenset({"branches"})

_OP_RESULT_WORDS = sorted({w for table in (CACHE_OP_NAMES, CACHE_RESULT_NAMES) for ws in table.values() for w in ws},
                          key=len, reverse=True)


def _split_op_results(text: str) -> list[str]:
    """Split `load-misses` or `speculative-read-miss` into lexer words; [] if it does not split into 1 or 2."""
    def split(rest: str, depth: int) -> list[str] | None:
        if not rest:
            return []
        if depth == 2:
            return None
        for word in _OP_RESULT_WORDS:
            if rest == word:
                return [word]
            if rest.startswith(word + "-"):
                tail = split(rest[len(word) + 1:], depth + 1)
                if tail:
                    return [word, *tail]
        return None

    return split(text, 0) or []


def _decode_cache(cache: HwCacheId, words: list[str], name: str) -> int:
    op: HwCacheOp | None = None
    result: HwCacheResult | None = None
    for word in words:
        if op is None:
            found = _longest_alias(word, CACHE_OP_NAMES)
            if found is not None:
                if found not in CACHE_VALID_OPS[cache]:
                    raise CacheNameError(f"'{name}': the {CACHE_NAMES[cache][0]} cache has no "
                                         f"{CACHE_OP_NAMES[found][0]} operation")
                op = found
                continue
        if result is None:
            found = _longest_alias(word, CACHE_RESULT_NAMES)
            if found is not None:
                result = found
    return cache_config(cache, op if op is not None else HwCacheOp.READ,
                        result if result is not None else HwCacheResult.ACCESS)
