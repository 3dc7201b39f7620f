"""The vectorised unwinder's rules, on hand-built stacks and tables (one binary mapped at 0x400000)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hwprof.unwind.table import RA_UNDEFINED, RBP_SAME, CfaRule, UnwindTable
from hwprof.unwind.walk import MappingKind, Mappings, StackSamples, StopReason, unwind

BASE = 0x400000
SP = 0x7FFF0000


def table(rows: list[tuple[int, CfaRule, int, int, int]]) -> UnwindTable:
    cols = list(zip(*rows, strict=True))
    return UnwindTable(np.array(cols[0], np.uint64), np.array(cols[1], np.uint8), np.array(cols[2], np.int32),
                       np.array(cols[3], np.int32), np.array(cols[4], np.int32),
                       np.array([0], np.uint64), np.array([0], np.uint64), np.array([0x10000], np.uint64))


# Functions of the fake binary (link-time addresses == file offsets, mapped at BASE):
#   0x1000 leaf:   CFA rsp+8           (no frame)
#   0x1100 mid:    CFA rsp+32          (pushes and locals), rbp saved at CFA-16
#   0x1200 uses_bp: CFA rbp+16         (frame-pointer function)
#   0x1300 start:  CFA rsp+8, RA undefined (_start)
#   0x1400 nocfi:  no rows
#   0x1500 plt:    lazy PLT entries, threshold 11
#   0x1600 sigret: __restore_rt (its row starts at the nop before it)
ROWS = [
    (0x1000, CfaRule.RSP, 8, -8, RBP_SAME),
    (0x1100, CfaRule.RSP, 32, -8, -16),
    (0x1200, CfaRule.RBP, 16, -8, -16),
    (0x1300, CfaRule.RSP, 8, RA_UNDEFINED, RBP_SAME),
    (0x1400, CfaRule.NONE, 0, RA_UNDEFINED, RBP_SAME),
    (0x1500, CfaRule.PLT, 11, -8, RBP_SAME),
    (0x15FF, CfaRule.SIGRETURN, 0, 1, RBP_SAME),  # from the byte before, as cfi.py builds it
    (0x1700, CfaRule.NONE, 0, RA_UNDEFINED, RBP_SAME),
]


def mappings() -> Mappings:
    return Mappings.build([(0, BASE, BASE + 0x10000, 0, -BASE, MappingKind.FILE),
                           (0, 0x10000000, 0x10001000, -1, 0, MappingKind.ANON)])


def run(ip: int, stack_words: dict[int, int], bp: int = 0, size: int = 4096, copy: int | None = None):
    """One sample: ip, rsp = SP, the given words at SP + offset; `copy` bytes copied (default: size)."""
    data = bytearray(size)
    for off, value in stack_words.items():
        struct.pack_into("<Q", data, off, value)
    samples = StackSamples(np.array([ip], np.uint64), np.array([SP], np.uint64), np.array([bp], np.uint64),
                           np.array([True]), np.zeros(1, np.int64), np.frombuffer(bytes(data), np.uint8),
                           np.zeros(1, np.int64), np.array([copy if copy is not None else size], np.int64))
    out = unwind(samples, mappings(), [table(ROWS)])
    return out.frames_of(0), StopReason(out.stop[0]), int(out.needed[0])


def test_leaf_then_rsp_frames_to_a_proper_bottom():
    # leaf at 0x1010: RA at SP; mid (CFA = SP+8+32): RA at SP+8+24; start: RA undefined
    frames, stop, _ = run(BASE + 0x1010, {0: BASE + 0x1105, 8 + 24: BASE + 0x1305})
    assert frames == [BASE + 0x1010, BASE + 0x1105, BASE + 0x1305]
    assert stop == StopReason.BOTTOM


def test_callers_are_looked_up_at_the_call_site():
    # the return address 0x1100 is the first byte of `mid`: the call was the last instruction of `leaf`,
    # so the caller's rule is leaf's (rsp+8), not mid's
    frames, stop, _ = run(BASE + 0x1010, {0: BASE + 0x1100, 8: BASE + 0x1305})
    assert frames == [BASE + 0x1010, BASE + 0x1100, BASE + 0x1305]
    assert stop == StopReason.BOTTOM


def test_rbp_based_cfa_and_saved_rbp():
    # mid saves the caller's rbp at CFA-16; uses_bp then computes its CFA from that rbp
    caller_bp = SP + 0x200
    frames, stop, _ = run(BASE + 0x1110, {24: BASE + 0x1210, 16: caller_bp,
                                          0x200 + 8: BASE + 0x1305})
    assert frames == [BASE + 0x1110, BASE + 0x1210, BASE + 0x1305]
    assert stop == StopReason.BOTTOM


def test_plt_expression_depends_on_the_entry_offset():
    # before the push (offset < 11): CFA = rsp + 8; after it: rsp + 16
    frames, _, _ = run(BASE + 0x1520, {0: BASE + 0x1305})
    assert frames[1] == BASE + 0x1305
    frames, _, _ = run(BASE + 0x152B, {8: BASE + 0x1305})
    assert frames[1] == BASE + 0x1305


def test_signal_frame_restores_the_interrupted_registers():
    # the handler (leaf) returns into __restore_rt; the ucontext at its CFA holds rip/rsp/rbp of the
    # interrupted code, whose ip is looked up exactly (no -1), then a normal step continues
    uc = 8  # the handler's CFA
    interrupted_sp = SP + 0x400
    words = {0: BASE + 0x1600, uc + 168: BASE + 0x1000, uc + 160: interrupted_sp, uc + 120: 0,
             0x400: BASE + 0x1305}
    frames, stop, _ = run(BASE + 0x1010, words)
    # the trampoline and the interrupted pc are not return addresses: +1, so resolution's "- 1" lands on them
    assert frames == [BASE + 0x1010, BASE + 0x1600 + 1, BASE + 0x1000 + 1, BASE + 0x1305]
    assert stop == StopReason.BOTTOM


def test_stack_copy_too_small_says_how_much_was_needed():
    frames, stop, needed = run(BASE + 0x1110, {24: BASE + 0x1305}, size=4096, copy=16)
    assert frames == [BASE + 0x1110]
    assert stop == StopReason.STACK_TRUNCATED
    assert needed == 32  # the return address at SP+24 needs 32 bytes


def test_code_without_cfi_follows_the_frame_pointer():
    bp = SP + 0x40
    frames, stop, _ = run(BASE + 0x1410, {0x40: 0, 0x48: BASE + 0x1305}, bp=bp)
    assert frames == [BASE + 0x1410, BASE + 0x1305]
    assert stop == StopReason.BOTTOM


def test_code_without_cfi_and_without_frame_pointer_stops_with_the_reason():
    frames, stop, _ = run(BASE + 0x1410, {}, bp=0)
    assert frames == [BASE + 0x1410]
    assert stop == StopReason.NO_CFI


def test_jit_code_without_unwind_info():
    frames, stop, _ = run(0x10000010, {}, bp=0)
    assert stop == StopReason.JIT_NO_UNWIND_INFO
    frames, stop, _ = run(0x10000010, {0x48: BASE + 0x1305}, bp=SP + 0x40)
    assert frames == [0x10000010, BASE + 0x1305] and stop == StopReason.BOTTOM


def test_unknown_mapping_and_zero_return_address():
    assert run(0x20000000, {})[1] == StopReason.UNKNOWN_MAPPING
    assert run(BASE + 0x1010, {0: 0})[1] == StopReason.RETURN_ADDRESS_ZERO


def test_a_frame_that_does_not_move_up_the_stack_stops():
    # uses_bp with rbp below rsp: the CFA would be below the current frame
    frames, stop, _ = run(BASE + 0x1210, {}, bp=SP - 0x100)
    assert stop in (StopReason.BAD_FRAME, StopReason.STACK_TRUNCATED)


def test_many_samples_at_once_keep_their_own_frames():
    n = 500
    size = 64
    data = bytearray(size * n)
    ips = np.empty(n, np.uint64)
    for i in range(n):
        if i % 2:  # leaf -> start
            struct.pack_into("<Q", data, i * size, BASE + 0x1305)
            ips[i] = BASE + 0x1010
        else:  # start itself
            ips[i] = BASE + 0x1301
    samples = StackSamples(ips, np.full(n, SP, np.uint64), np.zeros(n, np.uint64), np.ones(n, bool),
                           np.zeros(n, np.int64), np.frombuffer(bytes(data), np.uint8),
                           np.arange(n, dtype=np.int64) * size, np.full(n, size, np.int64))
    out = unwind(samples, mappings(), [table(ROWS)])
    assert (out.stop == StopReason.BOTTOM).all()
    depth = np.diff(out.offsets)
    assert depth[1::2].tolist() == [2] * (n // 2) and depth[::2].tolist() == [1] * (n // 2)
    assert out.frames_of(1) == [BASE + 0x1010, BASE + 0x1305]


def test_samples_without_registers():
    samples = StackSamples(np.zeros(1, np.uint64), np.zeros(1, np.uint64), np.zeros(1, np.uint64),
                           np.array([False]), np.zeros(1, np.int64), np.zeros(8, np.uint8), np.zeros(1, np.int64),
                           np.zeros(1, np.int64))
    out = unwind(samples, mappings(), [table(ROWS)])
    assert out.stop[0] == StopReason.NO_REGISTERS and out.frames_of(0) == []


@pytest.mark.parametrize("data", [b"", b"garbage", b"PK\x03\x04broken"])
def test_unwind_table_bytes_reject_garbage(data):
    with pytest.raises(ValueError):
        UnwindTable.from_bytes(data)


def test_unwind_table_bytes_round_trip():
    t = table(ROWS)
    back = UnwindTable.from_bytes(t.to_bytes())
    assert back.start.tolist() == t.start.tolist() and back.rbp_offset.tolist() == t.rbp_offset.tolist()
    assert back.vaddr_delta(0x10) == 0
