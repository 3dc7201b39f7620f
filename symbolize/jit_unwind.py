"""Unwind tables for JIT code that comes without unwind info: CPython's perf trampolines, and simple stubs in jitdumps.

Under `python -X perf` (3.12+), CPython copies `_Py_trampoline_func_start.._Py_trampoline_func_end` once per Python
function into anonymous executable memory and names each copy in /tmp/perf-PID.map as `py::func:file.py`. Every
Python call runs through its copy, so a native stack alternates _PyEval_EvalFrameDefault and trampolines. The copies
have no CFI; perf's unwinder stops at the first one. Here the trampoline's own bytes are read from the interpreter
binary the process mapped, their stack effect gives the CFA at each offset (hwprof.unwind.stackeffect), and every
`py::` entry of the map gets those rows. A jitdump (`-X perf_jit`, 3.13+) carries every entry's code bytes: each
distinct code is analysed the same way, whatever the JIT (entries whose instructions are not understood, such as
full JIT-compiled functions, get no rows and stop the walk as "JIT code without unwind info").

A jitdump entry that comes with the JIT's own CFI (a CODE_UNWINDING_INFO record: Node --perf-prof-unwinding-info,
the JVM agents, CPython 3.13's trampolines) is unwound by that instead (hwprof.symbolize.jit_cfi); stack-effect
analysis stays the fallback for entries without it, or whose CFI is damaged, and for perf maps. The table's source
says how many entries each way got their rows, so the capture's notes tell which path unwound the JIT frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from hwprof.symbolize.elf import ElfError, open_image
from hwprof.symbolize.jit_cfi import JitRow, jit_cfi_rows

from hwprof.unwind.stackeffect import stack_rows
from hwprof.unwind.table import RA_UNDEFINED, RBP_SAME, CfaRule, JitUnwindTable, UnwindTable

CFI_SOURCE = "the JIT's own CFI (jitdump unwinding info)"
STACK_EFFECT_SOURCE = "stack-effect analysis of their code"
TRAMPOLINE_START = "_Py_trampoline_func_start"
TRAMPOLINE_END = "_Py_trampoline_func_end"
PYTHON_PREFIX = "py::"


@dataclass(frozen=True)
class JitEntry:
    """One piece of JIT code as a perf map or a jitdump describes it."""

    start: int
    size: int
    name: str
    code: bytes | None = None      # its bytes (jitdump), None for a perf map's line
    eh_frame: bytes | None = None  # the JIT's CFI for it (a jitdump's unwinding info), laid out as genelf.c does

    def __post_init__(self) -> None:
        if self.eh_frame == b"":  # an .eh_frame_hdr alone (V8, for code it has no CFI for): no CFI
            object.__setattr__(self, "eh_frame", None)


def trampoline_code(binaries: list[str]) -> bytes | None:
    """The bytes of CPython's perf trampoline, from the first of `binaries` (python executables, libpython) that
    has the two symbols."""
    for path in binaries:
        if "python" not in os.path.basename(path):
            continue
        try:
            image = open_image(path)
            names = image.symbols.names
            if TRAMPOLINE_START not in names or TRAMPOLINE_END not in names:
                continue
            start = int(image.symbols.starts[names.index(TRAMPOLINE_START)])
            end = int(image.symbols.starts[names.index(TRAMPOLINE_END)])
            offset = image.vaddr_to_offset_one(start)
            if offset is None or not 0 < end - start <= 64:
                continue
            with open(image.path, "rb") as f:
                f.seek(offset)
                return f.read(end - start)
        except (ElfError, OSError, ValueError):
            continue
    return None


def jit_table(entries: list[JitEntry], binaries: list[str], what: str = "JIT map",
              notes: list[str] | None = None) -> JitUnwindTable | None:
    """A process's JIT entries for the unwinder: rows keyed by runtime address - base, and the ranges of all its
    code (with rows or not: nearby entries merged). An entry with its JIT's CFI gets rows from it; otherwise entries
    with code are analysed from it, and `py::` entries without code (a perf map) get the trampoline's rows, read
    from the interpreter among `binaries`. None when there are no entries.
    `notes` (what reading the map said) go into the table's notes, with this function's own."""
    notes = list(notes or [])
    with_cfi = sorted({(e.size, e.eh_frame) for e in entries if e.eh_frame and e.size})
    cfi_of = dict(zip(with_cfi, jit_cfi_rows(with_cfi, notes, what), strict=True))
    trampoline: bytes | None = None
    effect_of: dict[bytes, list[JitRow]] = {}
    by_cfi = by_effect = 0
    rows: dict[int, JitRow] = {}     # runtime address -> row; an entry's rows win over an earlier entry's end
    ends: list[int] = []
    for e in sorted(entries, key=lambda e: e.start):
        picked = cfi_of.get((e.size, e.eh_frame)) if e.eh_frame else None
        end = e.start + e.size
        if picked:
            by_cfi += 1
        else:
            code = e.code
            if code is None:
                if not e.name.startswith(PYTHON_PREFIX):
                    continue
                if trampoline is None:
                    trampoline = trampoline_code(binaries) or b""
                code = trampoline
            if not code:
                continue
            if code not in effect_of:
                effect_of[code] = [(r.offset, CfaRule.RSP, r.cfa_offset, -8, RBP_SAME) for r in stack_rows(code) or []]
            picked = effect_of[code]
            if not picked:
                continue
            by_effect += 1
            end = e.start + min(e.size or len(code), len(code))
        for offset, *rule in picked:
            rows[e.start + offset] = (e.start + offset, *rule)
        ends.append(end)
    if not entries:
        return None
    ranges = code_ranges(entries)
    if not rows:
        empty = UnwindTable.empty()
        empty.source, empty.notes = f"JIT code: none of {len(entries)} entries has unwind rows", tuple(notes)
        return JitUnwindTable(empty, 0, ranges)
    for end in ends:  # after each entry's last byte: no rule, unless the next entry's rows start right there
        rows.setdefault(end, (end, CfaRule.NONE, 0, RA_UNDEFINED, RBP_SAME))
    base = min(rows) & ~0xFFF
    arr = np.array(sorted(rows.values()), np.int64)
    ways = [f"{n} entries by {how}" for n, how in ((by_cfi, CFI_SOURCE), (by_effect, STACK_EFFECT_SOURCE)) if n]
    table = UnwindTable((arr[:, 0] - base).astype(np.uint64), arr[:, 1].astype(np.uint8), arr[:, 2].astype(np.int32),
                        arr[:, 3].astype(np.int32), arr[:, 4].astype(np.int32),
                        source="JIT code unwound: " + ", ".join(ways), notes=tuple(notes))
    return JitUnwindTable(table, base, ranges)


def code_ranges(entries: list[JitEntry], gap: int = 4096) -> list[tuple[int, int]]:
    """The runtime ranges the entries' code occupies, entries less than `gap` apart merged into one range."""
    out: list[list[int]] = []
    for e in sorted(entries, key=lambda e: e.start):
        end = e.start + max(e.size, 1)
        if out and e.start <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([e.start, end])
    return [(lo, hi) for lo, hi in out]
