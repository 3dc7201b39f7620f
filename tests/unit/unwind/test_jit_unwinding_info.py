"""jitdump CODE_UNWINDING_INFO records: read, turned into unwind rows by the binaries' CFI path, preferred over
stack-effect analysis, and never a crash when damaged.

golden/python3.13-perf_jit.dump is the start of a real jitdump written by CPython 3.13.0 `-X perf_jit` (header and
its first three UNWINDING_INFO + CODE_LOAD pairs: trampolines for importlib functions). golden/node20-perf-prof-
unwinding-info.dump holds two of Node 20's (`--perf-prof --perf-prof-unwinding-info`) pairs: a builtin, whose
record is an .eh_frame_hdr alone (no CFI), and a TurboFan-optimized function with a frame-pointer frame, whose CIE
says "zLR" with an omitted LSDA."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hwprof.symbolize.jit_cfi import entries_framing, jit_cfi_rows
from hwprof.symbolize.jit_unwind import CFI_SOURCE, STACK_EFFECT_SOURCE, JitEntry, jit_table
from hwprof.symbolize.jitdump import JITDUMP_MAGIC, parse_jitdump

from hwprof.unwind.stackeffect import stack_rows
from hwprof.unwind.table import RBP_SAME, CfaRule

GOLDEN = Path(__file__).parent / "golden" / "python3.13-perf_jit.dump"
NODE_GOLDEN = Path(__file__).parent / "golden" / "node20-perf-prof-unwinding-info.dump"
TRAMPOLINE = bytes.fromhex("4883ec08ffd14883c408c3")  # sub $8,%rsp; call *%rcx; add $8,%rsp; ret


def _dump() -> bytes:
    return GOLDEN.read_bytes()


def _entries(data: bytes, with_cfi: bool = True) -> list[JitEntry]:
    dump = parse_jitdump(data)
    return [JitEntry(e.start, e.size, e.name, e.code, e.unwinding.eh_frame if with_cfi and e.unwinding else None)
            for e in dump.entries]


def _rule_at(table, base: int, addr: int) -> tuple[int, int, int, int]:
    i = int(table.lookup([addr - base])[0])
    if i < 0:
        return (CfaRule.NONE, 0, 0, 0)
    return (int(table.cfa_rule[i]), int(table.cfa_offset[i]), int(table.ra_offset[i]), int(table.rbp_offset[i]))


def test_cpython_313_writes_one_unwinding_record_before_each_code_load():
    dump = parse_jitdump(_dump())
    assert len(dump.entries) == 3 and dump.unwinding_records == 3 and dump.unwinding_used == 3 and not dump.notes
    for e in dump.entries:
        assert e.name.startswith("py::") and e.code == TRAMPOLINE and e.size == len(TRAMPOLINE)
        # one CIE and one FDE (24 bytes each), then a 20-byte .eh_frame_hdr with one search-table entry
        assert len(e.unwinding.eh_frame) == 48 and len(e.unwinding.eh_frame_hdr) == 20
        assert e.unwinding.eh_frame_hdr[:4] == bytes([1, 0x1B, 3, 0x3B])  # version, pcrel/sdata4, udata4, datarel
        assert e.unwinding.mapped_size == 80
        assert entries_framing(e.unwinding.eh_frame) == e.unwinding.eh_frame


def test_cfi_rows_at_the_trampoline_offsets_agree_with_its_stack_effect():
    jit = jit_table(_entries(_dump()), [])
    table, base = jit.table, jit.base
    assert CFI_SOURCE in table.source and STACK_EFFECT_SOURCE not in table.source and "3 entries" in table.source
    effect = stack_rows(TRAMPOLINE)
    for e in parse_jitdump(_dump()).entries:
        for offset in range(len(TRAMPOLINE)):
            expected = [r.cfa_offset for r in effect if r.offset <= offset][-1]
            assert _rule_at(table, base, e.start + offset) == (CfaRule.RSP, expected, -8, RBP_SAME), offset
        assert _rule_at(table, base, e.start + len(TRAMPOLINE))[0] == CfaRule.NONE  # the padding after the copy
    jit = jit_table(_entries(_dump(), with_cfi=False), [])
    by_effect, effect_base = jit.table, jit.base
    assert STACK_EFFECT_SOURCE in by_effect.source and effect_base == base
    for column in ("start", "cfa_rule", "cfa_offset", "ra_offset", "rbp_offset"):
        assert np.array_equal(getattr(table, column), getattr(by_effect, column)), column


def _genelf_eh_frame(code_size: int, instructions: bytes, align: int = 8) -> bytes:
    """A CIE (zR, pcrel sdata4, CFA = rsp+8, ra at cfa-8) and one FDE for code that ends right before the
    .eh_frame (rounded up to 8), as perf's genelf.c lays them out."""
    cie_body = b"\0\0\0\0" + b"\x01zR\0" + b"\x01\x78\x10\x01\x1b" + b"\x0c\x07\x08\x90\x01"
    cie_body += b"\0" * (-(len(cie_body) + 4) % 8)
    cie = struct.pack("<I", len(cie_body)) + cie_body
    fde_at = len(cie)
    pc_begin = -(fde_at + 8 + (code_size + 7) // 8 * 8)
    fde_body = struct.pack("<Iii", fde_at + 4, pc_begin, code_size) + b"\0" + instructions
    fde_body += b"\0" * (-(len(fde_body) + 4) % align)
    return cie + struct.pack("<I", len(fde_body)) + fde_body


# push %rbp; mov %rsp,%rbp; sub $0x40,%rsp; ...; leave; ret: after the push CFA = rsp+16 and rbp saved at cfa-16,
# after the mov CFA = rbp+16, after the leave CFA = rsp+8 (what gcc emits for a frame-pointer function)
RBP_FUNCTION_CFI = bytes.fromhex("41" "0e10" "8602" "43" "0d06" "4f" "0c0708")


def test_a_frame_pointer_function_gets_rbp_rows_from_its_cfi():
    eh_frame = _genelf_eh_frame(40, RBP_FUNCTION_CFI)
    (rows,) = jit_cfi_rows([(40, eh_frame)], [])
    assert rows == [(0, CfaRule.RSP, 8, -8, RBP_SAME), (1, CfaRule.RSP, 16, -8, -16),
                    (4, CfaRule.RBP, 16, -8, -16), (19, CfaRule.RSP, 8, -8, -16)]
    jit = jit_table([JitEntry(0x7F0000010000, 40, "LazyCompile:f", b"\x55" * 40, eh_frame)], [])
    table, base = jit.table, jit.base
    assert _rule_at(table, base, 0x7F0000010000 + 10) == (CfaRule.RBP, 16, -8, -16)
    assert _rule_at(table, base, 0x7F0000010000 + 40)[0] == CfaRule.NONE


def test_records_of_any_length_are_read_side_by_side():
    """Entries need no alignment: a record 4 bytes short of a multiple of 8 is followed by the next one's filler
    (4 zero bytes of padding would read as the section's terminator and hide every record after it)."""
    short = _genelf_eh_frame(11, bytes.fromhex("440e10"), align=4)
    assert len(short) % 8 == 4
    notes: list[str] = []
    rows = jit_cfi_rows([(11, short), (40, _genelf_eh_frame(40, RBP_FUNCTION_CFI)), (11, short + b"\0" * 4)], notes)
    assert rows[0] == rows[2] == [(0, CfaRule.RSP, 8, -8, RBP_SAME), (4, CfaRule.RSP, 16, -8, RBP_SAME)]
    assert rows[1][2] == (4, CfaRule.RBP, 16, -8, -16) and not notes


def test_stack_effect_stays_the_fallback_for_entries_without_unwinding_info():
    eh_frame = _genelf_eh_frame(40, RBP_FUNCTION_CFI)
    jit = jit_table([JitEntry(0x7F0000010000, 40, "LazyCompile:f", b"\x90" * 40, eh_frame),
                     JitEntry(0x7F0000010100, 11, "py::g:a.py", TRAMPOLINE)], [])
    table, base = jit.table, jit.base
    assert f"1 entries by {CFI_SOURCE}" in table.source and f"1 entries by {STACK_EFFECT_SOURCE}" in table.source
    assert _rule_at(table, base, 0x7F0000010100 + 5)[:2] == (CfaRule.RSP, 16)


def test_node_records_an_eh_frame_hdr_alone_for_code_without_cfi_and_zlr_cies_for_optimized_code():
    dump = parse_jitdump(NODE_GOLDEN.read_bytes())
    builtin, optimized = dump.entries
    assert not dump.notes and dump.unwinding_used == 2
    assert builtin.name.startswith("Builtin:") and builtin.unwinding.eh_frame == b""
    assert len(builtin.unwinding.eh_frame_hdr) == 20
    assert optimized.name.startswith("JS:*descend") and optimized.unwinding.eh_frame[9:13] == b"zLR\0"
    # the omitted LSDA is taken out of the CIE (symbolic refuses it), nothing else moves
    framed = entries_framing(optimized.unwinding.eh_frame)
    assert framed[9:12] == b"zR\0" and len(framed) == len(optimized.unwinding.eh_frame) - 4  # less the terminator
    assert framed[24:] == optimized.unwinding.eh_frame[24:-4]
    jit = jit_table(_entries(NODE_GOLDEN.read_bytes()), [])
    assert f"1 entries by {CFI_SOURCE}" in jit.table.source
    # what readelf --debug-dump=frames-interp prints for these bytes (wrapped as genelf.c does)
    expected = {0: (CfaRule.RSP, 8, -8, RBP_SAME), 15: (CfaRule.RSP, 16, -8, -16), 18: (CfaRule.RBP, 16, -8, -16),
                173: (CfaRule.RSP, 16, -8, -16), 174: (CfaRule.RSP, 8, -8, -16), 192: (CfaRule.RBP, 16, -8, -16)}
    current = None
    for offset in range(optimized.size):
        current = expected.get(offset, current)
        assert _rule_at(jit.table, jit.base, optimized.start + offset) == current, offset
    assert jit.code_ranges[-1][1] >= optimized.start + optimized.size


def _record(rid: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 8)
    return struct.pack("<IIQ", rid, 16 + len(body), 1) + body


def _unwinding(eh_frame: bytes, hdr: bytes = b"\x01\x1b\x03\x3b" + b"\0" * 8, sizes=None) -> bytes:
    unwinding_size, hdr_size = sizes or (len(eh_frame) + len(hdr), len(hdr))
    return _record(4, struct.pack("<QQQ", unwinding_size, hdr_size, 0) + eh_frame + hdr)


def _load(addr: int, code: bytes, index: int) -> bytes:
    return _record(0, struct.pack("<IIQQQQ", 1, 1, addr, addr, len(code), index) + b"f\0" + code)


def _file(*records: bytes) -> bytes:
    return struct.pack("<IIIIIIQQ", JITDUMP_MAGIC, 1, 40, 62, 0, 1, 0, 0) + b"".join(records)


@pytest.mark.parametrize("sizes", [(10_000, 12), (60, 100), (60, 10_000)])
def test_an_unwinding_record_whose_sizes_do_not_fit_is_noted_and_its_code_still_loaded(sizes):
    eh_frame = _genelf_eh_frame(11, b"")
    dump = parse_jitdump(_file(_unwinding(eh_frame, sizes=sizes), _load(0x7F0000001000, TRAMPOLINE, 1)))
    assert len(dump.entries) == 1 and dump.entries[0].unwinding is None
    assert any("damaged unwinding-info" in n for n in dump.notes)


def test_an_unwinding_record_without_its_code_load_is_noted():
    dump = parse_jitdump(_file(_load(0x7F0000001000, TRAMPOLINE, 1), _unwinding(_genelf_eh_frame(11, b""))))
    assert dump.entries[0].unwinding is None and dump.unwinding_used == 0
    assert any("not followed by the code-load record" in n for n in dump.notes)


def test_a_cut_eh_frame_gives_a_note_and_the_stack_effect_rows():
    eh_frame = _genelf_eh_frame(11, bytes.fromhex("440e10460e08"))
    notes: list[str] = []
    jit = jit_table([JitEntry(0x7F0000001000, 11, "py::f:a.py", TRAMPOLINE, eh_frame[:-9])], [], notes=notes)
    table, base = jit.table, jit.base
    assert any("do not fit their bytes" in n for n in table.notes)
    assert STACK_EFFECT_SOURCE in table.source and CFI_SOURCE not in table.source
    assert _rule_at(table, base, 0x7F0000001005)[:2] == (CfaRule.RSP, 16)


def test_damaged_cfi_bytes_never_crash_and_one_bad_record_spoils_no_other():
    good = parse_jitdump(_dump()).entries[0].unwinding.eh_frame
    rng = random.Random(10)
    for _ in range(200):
        bad = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        notes: list[str] = []
        rows = jit_cfi_rows([(11, bytes(bad)), (11, good)], notes)
        assert rows[1] == [(0, CfaRule.RSP, 8, -8, RBP_SAME), (4, CfaRule.RSP, 16, -8, RBP_SAME),
                           (10, CfaRule.RSP, 8, -8, RBP_SAME)]
        jit_table([JitEntry(0x7F0000001000, 11, "py::f:a.py", TRAMPOLINE, bytes(bad))], [])


def test_a_truncated_file_keeps_the_records_before_the_cut():
    data = _dump()
    loads = [0]
    for cut in range(40, len(data) + 1):
        dump = parse_jitdump(data[:cut])
        assert all(e.unwinding is not None for e in dump.entries)
        assert len(dump.entries) >= loads[-1]
        loads.append(len(dump.entries))
        whole = not dump.notes
        assert whole == (cut == 40 or dump.unwinding_records == len(dump.entries) and cut in _record_ends(data))
    assert loads[-1] == 3


def _record_ends(data: bytes) -> set[int]:
    ends, pos = set(), 40
    while pos < len(data):
        pos += struct.unpack_from("<I", data, pos + 4)[0]
        ends.add(pos)
    return ends
