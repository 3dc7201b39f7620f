"""The vectorised unwinder: every sample's user stack copy walked one frame per step, all samples at once.

Why vectorised: a capture holds tens of thousands of samples, each 10-30 frames deep. A Python loop per frame per
sample costs seconds; one numpy step over all still-walking samples costs microseconds per sample in total. Each
step does, for every active sample: find the mapping of its ip (one binary search over all address spaces), the
CFI row (one binary search over all binaries' rows), compute the CFA, read the return address (and rbp) from the
sample's stack copy, and move on. Samples leave the walk with a stop reason.

Rules (x86_64, System V):
- The first frame is looked up at its ip; callers at ip - 1 (a return address points after the call, which may
  be the first byte of the next function), except right after a signal frame, where ip is where execution resumes.
  The output follows the kernel's callchain convention (leaf = pc, callers = return addresses, which stack
  resolution looks up at - 1): the two callers that are not return addresses (the signal trampoline, the
  interrupted frame) are emitted as address + 1.
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
_TABLE_BITS = 40  # link-time addresses of binaries stay below 2**40
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
    """The CFI rows for (table, link-time address) pairs, looked up in each table's own sorted rows.

    The tables are a decode's every mapped binary (2-3M rows in a busy machine's window); the lookups of one step
    of the walk touch a few dozen of them. Searching each touched table keeps the cost with the lookups, where one
    array concatenated from all tables cost 80-550 ms a window before the first step (hwprof agent
    --call-graph dwarf)."""

    def __init__(self, tables: list[UnwindTable]) -> None:
        self.tables = tables

    def lookup(self, table: np.ndarray, vaddr: np.ndarray) -> tuple[np.ndarray, ...]:
        """(has_row, rule, offset, ra, rbp) per (table, vaddr); where no table row covers it: NONE, 0, RA_UNSUPPORTED
        and RBP_SAME."""
        n = len(table)
        has_row = np.zeros(n, bool)
        rule = np.full(n, CfaRule.NONE, np.uint8)
        offset = np.zeros(n, np.int64)
        ra = np.full(n, RA_UNSUPPORTED, np.int64)
        rbp = np.full(n, RBP_SAME, np.int64)
        wanted = (table >= 0) & (vaddr >= 0) & (vaddr < (1 << _TABLE_BITS))
        order = np.argsort(table[wanted], kind="stable")
        members = np.flatnonzero(wanted)[order]
        tables_sorted = table[members]
        bounds = np.flatnonzero(np.diff(tables_sorted)) + 1
        for group in np.split(members, bounds) if len(members) else ():
            rows = self.tables[int(table[group[0]])]
            if not len(rows):
                continue
            local = np.searchsorted(rows.start, vaddr[group].astype(np.uint64), side="right").astype(np.int64) - 1
            found = local >= 0
            at, local = group[found], local[found]
            has_row[at] = True
            rule[at] = rows.cfa_rule[local]
            offset[at] = rows.cfa_offset[local]
            ra[at] = rows.ra_offset[local]
            rbp[at] = rows.rbp_offset[local]
        return has_row, rule, offset, ra, rbp


def _read_u64(stack: np.ndarray, words: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Little-endian u64 at byte positions `at` of `stack` (`words`: the same bytes as u64). Stack slots are 8-byte
    aligned in practice (rsp is, and CFA offsets are multiples of 8): one gather; any other position byte by byte."""
    if not len(at):
        return np.zeros(0, np.uint64)
    aligned = (at & 7) == 0
    if aligned.all():
        return words[at >> 3].astype(np.uint64)
    out = np.empty(len(at), np.uint64)
    out[aligned] = words[at[aligned] >> 3]
    odd = at[~aligned]
    raw = stack[odd[:, None] + np.arange(8, dtype=np.int64)]
    out[~aligned] = np.ascontiguousarray(raw).view("<u8").reshape(-1)
    return out


def unwind(samples: StackSamples, mappings: Mappings, tables: list[UnwindTable],
           max_frames: int = MAX_FRAMES) -> Unwound:
    """Walk every sample's stack copy; see the module docstring for the rules."""
    n = len(samples.ip)
    rows = _Rows(tables)
    # Everything in int64: user addresses are below 2**47, so keys (space << 47 | address) stay positive.
    map_key = (mappings.space.astype(np.int64) << _ADDR_BITS) | mappings.start.astype(np.int64)
    map_space, map_end = mappings.space.astype(np.int64), mappings.end.astype(np.int64)
    map_table, map_delta = mappings.table.astype(np.int64), mappings.delta.astype(np.int64)
    map_anon = mappings.kind == MappingKind.ANON
    has_maps = len(map_key) > 0
    stop = np.full(n, StopReason.MAX_DEPTH, np.uint8)
    needed = np.zeros(n, np.int64)
    fp_steps = np.zeros(n, np.int32)
    out_sample: list[np.ndarray] = []
    out_addr: list[np.ndarray] = []

    idx = np.nonzero(samples.has_regs)[0]
    stop[~samples.has_regs] = StopReason.NO_REGISTERS
    ip = samples.ip[idx].astype(np.int64)
    sp = samples.sp[idx].astype(np.int64)
    bp = samples.bp[idx].astype(np.int64)
    exact = np.ones(len(idx), bool)  # look up ip itself (first frame, after a signal frame), not ip - 1
    sp0 = sp.copy()
    base = samples.stack_at[idx].astype(np.int64)
    size = samples.stack_size[idx].astype(np.int64)
    space = samples.space[idx].astype(np.int64)
    stack = samples.stack
    words = np.frombuffer(stack.data, dtype="<u8", count=len(stack) // 8) if stack.flags.c_contiguous else \
        np.ascontiguousarray(stack[: len(stack) // 8 * 8]).view("<u8")
    addr_mask = (1 << _ADDR_BITS) - 1

    for depth in range(max_frames):
        if not len(idx):
            break
        out_sample.append(idx)
        if depth == max_frames - 1:
            out_addr.append(ip)
            break  # stop stays MAX_DEPTH for whoever is still walking
        look = ip - 1 + exact
        # 1. the mapping of each ip, and its link-time address in that binary
        if has_maps:
            m = np.searchsorted(map_key, (space << _ADDR_BITS) | (look & addr_mask), side="right") - 1
            mm = np.maximum(m, 0)
            mapped = (m >= 0) & (look >= 0) & (look <= addr_mask) & (map_space[mm] == space) & (look < map_end[mm])
            table = np.where(mapped, map_table[mm], -1)
            vaddr = look + map_delta[mm]
            anon = mapped & map_anon[mm]
        else:
            mapped = anon = np.zeros(len(idx), bool)
            table = np.full(len(idx), -1, np.int64)
            vaddr = look
        # 2. its CFI row
        has_row, rule, offset, ra_off, rbp_off = rows.lookup(table, vaddr)
        # 3. the CFA: rsp or rbp plus an offset; the PLT adds 8 once its push has run
        plt = rule == CfaRule.PLT
        offset = np.where(plt, 8 + 8 * ((ip & 15) >= offset), offset)
        cfa = np.where(rule == CfaRule.RBP, bp, sp) + offset
        by_cfi = (rule == CfaRule.RSP) | (rule == CfaRule.RBP) | plt
        sig = rule == CfaRule.SIGRETURN
        # Callers are return addresses, looked up at the call site (address - 1) by stack resolution. Two are not:
        # the signal trampoline (a handler "returns" to its first byte) and the frame the signal interrupted (its
        # pc); they go out as address + 1, so the call-site rule lands on them exactly.
        out_addr.append(ip + ((exact | sig) & (depth > 0)))
        # No usable rule: one frame-pointer step where rbp points into the copy above rsp.
        fallback = ~by_cfi & ~sig & mapped
        if fallback.any():
            fp_ok = fallback & (bp > sp) & (bp + 16 - sp0 <= size)
            cfa = np.where(fp_ok, bp + 16, cfa)
            ra_off = np.where(fp_ok, -8, ra_off)
            rbp_off = np.where(fp_ok, -16, rbp_off)
            fp_steps[idx[fp_ok]] += 1
        else:
            fp_ok = fallback
        # 4. the walks that end here, and why (first matching reason wins)
        walking = (by_cfi & (ra_off < 0)) | fp_ok | sig
        if not walking.all():
            lost = ~fp_ok & fallback
            reason = np.select(
                [~mapped, lost & anon, lost & (rule == CfaRule.UNSUPPORTED), lost,
                 by_cfi & (ra_off == RA_UNDEFINED)],
                [StopReason.UNKNOWN_MAPPING, StopReason.JIT_NO_UNWIND_INFO, StopReason.UNSUPPORTED_RULE,
                 StopReason.NO_CFI, StopReason.BOTTOM], StopReason.UNSUPPORTED_RULE)
            stop[idx[~walking]] = reason[~walking]
        # 5. the return address and the caller's rbp (or a signal frame's saved registers), from the copy
        step = walking & ~sig
        ra_rel = cfa + ra_off - sp0
        saves_rbp = step & (rbp_off < 0)
        rbp_rel = cfa + rbp_off - sp0
        # In an epilogue, after `pop %rbp`, the CFI may still name rbp's old slot, now below rsp: the register
        # already holds the caller's value (and the slot is not in the copy, which starts at rsp).
        saves_rbp &= rbp_rel >= sp - sp0
        below = step & (ra_rel < sp - sp0)
        sig_rel = np.where(sig, sp - sp0 + _UC_RIP, 0)
        want = np.where(sig, sig_rel, np.maximum(ra_rel, np.where(saves_rbp, rbp_rel, 0))) + 8
        short = walking & ~below & (want > size)
        if below.any() or short.any():
            stop[idx[below]] = StopReason.BAD_FRAME
            needed[idx[short]] = want[short]
            stop[idx[short]] = StopReason.STACK_TRUNCATED
        go = walking & ~below & ~short
        new_ip = ip.copy()
        new_sp = cfa
        new_bp = bp.copy()
        g = go & ~sig
        new_ip[g] = _read_u64(stack, words, base[g] + ra_rel[g])
        gb = g & saves_rbp
        if gb.any():
            new_bp[gb] = _read_u64(stack, words, base[gb] + rbp_rel[gb])
        new_bp[g & (rbp_off == RBP_LOST)] = 0
        gs = go & sig
        if gs.any():
            rel = base[gs] + sp[gs] - sp0[gs]
            new_bp[gs] = _read_u64(stack, words, rel + _UC_RBP)
            new_sp = new_sp.copy()
            new_sp[gs] = _read_u64(stack, words, rel + _UC_RSP)
            new_ip[gs] = _read_u64(stack, words, rel + _UC_RIP)
        # 6. sanity: the caller's frame lies above this one (a signal frame may switch stacks); 0 ends a stack
        backwards = g & (new_sp <= sp)
        zero = go & ~backwards & (new_ip == 0)
        if backwards.any() or zero.any():
            stop[idx[backwards]] = StopReason.BAD_FRAME
            stop[idx[zero & fp_ok]] = StopReason.FP_ZERO
            stop[idx[zero & ~fp_ok]] = StopReason.RETURN_ADDRESS_ZERO
        keep = go & ~backwards & ~zero
        if not keep.all():
            idx, new_ip, new_sp, new_bp, sig = idx[keep], new_ip[keep], new_sp[keep], new_bp[keep], sig[keep]
            sp0, base, size, space = sp0[keep], base[keep], size[keep], space[keep]
        ip, sp, bp, exact = new_ip.astype(np.int64), new_sp.astype(np.int64), new_bp.astype(np.int64), sig

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
