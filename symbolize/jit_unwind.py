"""Unwind tables for JIT code that comes without unwind info: CPython's perf trampolines, and simple stubs in jitdumps.

Under `python -X perf` (3.12+), CPython copies `_Py_trampoline_func_start.._Py_trampoline_func_end` once per Python
function into anonymous executable memory and names each copy in /tmp/perf-PID.map as `py::func:file.py`. Every
Python call runs through its copy, so a native stack alternates _PyEval_EvalFrameDefault and trampolines. The copies
have no CFI; perf's unwinder stops at the first one. Here the trampoline's own bytes are read from the interpreter
binary the process mapped, their stack effect gives the CFA at each offset (hwprof.unwind.stackeffect), and every
`py::` entry of the map gets those rows. A jitdump (`-X perf_jit`, 3.13+) carries every entry's code bytes: each
distinct code is analysed the same way, whatever the JIT (entries whose instructions are not understood, such as
full JIT-compiled functions, get no rows and stop the walk as "JIT code without unwind info").
"""

from __future__ import annotations

import os

import numpy as np
from hwprof.symbolize.elf import ElfError, open_image

from hwprof.unwind.stackeffect import stack_rows
from hwprof.unwind.table import RBP_SAME, CfaRule, UnwindTable

TRAMPOLINE_START = "_Py_trampoline_func_start"
TRAMPOLINE_END = "_Py_trampoline_func_end"
PYTHON_PREFIX = "py::"


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


def jit_table(entries: list[tuple[int, int, str, bytes | None]], binaries: list[str]) -> tuple[UnwindTable, int] | None:
    """(table, base) for a process's JIT entries (start, size, name, code bytes or None): rows keyed by runtime
    address - base. Entries with code are analysed from it; `py::` entries without code (a perf map) get the
    trampoline's rows, read from the interpreter among `binaries`. None when no entry gets rows."""
    trampoline: bytes | None = None
    rows_of: dict[bytes, list] = {}
    starts: list[int] = []
    offsets: list[int] = []
    ends: list[int] = []
    for start, size, name, code in sorted(entries, key=lambda e: e[0]):
        if code is None:
            if not name.startswith(PYTHON_PREFIX):
                continue
            if trampoline is None:
                trampoline = trampoline_code(binaries) or b""
            code = trampoline
        if not code:
            continue
        if code not in rows_of:
            rows_of[code] = stack_rows(code) or []
        rows = rows_of[code]
        if not rows:
            continue
        for r in rows:
            starts.append(start + r.offset)
            offsets.append(r.cfa_offset)
        ends.append(start + min(size or len(code), len(code)))
    if not starts:
        return None
    base = min(starts) & ~0xFFF
    row_start = np.array(starts, np.int64) - base
    end_start = np.array(ends, np.int64) - base
    # after each entry's last analysed byte: no rule, unless the next entry's rows start right there
    end_start = end_start[~np.isin(end_start, row_start)]
    all_start = np.concatenate([row_start, end_start])
    all_rule = np.concatenate([np.full(len(row_start), CfaRule.RSP, np.uint8),
                               np.full(len(end_start), CfaRule.NONE, np.uint8)])
    all_off = np.concatenate([np.array(offsets, np.int32), np.zeros(len(end_start), np.int32)])
    order = np.argsort(all_start, kind="stable")
    n = len(all_start)
    table = UnwindTable(all_start[order].astype(np.uint64), all_rule[order], all_off[order],
                        np.where(all_rule[order] == CfaRule.NONE, 0, -8).astype(np.int32),
                        np.full(n, RBP_SAME, np.int32), source=f"JIT stubs analysed from their code ({len(ends)})")
    return table, base
