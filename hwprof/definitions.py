"""What stat, report and the web view must agree on, defined once: event names, counter ratios, stack quality.

- Event names: `canonical_event('cpu/instructions/u')` is 'instructions'; every ratio is matched on these names.
- Counter ratios: one table (`COUNTER_RATIOS`) of named pairs (IPC, miss rates, MPKI), and one rule for which
  ratios a sample group's members allow (`group_ratios`), labelled the same in `hwprof report` and on the page.
  A ratio over a set of samples is always the ratio of the summed deltas (`ratio_value`), never a mean of ratios.
- Stack quality: which samples count as complete (`complete_stacks`) and the counts behind every meter
  (`stack_quality`): the report's line, the page's meter and the store index's share all come from here, so a
  change of rule (e.g. "complete only when the unwinder reached a real bottom") is made in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (every stat start)
if TYPE_CHECKING:  # numpy and the profile model load only where stacks are looked at: stat starts without them
    import numpy as np

    from hwprof.profile import Profile

# --- event names ------------------------------------------------------------------------------------------

EVENT_ALIASES = {"cpu-cycles": "cycles", "branch-instructions": "branches", "L1-dcache-load": "L1-dcache-loads"}
# Vendor events (hwprof.events.vendor) that count what a generic event counts, so IPC and branch ratios work for
# groups of named events too; matched in any case (perf's vendor names are case-insensitive).
VENDOR_ALIASES = {
    "inst_retired.any": "instructions", "inst_retired.any_p": "instructions", "ex_ret_instr": "instructions",
    "cpu_clk_unhalted.thread": "cycles", "cpu_clk_unhalted.thread_p": "cycles", "cpu_clk_unhalted.core": "cycles",
    "cpu_clk_unhalted.core_p": "cycles", "ls_not_halted_cyc": "cycles",
    "br_inst_retired.all_branches": "branches", "ex_ret_brn": "branches",
    "br_misp_retired.all_branches": "branch-misses", "ex_ret_brn_misp": "branch-misses",
}
_MODIFIERS = re.compile(r":[ukhpGHPSDIWe]+$")
CLOCK_EVENTS = ("cpu-clock", "task-clock")


def canonical_event(name: str, vendor: bool = True) -> str:
    """The name an event is known by for ratios: modifiers dropped ('cycles:u'), a PMU's named event unwrapped
    ('cpu/instructions/', 'cpu_core/cycles/k'), aliases folded ('cpu-cycles' -> 'cycles'). Tracepoints keep
    'subsys:event'; raw PMU terms ('cpu/event=0x3c/') stay as written; vendor events that count a generic event
    get its name ('INST_RETIRED.ANY' -> 'instructions') unless `vendor` is False (stat's top-down formulas need
    'ls_not_halted_cyc' as itself)."""
    name = _MODIFIERS.sub("", name.strip())
    if "/" in name:
        parts = [p for p in name.split("/") if p]
        inner = parts[1] if len(parts) > 1 else parts[0]
        if "=" not in inner and "," not in inner:
            name = inner
    name = EVENT_ALIASES.get(name, name)
    return VENDOR_ALIASES.get(name.lower(), name) if vendor else name


# --- counter ratios ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RatioDef:
    """A named ratio of two events: factor * numerator / denominator."""

    name: str            # shown everywhere: stat's metric, report's column, the page's colour and time strip
    numerator: str       # canonical event names
    denominator: str
    factor: float
    unit: str            # short unit, for report and the page
    stat_unit: str       # perf stat's words after the value ("insn per cycle", "% of all branches")
    anchor: str = ""     # the event stat prints it beside (default: the numerator)


def _miss(prefix: str, what: str) -> RatioDef:
    return RatioDef(f"{prefix} miss %", f"{prefix}-load-misses", f"{prefix}-loads", 100.0, "%", f"% of all {what}")


def _mpki(misses: str) -> RatioDef:
    return RatioDef(f"{misses} MPKI", misses, "instructions", 1000.0, "per kinsn", "misses per 1k insn")


# In perf stat's order.
COUNTER_RATIOS: tuple[RatioDef, ...] = (
    RatioDef("IPC", "instructions", "cycles", 1.0, "insn/cycle", "insn per cycle"),
    RatioDef("CPI", "cycles", "instructions", 1.0, "cycles/insn", "cycles per insn", anchor="instructions"),
    RatioDef("frontend stall %", "stalled-cycles-frontend", "cycles", 100.0, "%", "% frontend cycles idle"),
    RatioDef("backend stall %", "stalled-cycles-backend", "cycles", 100.0, "%", "% backend cycles idle"),
    RatioDef("branch-miss %", "branch-misses", "branches", 100.0, "%", "% of all branches"),
    RatioDef("cache-miss %", "cache-misses", "cache-references", 100.0, "%", "% of all cache refs"),
    _miss("L1-dcache", "L1-dcache accesses"),
    _miss("L1-icache", "L1-icache accesses"),
    _miss("LLC", "LL-cache accesses"),
    _miss("dTLB", "dTLB cache accesses"),
    _miss("iTLB", "iTLB cache accesses"),
    *(_mpki(m) for m in ("cache-misses", "branch-misses", "L1-dcache-load-misses", "L1-icache-load-misses",
                         "LLC-load-misses", "dTLB-load-misses", "iTLB-load-misses")),
)


@dataclass(frozen=True)
class GroupRatio:
    """A ratio between members of a sample's group read (indices into the members): factor * numerator /
    (denominator [+ denominator_plus])."""

    name: str
    numerator: int
    denominator: int
    factor: float
    unit: str
    denominator_plus: int | None = None  # a miss rate of a named event: misses / (misses + its HIT sibling)


def group_ratios(member_names: Sequence[str]) -> list[GroupRatio]:
    """The ratios a group's members allow, each once: the named pairs of COUNTER_RATIOS present, else (a group
    without any, like software events on a machine without a PMU) each member per the leader, per millisecond
    when the leader is a clock (`page-faults/ms`: the leader's deltas are nanoseconds)."""
    canon = [canonical_event(n) for n in member_names]
    index: dict[str, int] = {}
    for i, name in enumerate(canon):
        index.setdefault(name, i)
    out = [GroupRatio(r.name, index[r.numerator], index[r.denominator], r.factor, r.unit)
           for r in COUNTER_RATIOS if r.numerator in index and r.denominator in index]
    out += _named_miss_ratios(canon, index, {r.numerator for r in out if r.name.endswith("MPKI")})
    if out or len(canon) < 2:
        return out
    per_ms = canon[0] in CLOCK_EVENTS
    seen: set[str] = set()
    for i in range(1, len(canon)):
        if canon[i] == canon[0] or canon[i] in seen:
            continue  # a member per itself is always 1
        seen.add(canon[i])
        if per_ms:
            out.append(GroupRatio(f"{canon[i]}/ms", i, 0, 1e6, "per ms"))
        else:
            out.append(GroupRatio(f"{canon[i]}/{canon[0]}", i, 0, 1.0, ""))
    return out


_GENERIC_EVENTS = {r.numerator for r in COUNTER_RATIOS} | {r.denominator for r in COUNTER_RATIOS}


def _named_miss_ratios(canon: list[str], index: dict[str, int], with_mpki: set[int]) -> list[GroupRatio]:
    """A vendor's named miss event (MEM_LOAD_RETIRED.L3_MISS, ls_dmnd_fills_from_sys...): misses per 1k
    instructions, and its miss rate against its HIT sibling where the group has one (X.L3_MISS vs X.L3_HIT)."""
    out = []
    for i, name in enumerate(canon):
        if "miss" not in name.lower() or i in with_mpki or name in _GENERIC_EVENTS or index[name] != i:
            continue
        if "instructions" in index:
            out.append(GroupRatio(f"{name} MPKI", i, index["instructions"], 1000.0, "per kinsn"))
        hit = next((index[name.replace(a, b)] for a, b in (("MISS", "HIT"), ("miss", "hit"))
                    if a in name and name.replace(a, b) in index), None)
        if hit is not None:
            out.append(GroupRatio(f"{name} rate %", i, i, 100.0, "%", denominator_plus=hit))
    return out


def ratio_sums(sums: Sequence[float], ratio: GroupRatio) -> tuple[float, float]:
    """(numerator, denominator) of a ratio from the members' summed deltas."""
    den = sums[ratio.denominator] + (sums[ratio.denominator_plus] if ratio.denominator_plus is not None else 0.0)
    return float(sums[ratio.numerator]), float(den)


def ratio_value(numerator_sum: float, denominator_sum: float, factor: float) -> float | None:
    """A ratio over a set of samples: the ratio of their summed deltas (None when the denominator is 0)."""
    if denominator_sum <= 0:
        return None
    return float(factor * numerator_sum / denominator_sum)


# --- stack quality ----------------------------------------------------------------------------------------

# The outermost frames of a stack that ran its whole course: the executable's entry and libc's start (main
# thread), thread starts (glibc's start_thread above clone/clone3), and a kernel thread's or CPU's entry. A stack
# whose outermost frame is anything else stopped early (a frame-pointer chain that ended at rbp == 0 in code built
# without frame pointers, a symbol-less frame...), however well its frames are named.
STACK_BOTTOMS = frozenset({
    "_start", "__libc_start_main", "__libc_start_call_main", "main", "start_thread", "clone", "clone3", "__clone",
    "__clone3", "__GI___clone", "__GI___clone3", "thread_start",
    "ret_from_fork", "ret_from_fork_asm", "kthread", "secondary_startup_64", "secondary_startup_64_no_verify",
    "common_startup_64", "start_kernel", "x86_64_start_kernel", "x86_64_start_reservations", "rest_init",
    "cpu_startup_entry",
})


def _root_frames(profile: Profile, stacks: np.ndarray) -> np.ndarray:
    """The frame of the root (outermost) node of each of `stacks`: their distinct nodes climb together, one
    level per step (the tree may hold millions of nodes; only the samples' leaves are walked)."""
    import numpy as np

    from hwprof.pipeline.arrays import unique_inverse

    leaves, inverse = unique_inverse(stacks.astype(np.int64))
    parent = profile.stack_parent
    node = leaves
    going = np.arange(len(node))
    while len(going):
        up = parent[node[going]].astype(np.int64)
        climbing = up >= 0
        going = going[climbing]
        node[going] = up[climbing]
    return profile.stack_frame[node[inverse.reshape(-1)]] if len(node) else np.zeros(0, dtype=np.int32)


def complete_stacks(profile: Profile) -> np.ndarray:
    """Per sample: whether its stack is complete. The one rule every meter uses: the unwinder proved it reached
    the bottom (--call-graph dwarf: the CFI says there is no caller), or the stack ended at a symbolized frame that
    is a real bottom (STACK_BOTTOMS)."""
    import numpy as np

    from hwprof.profile import StackEnd

    has = profile.sample_stack >= 0
    out = has & (profile.sample_end == StackEnd.BOTTOM)
    named = has & (profile.sample_end == StackEnd.COMPLETE)
    if named.any():
        bottom_names = np.array([name in STACK_BOTTOMS for name in profile.strings], dtype=bool)
        roots = _root_frames(profile, profile.sample_stack[named])
        function = profile.frame_function[roots]
        out[named] = (function >= 0) & bottom_names[np.maximum(function, 0)] if len(bottom_names) else False
    return out


_STOP_REASONS = (("BOTTOM", ""), ("NO_CFI", "no CFI"), ("FP_ZERO", "frame pointer zero"),
                 ("UNKNOWN_MAPPING", "unknown mapping"), ("JIT_NO_UNWIND", "JIT code without unwind info"))


def unsymbolized_leaves(profile: Profile) -> np.ndarray:
    """Per sample: whether its leaf frame has no symbol (a stripped binary, JIT code without a map)."""
    import numpy as np

    out = np.zeros(profile.n_samples, dtype=bool)
    has = profile.sample_stack >= 0
    if has.any():
        leaves = profile.stack_frame[profile.sample_stack[has]]
        out[has] = profile.frame_function[leaves] < 0
    return out


@dataclass(frozen=True)
class StackQuality:
    """Samples (weighted by their counts) by how their stacks ended."""

    samples: int
    complete: int
    unknown: int
    truncated: int
    no_stack: int
    unsymbolized_leaf: int   # stacks whose leaf has no symbol
    complete_symbolized: int  # complete stacks whose leaf has a symbol
    stopped: int = 0         # ended at a named frame that is not a real bottom (a frame-pointer chain ended early)
    reasons: tuple[tuple[str, int], ...] = ()  # dwarf unwinding's other stops: ("no CFI", n), ...

    @property
    def complete_share(self) -> float:
        return self.complete / self.samples if self.samples else 0.0

    @property
    def score(self) -> float | None:
        """Share of samples with complete, symbolized stacks: the store's and the page's meter."""
        return self.complete_symbolized / self.samples if self.samples else None

    def line(self) -> str:
        if not self.samples:
            return "stack quality: no samples"
        if self.no_stack == self.samples:
            return "stack quality: no callchains recorded (record with -g)"

        def pct(n: int) -> str:
            return f"{100.0 * n / self.samples:.1f}%"

        return (f"stack quality: {pct(self.complete)} complete, {pct(self.unknown)} ended in unknown frames, "
                f"{pct(self.truncated)} truncated"
                + (f", {pct(self.stopped)} stopped before the bottom" if self.stopped else "")
                + "".join(f", {pct(n)} {label}" for label, n in self.reasons if n)
                + (f", {pct(self.no_stack)} without a stack" if self.no_stack else ""))


def stack_quality(profile: Profile, mask: np.ndarray | None = None) -> StackQuality:
    import numpy as np

    from hwprof.profile import StackEnd

    counts = profile.sample_counts()
    ends = profile.sample_end.astype(np.int64)
    complete = complete_stacks(profile)
    if mask is not None:
        counts, ends, complete = counts[mask], ends[mask], complete[mask]
    by_end = np.bincount(ends, weights=counts, minlength=len(StackEnd))
    leafless = unsymbolized_leaves(profile) if mask is None else unsymbolized_leaves(profile)[mask]
    total = float(counts.sum())
    done = float(counts[complete].sum())
    stopped = float(counts[(ends == StackEnd.COMPLETE) & ~complete].sum())
    reasons = tuple((label, int(by_end[StackEnd[name]])) for name, label in _STOP_REASONS
                    if label and by_end[StackEnd[name]])
    stopped += float(counts[(ends == StackEnd.BOTTOM) & ~complete].sum())
    counted = done + stopped + by_end[StackEnd.UNKNOWN_FRAME] + by_end[StackEnd.TRUNCATED] + sum(n for _, n in reasons)
    return StackQuality(
        samples=int(round(total)), complete=int(round(done)),
        unknown=int(by_end[StackEnd.UNKNOWN_FRAME]), truncated=int(by_end[StackEnd.TRUNCATED]),
        no_stack=int(round(total - counted)),
        unsymbolized_leaf=int(counts[leafless].sum()), complete_symbolized=int(counts[complete & ~leafless].sum()),
        stopped=int(round(stopped)), reasons=reasons)
