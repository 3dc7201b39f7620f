"""Unwind rows for small pieces of code that come without CFI, from what their instructions do to rsp.

Why: some code is copied at run time and has no unwind info of its own, but is known byte for byte -- CPython's
perf trampoline (`_Py_trampoline_func_start`: `sub $8,%rsp; call *%rcx; add $8,%rsp; ret`), copied once per Python
function under `-X perf`. Reading its instructions gives the CFA at every offset exactly, without guessing.

Only the instructions that such stubs use are understood: endbr64, push/pop of a register, sub/add of an 8- or
32-bit immediate to rsp, mov %rsp,%rbp, indirect and direct calls, ret and nops. Anything else ends the analysis
(the rest of the code gets no rows), so a wrong answer is never given.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StackRow:
    offset: int       # byte offset in the code where the row starts
    cfa_offset: int   # CFA = rsp + cfa_offset (return address at CFA - 8)


def stack_rows(code: bytes) -> list[StackRow] | None:
    """CFA rows (rsp-based) from the first byte to the end of `code`, or None when an instruction is not
    understood before the end."""
    rows: list[StackRow] = []
    depth = 8  # at entry: the return address just pushed
    pos = 0

    def mark() -> None:
        if not rows or rows[-1].cfa_offset != depth:
            rows.append(StackRow(pos, depth))

    while pos < len(code):
        mark()
        b = code[pos:]
        rex_b = 1 if b[0] == 0x41 else 0
        op = b[rex_b] if len(b) > rex_b else None
        if b[:4] == b"\xf3\x0f\x1e\xfa":              # endbr64
            pos += 4
        elif op is not None and 0x50 <= op <= 0x57:      # push reg
            depth += 8
            pos += 1 + rex_b
        elif op is not None and 0x58 <= op <= 0x5F:      # pop reg
            depth -= 8
            pos += 1 + rex_b
        elif b[:3] == b"\x48\x83\xec" and len(b) >= 4:   # sub $imm8, %rsp
            depth += b[3]
            pos += 4
        elif b[:3] == b"\x48\x83\xc4" and len(b) >= 4:   # add $imm8, %rsp
            depth -= b[3]
            pos += 4
        elif b[:3] == b"\x48\x81\xec" and len(b) >= 7:   # sub $imm32, %rsp
            depth += int.from_bytes(b[3:7], "little")
            pos += 7
        elif b[:3] == b"\x48\x81\xc4" and len(b) >= 7:   # add $imm32, %rsp
            depth -= int.from_bytes(b[3:7], "little")
            pos += 7
        elif b[:3] == b"\x48\x89\xe5":                   # mov %rsp, %rbp
            pos += 3
        elif op == 0xFF and len(b) > rex_b + 1 and 0xD0 <= b[rex_b + 1] <= 0xD7:  # call *%reg
            pos += 2 + rex_b
        elif b[0] == 0xE8 and len(b) >= 5:               # call rel32
            pos += 5
        elif b[0] == 0xC3:                               # ret: what follows is padding or another entry
            pos += 1
            break
        elif b[0] == 0x90:                               # nop
            pos += 1
        else:
            return None
        if depth < 8:
            return None
    return rows
