"""JIT code without CFI: rows from a stub's stack effect, jitdump records, and the table they make together."""

from __future__ import annotations

import struct

import pytest
from hwprof.symbolize.jit import PerfMap
from hwprof.symbolize.jit_unwind import JitEntry, jit_table
from hwprof.symbolize.jitdump import JITDUMP_MAGIC, is_jitdump, parse_jitdump

from hwprof.unwind.stackeffect import StackRow, stack_rows
from hwprof.unwind.table import CfaRule

# CPython's _Py_trampoline_func_start (3.12 and 3.13, x86_64): sub $8,%rsp; call *%rcx; add $8,%rsp; ret
TRAMPOLINE = bytes.fromhex("4883ec08ffd14883c408c3")


def test_cpython_trampoline_rows():
    assert stack_rows(TRAMPOLINE) == [StackRow(0, 8), StackRow(4, 16), StackRow(10, 8)]


def test_push_frame_pointer_prologue_and_epilogue():
    code = bytes.fromhex("f30f1efa" "55" "4889e5" "4881ec00010000" "e800000000" "4881c400010000" "5d" "c3")
    assert stack_rows(code) == [StackRow(0, 8), StackRow(5, 16), StackRow(15, 272), StackRow(27, 16),
                                StackRow(28, 8)]


@pytest.mark.parametrize("code", [bytes.fromhex("4889c8c3"), bytes.fromhex("5dc3"), b"\x0f\x0b"])
def test_unknown_instructions_or_an_impossible_stack_give_no_rows(code):
    assert stack_rows(code) is None


def _jitdump(records: list[bytes], pid: int = 42) -> bytes:
    header = struct.pack("<IIIIIIQQ", JITDUMP_MAGIC, 1, 40, 62, 0, pid, 0, 0)
    return header + b"".join(records)


def _load(addr: int, name: str, code: bytes, index: int) -> bytes:
    body = struct.pack("<IIQQQQ", 42, 42, addr, addr, len(code), index) + name.encode() + b"\0" + code
    return struct.pack("<IIQ", 0, 16 + len(body), 1) + body


def _move(index: int, old: int, new: int, size: int) -> bytes:
    body = struct.pack("<IIQQQQQ", 42, 42, new, old, new, size, index)
    return struct.pack("<IIQ", 1, 16 + len(body), 2) + body


def test_jitdump_code_loads_moves_and_a_cut_tail():
    data = _jitdump([_load(0x7F0000001000, "py::f:a.py", TRAMPOLINE, 1),
                     _load(0x7F0000001010, "py::g:a.py", TRAMPOLINE, 2),
                     _move(2, 0x7F0000001010, 0x7F0000002000, len(TRAMPOLINE))])
    dump = parse_jitdump(data + b"\x00\x00\x00\x00\xff\x00\x00\x00")
    assert is_jitdump(data) and dump.pid == 42
    assert [(e.start, e.name) for e in dump.entries] == [(0x7F0000001000, "py::f:a.py"),
                                                         (0x7F0000001010, "py::g:a.py"),
                                                         (0x7F0000002000, "py::g:a.py")]
    assert dump.entries[0].code == TRAMPOLINE and dump.notes  # the partial record at the end is noted
    names = PerfMap.parse("".join(f"{e.start:x} {e.size:x} {e.name}\n" for e in dump.entries))
    assert names.lookup([0x7F0000002005])[0] == ("py::g:a.py", 5)


def test_jitdump_loader_used_for_symbol_names(tmp_path):
    path = tmp_path / "jit-42.dump"
    path.write_bytes(_jitdump([_load(0x7F0000001000, "py::f:a.py", TRAMPOLINE, 1)]))
    assert PerfMap.load(str(path)).lookup([0x7F0000001003])[0] == ("py::f:a.py", 3)


def test_not_a_jitdump():
    with pytest.raises(ValueError):
        parse_jitdump(b"0000 10 name\n")


def test_jit_table_rows_per_entry_and_gaps():
    entries = [JitEntry(0x7F0000001000, 11, "py::f:a.py", TRAMPOLINE),
               JitEntry(0x7F0000001010, 11, "py::g:a.py", TRAMPOLINE),
               JitEntry(0x7F0000003000, 64, "LazyCompile:big", bytes.fromhex("4889c8c3"))]  # not understood: no rows
    jit = jit_table(entries, [])
    table, base = jit.table, jit.base
    assert base == 0x7F0000001000

    def rule(addr: int) -> tuple[int, int]:
        i = int(table.lookup([addr - base])[0])
        return (CfaRule(int(table.cfa_rule[i])), int(table.cfa_offset[i])) if i >= 0 else (CfaRule.NONE, 0)

    assert rule(0x7F0000001006) == (CfaRule.RSP, 16)     # the return address after `call *%rcx`
    assert rule(0x7F0000001000) == (CfaRule.RSP, 8)
    assert rule(0x7F000000100B)[0] == CfaRule.NONE       # padding after the copy
    assert rule(0x7F0000001016) == (CfaRule.RSP, 16)
    assert rule(0x7F0000003002)[0] == CfaRule.NONE
    assert jit.code_ranges == [(0x7F0000001000, 0x7F000000101B), (0x7F0000003000, 0x7F0000003040)]
    unanalysable = jit_table([JitEntry(0x1000, 10, "LazyCompile:x")], [])  # no code, not a Python trampoline
    assert len(unanalysable.table) == 0 and unanalysable.code_ranges == [(0x1000, 0x100A)]
    assert jit_table([], []) is None
