"""The vectorised unwinder: every sample's user stack copy walked one frame per step, all samples at once.

Why vectorised: a capture holds tens of thousands of samples, each 10-30 frames deep. A Python loop per frame per
sample costs seconds; one numpy step over all still-walking samples costs microseconds per sample in total. Each
step does, for every active sample: find the mapping of its ip (one binary search over all address spaces), the
CFI row (one binary search over all binaries' rows), compute the CFA, read the return address (and rbp) from the
sample's stack copy, and move on. Samples leave the walk with a stop reason.

Rules (x86_64, System V):
- The first frame is looked up at its ip; callers at ip - 1 (a return address points after the call, which may
  be the first byte of the next function), except right after a signal frame, where ip is where execution resumes.
- A lazy-binding PLT entry's CFA depends on how far into the 16-byte entry ip is (binutils' expression).
- __restore_rt (rt_sigreturn): the interrupted rip, rsp and rbp are read from the ucontext at rsp.
- Code without CFI (hand-written assembly, JIT code, a stripped binary): one frame-pointer step, when rbp points
  into the copied stack above rsp (CFA = rbp + 16, return address at rbp + 8, caller's rbp at rbp).
- A frame whose return-address rule is undefined (.cfi_undefined rip: _start, clone, clone3) ends the stack
  properly. Reading past the copied bytes ends it as "stack copy too small", with the size that would have sufficed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from hwprof.unwind.table import RA_UNDEFINED, RA_UNSUPPORTED, RBP_LOST, RBP_SAME, CfaRule, UnwindTable

MAX_FRAMES = 256
_ADDR_BITS = 47            # x86_64 user addresses are below 2**47
_SPACE_SHIFT = np.uint64(_ADDR_BITS)
_TABLE_SHIFT = np.uint64(40)  # link-time addresses of binaries stay below 2**40
# Offsets inside the rt_sigframe's ucontext (uc_flags, uc_link, uc_stack, then struct sigcontext).
_UC_RBP, _UC_RSP, _UC_RIP = 40 + 80, 40 + 120, 40 + 128


class StopReason(IntEnum):
    """Why a sample's user stack ended where it did."""

    BOTTOM = 0               # the outermost frame's CFI says there is no caller (_start, clone, clone3)
    RETURN_ADDRESS_ZERO = 1  # a saved return address of 0: an end by convention
    STACK_TRUNCATED = 2      # the next read was past the copied stack: stack copy too small
    NO_CFI = 3               # code without unwind info, and no frame pointer to follow
    FP_ZERO = 4              # frame-pointer fallback stopped at rbp == 0
    UNKNOWN_MAPPING = 5      # ip in no mapping of the process
    JIT_NO_UNWIND_INFO = 6   # ip in anonymous (JIT) memory without unwind info, no frame pointer to follow
    UNSUPPORTED_RULE = 7     # a CFI rule this unwinder does not evaluate
    BAD_FRAME = 8            # the stack did not grow toward the caller (corrupt stack or wrong rule)
    MAX_DEPTH = 9            # MAX_FRAMES reached
    NO_REGISTERS = 10        # the sample has no user registers (a kernel thread, or the copy failed)


STOP_TEXT = {
    StopReason.BOTTOM: "reached the stack's bottom",
    StopReason.RETURN_ADDRESS_ZERO: "return address zero",
    StopReason.STACK_TRUNCATED: "truncated: stack copy too small",
    StopReason.NO_CFI: "no CFI",
    StopReason.FP_ZERO: "frame pointer zero",
    StopReason.UNKNOWN_MAPPING: "unknown mapping",
    StopReason.JIT_NO_UNWIND_INFO: "JIT code without unwind info",
    StopReason.UNSUPPORTED_RULE: "unsupported CFI rule",
    StopReason.BAD_FRAME: "corrupt frame",
    StopReason.MAX_DEPTH: "depth limit",
    StopReason.NO_REGISTERS: "no user registers",
}


class MappingKind(IntEnum):
    FILE = 0   # a file-backed mapping (or the vdso): unwound with its binary's table
    ANON = 1   # anonymous or memfd memory: JIT code


@dataclass
class Mappings:
    """Every code mapping of every address space (a process at one point of its life), for one walk.

    `table` indexes the `tables` list handed to unwind(), -1 when the binary has none; `delta` turns a runtime
    address into the binary's link-time address (runtime - start + pgoff + p_vaddr - p_offset).
    """

    space: np.ndarray   # int64
    start: np.ndarray   # uint64
    end: np.ndarray     # uint64
    table: np.ndarray   # int64
    delta: np.ndarray   # int64
    kind: np.ndarray    # uint8 MappingKind

    @classmethod
    def build(cls, rows: list[tuple[int, int, int, int, int, int]]) -> Mappings:
        """From (space, start, end, table, delta, kind) rows in any order."""
        if not rows:
            z = np.zeros(0, np.int64)
            return cls(z, z.astype(np.uint64), z.astype(np.uint64), z.copy(), z.copy(), z.astype(np.uint8))
        arr = sorted(rows, key=lambda r: (r[0], r[1]))
        col = list(zip(*arr, strict=True))
        return cls(np.array(col[0], np.int64), np.array(col[1], np.uint64), np.array(col[2], np.uint64),
                   np.array(col[3], np.int64), np.array(col[4], np.int64), np.array(col[5], np.uint8))


@dataclass
class StackSamples:
    """The user state of each sample: registers and where its stack copy lies in `stack` (zero-copy: the data
    chunk the samples were read from)."""

    ip: np.ndarray            # uint64
    sp: np.ndarray            # uint64
    bp: np.ndarray            # uint64
    has_regs: np.ndarray      # bool: REGS_USER abi != 0
    space: np.ndarray         # int64 address-space id (Mappings.space)
    stack: np.ndarray         # uint8: the bytes holding every copy
    stack_at: np.ndarray      # int64 byte position of each sample's copy in `stack`
    stack_size: np.ndarray    # int64 valid bytes of each copy (dyn_size)


@dataclass
class Unwound:
    """User frames of every sample, leaf first: the ip, then each caller's return address."""

    frames: np.ndarray        # uint64, all samples' frames one after the other
    offsets: np.ndarray       # int64 (n + 1): sample i's frames are frames[offsets[i]:offsets[i + 1]]
    stop: np.ndarray          # uint8 StopReason
    needed: np.ndarray        # int64: for STACK_TRUNCATED, the copy size that would have held the next read
    fp_steps: np.ndarray      # int32: frames found by the frame-pointer fallback (no CFI)

    def frames_of(self, i: int) -> list[int]:
        return self.frames[self.offsets[i]:self.offsets[i + 1]].tolist()


class _Rows:
    """All tables' rows in one sorted array keyed by (table, link-time address)."""

    def __init__(self, tables: list[UnwindTable]) -> None:
        keys, rule, off, ra, rbp, owner = [], [], [], [], [], []
        for t, table in enumerate(tables):
            if not len(table):
                continue
            keys.append((np.uint64(t) << _TABLE_SHIFT) | (table.start & np.uint64((1 << 40) - 1)))
            rule.append(table.cfa_rule)
            off.append(table.cfa_offset)
            ra.append(table.ra_offset)
            rbp.append(table.rbp_offset)
            owner.append(np.full(len(table), t, np.int64))
        def cat(parts: list[np.ndarray], dt: type) -> np.ndarray:
            return np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)

        self.key = cat(keys, np.uint64)
        self.rule = cat(rule, np.uint8)
        self.offset = cat(off, np.int64)
        self.ra = cat(ra, np.int64)
        self.rbp = cat(rbp, np.int64)
        self.owner = cat(owner, np.int64)

    def find(self, table: np.ndarray, vaddr: np.ndarray) -> np.ndarray:
        """Row per (table, vaddr); -1 where the table has no row at or before vaddr."""
        if not len(self.key):
            return np.full(len(table), -1, np.int64)
        key = (table.astype(np.uint64) << _TABLE_SHIFT) | (vaddr & np.uint64((1 << 40) - 1))
        row = np.searchsorted(self.key, key, side="right").astype(np.int64) - 1
        ok = (row >= 0) & (table >= 0)
        ok[ok] = self.owner[row[ok]] == table[ok]
        return np.where(ok, row, -1)


def _read_u64(stack: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Little-endian u64 at byte positions `at` of `stack` (any alignment)."""
    if not len(at):
        return np.zeros(0, np.uint64)
    raw = stack[at[:, None] + np.arange(8, dtype=np.int64)]
    return np.ascontiguousarray(raw).view("<u8").reshape(-1).astype(np.uint64)


def unwind(samples: StackSamples, mappings: Mappings, tables: list[UnwindTable],
           max_frames: int = MAX_FRAMES) -> Unwound:
    """Walk every sample's stack copy; see the module docstring for the rules."""
    n = len(samples.ip)
    rows = _Rows(tables)
    map_key = (mappings.space.astype(np.uint64) << _SPACE_SHIFT) | mappings.start
    stop = np.full(n, StopReason.MAX_DEPTH, np.uint8)
    needed = np.zeros(n, np.int64)
    fp_steps = np.zeros(n, np.int32)
    out_sample: list[np.ndarray] = []
    out_addr: list[np.ndarray] = []

    idx = np.nonzero(samples.has_regs)[0]
    stop[~samples.has_regs] = StopReason.NO_REGISTERS
    ip = samples.ip[idx].astype(np.uint64)
    sp = samples.sp[idx].astype(np.uint64)
    bp = samples.bp[idx].astype(np.uint64)
    exact = np.ones(len(idx), bool)  # look up ip itself (first frame, after a signal frame), not ip - 1
    sp0 = samples.sp[idx].astype(np.uint64)
    base = samples.stack_at[idx].astype(np.int64)
    size = samples.stack_size[idx].astype(np.int64)
    space = samples.space[idx].astype(np.int64)
    stack = samples.stack

    def finish(mask: np.ndarray, reason: StopReason) -> None:
        stop[idx[mask]] = reason

    def readable(addr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position in the copy of an 8-byte read at addr, and whether it lies inside the copied bytes."""
        rel = addr.astype(np.int64) - sp0.astype(np.int64)
        return rel, (addr >= sp0) & (rel + 8 <= size)

    for depth in range(max_frames):
        if not len(idx):
            break
        out_sample.append(idx)
        out_addr.append(ip)
        if depth == max_frames - 1:
            break  # stop stays MAX_DEPTH for whoever is still walking
        look = ip - (~exact).astype(np.uint64)
        # 1. mapping of each ip
        key = (space.astype(np.uint64) << _SPACE_SHIFT) | (look & np.uint64((1 << _ADDR_BITS) - 1))
        m = np.searchsorted(map_key, key, side="right").astype(np.int64) - 1
        mapped = (m >= 0) & (look < np.uint64(1 << _ADDR_BITS))
        mapped[mapped] = (mappings.space[m[mapped]] == space[mapped]) & (look[mapped] < mappings.end[m[mapped]])
        msafe = np.where(mapped, m, 0)
        table = np.where(mapped, mappings.table[msafe] if len(mappings.table) else -1, -1)
        anon = mapped & (mappings.kind[msafe] == MappingKind.ANON) if len(mappings.kind) else mapped & False
        vaddr = (look.astype(np.int64) + np.where(mapped, mappings.delta[msafe] if len(mappings.delta) else 0, 0))
        # 2. CFI row
        row = rows.find(table, vaddr.astype(np.uint64))
        rsafe = np.maximum(row, 0)
        rule = np.where(row >= 0, rows.rule[rsafe] if len(rows.rule) else CfaRule.NONE, CfaRule.NONE)
        offset = rows.offset[rsafe] if len(rows.offset) else np.zeros(len(row), np.int64)
        ra_off = np.where(row >= 0, rows.ra[rsafe] if len(rows.ra) else RA_UNDEFINED, RA_UNSUPPORTED)
        rbp_off = np.where(row >= 0, rows.rbp[rsafe] if len(rows.rbp) else RBP_SAME, RBP_SAME)
        # 3. CFA, by rule
        cfa = np.zeros(len(idx), np.uint64)
        use_rsp = rule == CfaRule.RSP
        use_rbp = rule == CfaRule.RBP
        plt = rule == CfaRule.PLT
        cfa[use_rsp] = sp[use_rsp] + offset[use_rsp].astype(np.uint64)
        cfa[use_rbp] = bp[use_rbp] + offset[use_rbp].astype(np.uint64)
        pushed = (ip[plt] & np.uint64(15)) >= offset[plt].astype(np.uint64)
        cfa[plt] = sp[plt] + np.uint64(8) + pushed.astype(np.uint64) * np.uint64(8)
        by_cfi = use_rsp | use_rbp | plt
        # no usable rule: one frame-pointer step where rbp points into the copy above rsp
        fallback = ~by_cfi & (rule != CfaRule.SIGRETURN) & mapped
        fp_ok = fallback & (bp > sp) & readable(bp + np.uint64(8))[1]
        cfa[fp_ok] = bp[fp_ok] + np.uint64(16)
        ra_off = np.where(fp_ok, -8, ra_off)
        rbp_off = np.where(fp_ok, -16, rbp_off)
        fp_steps[idx[fp_ok]] += 1
        sig = rule == CfaRule.SIGRETURN
        # 4. who stops here
        ended = np.zeros(len(idx), bool)
        for mask, reason in (
            (~mapped, StopReason.UNKNOWN_MAPPING),
            (fallback & ~fp_ok & anon & (bp == 0), StopReason.JIT_NO_UNWIND_INFO),
            (fallback & ~fp_ok & anon, StopReason.JIT_NO_UNWIND_INFO),
            (fallback & ~fp_ok & (bp == 0) & (rule == CfaRule.NONE), StopReason.NO_CFI),
            (fallback & ~fp_ok & (rule == CfaRule.UNSUPPORTED), StopReason.UNSUPPORTED_RULE),
            (fallback & ~fp_ok, StopReason.NO_CFI),
            (by_cfi & (ra_off == RA_UNDEFINED), StopReason.BOTTOM),
            (by_cfi & (ra_off == RA_UNSUPPORTED), StopReason.UNSUPPORTED_RULE),
        ):
            hit = mask & ~ended
            finish(hit, reason)
            ended |= hit
        # 5. read the return address and the caller's rbp (or the signal frame's saved registers)
        step = ~ended & ~sig
        ra_at = cfa.astype(np.int64) + ra_off
        rel_ra, ok_ra = readable(ra_at.astype(np.uint64))
        saves_rbp = step & (rbp_off != RBP_SAME) & (rbp_off != RBP_LOST)
        rbp_at = cfa.astype(np.int64) + np.where(saves_rbp, rbp_off, 0)
        rel_bp, ok_bp = readable(rbp_at.astype(np.uint64))
        sig_rel, sig_ok = readable(sp + np.uint64(_UC_RIP))
        short = (step & (~ok_ra | (saves_rbp & ~ok_bp))) | (sig & ~ended & ~sig_ok)
        want = np.where(sig, sig_rel, np.maximum(rel_ra, np.where(saves_rbp, rel_bp, 0))) + 8
        needed[idx[short]] = want[short]
        finish(short, StopReason.STACK_TRUNCATED)
        ended |= short
        go = ~ended
        new_ip = ip.copy()
        new_sp = cfa.copy()
        new_bp = bp.copy()
        g = go & ~sig
        new_ip[g] = _read_u64(stack, base[g] + rel_ra[g])
        gb = g & saves_rbp
        new_bp[gb] = _read_u64(stack, base[gb] + rel_bp[gb])
        new_bp[g & (rbp_off == RBP_LOST)] = 0
        gs = go & sig
        if gs.any():
            rel = (sp[gs] - sp0[gs]).astype(np.int64)
            new_bp[gs] = _read_u64(stack, base[gs] + rel + _UC_RBP)
            new_sp[gs] = _read_u64(stack, base[gs] + rel + _UC_RSP)
            new_ip[gs] = _read_u64(stack, base[gs] + rel + _UC_RIP)
        # 6. sanity: the caller's frame lies above this one (a signal frame may switch stacks)
        backwards = g & (new_sp <= sp)
        finish(backwards, StopReason.BAD_FRAME)
        zero = go & ~backwards & (new_ip == 0)
        finish(zero & fp_ok, StopReason.FP_ZERO)
        finish(zero & ~fp_ok, StopReason.RETURN_ADDRESS_ZERO)
        keep = go & ~backwards & ~zero
        idx, ip, sp, bp = idx[keep], new_ip[keep], new_sp[keep], new_bp[keep]
        exact = sig[keep]
        sp0, base, size, space = sp0[keep], base[keep], size[keep], space[keep]

    # Frames grouped by sample, leaf first (steps were appended in depth order).
    if out_sample:
        who = np.concatenate(out_sample)
        addr = np.concatenate(out_addr)
        order = np.argsort(who, kind="stable")
        who, addr = who[order], addr[order]
    else:
        who, addr = np.zeros(0, np.int64), np.zeros(0, np.uint64)
    counts = np.bincount(who, minlength=n) if n else np.zeros(0, np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Unwound(addr.astype(np.uint64), offsets, stop, needed, fp_steps)
