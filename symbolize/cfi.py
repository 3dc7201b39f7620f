"""Unwind tables from a binary's CFI (.eh_frame/.eh_frame_hdr, .debug_frame), cached on disk by build-id.

The CFI itself is read by Sentry's `symbolic` (Rust; already what reads DWARF here): its CFI cache evaluates every
FDE's instructions into breakpad `STACK CFI` rows (`.cfa: $rsp 16 +`, `.ra: .cfa -8 + ^`, `$rbp: .cfa -16 + ^`),
which this module turns into the flat numpy rows of hwprof.unwind.table. Measured against pyelftools' CFI parser
(benchmarks/cfi_tables.py): symbolic reads python3.11's 61k FDEs in ~0.15 s where pyelftools needs minutes.

Two things the breakpad form cannot say, filled in from the binary itself:
- the lazy-binding PLT's CFA expression (rsp + 8, + 8 after the push at (ip & 15) >= 11): symbolic drops that row,
  so the .plt section after its first entry gets a PLT row with the threshold read from the expression's bytes;
- signal frames: glibc's __restore_rt (`mov $15, %rax; syscall`, rt_sigreturn) describes the interrupted
  registers with expressions over the ucontext; its code is found by those bytes and gets a SIGRETURN row.

Separate debug files (build-id, .gnu_debuglink, debuginfod: the symbolizer's search) are used when the binary has
no unwind sections of its own (its .debug_frame then). Nothing here raises for a bad file: the table comes back
empty with a note saying why.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from hwprof.symbolize.elf import ElfError, ElfImage, open_image

from hwprof.unwind.table import RA_UNDEFINED, RA_UNSUPPORTED, RBP_LOST, RBP_SAME, CfaRule, UnwindTable

log = logging.getLogger("hwprof.symbolize")

# DW_CFA_def_cfa_expression, length 11, DW_OP_breg7 (rsp) 8, DW_OP_breg16 (rip) 0, DW_OP_lit15, DW_OP_and, then
# DW_OP_litN (the threshold), DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus: what GNU ld and lld emit for .plt.
_PLT_EXPRESSION = b"\x0f\x0b\x77\x08\x80\x00\x3f\x1a"
_DW_OP_LIT0 = 0x30
# mov $15, %rax; syscall -- rt_sigreturn, the body of glibc's __restore_rt (and musl's, and the kernel's own
# vdso trampolines on 32-bit): the handler "returns" to its first byte.
_RT_SIGRETURN = b"\x48\xc7\xc0\x0f\x00\x00\x00\x0f\x05"
_ENDBR64 = b"\xf3\x0f\x1e\xfa"
_XOR_EBP = b"\x31\xed"
_UNWIND_SECTIONS = (".eh_frame", ".debug_frame")
_CACHE_SUFFIX = ".cfi"


def load_or_build_table(path: str, build_id: bytes | None = None, cache_dir: str | None = None,
                        search=None) -> UnwindTable:
    """The unwind table of the binary at `path` (a runtime path; "[vdso]" is this kernel's vdso image)."""
    from hwprof.symbolize.module import cache_path

    real = path
    if path == "[vdso]":
        from hwprof.symbolize.vdso import vdso_image_path

        real = vdso_image_path(cache_dir)
        if real is None:
            return UnwindTable.empty("cannot read this kernel's vdso image")
    elif search is not None:
        real = search.rooted(path)
    try:
        image = open_image(real)
    except ElfError as exc:
        return UnwindTable.empty(str(exc))
    if build_id and image.build_id and image.build_id != build_id:
        return UnwindTable.empty(f"{path}: build-id {image.build_id.hex()} differs from the recorded "
                                 f"{build_id.hex()} (file changed since capture)")
    cached = cache_path(cache_dir, image.build_id or build_id, real, None, _CACHE_SUFFIX) if cache_dir else None
    if cached is not None:
        try:
            with open(cached, "rb") as f:
                return UnwindTable.from_bytes(f.read())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.debug("ignoring unreadable unwind-table cache %s: %s", cached, exc)
    table = build_table(real, image, search)
    if cached is not None and not any("cannot" in n for n in table.notes):
        from hwprof.symbolize.module import _write_atomically

        _write_atomically(cached, table.to_bytes())
    return table


def build_table(path: str, image: ElfImage | None = None, search=None) -> UnwindTable:
    """Read and convert the CFI of one ELF file (no cache)."""
    try:
        image = image or open_image(path)
    except ElfError as exc:
        return UnwindTable.empty(str(exc))
    notes: list[str] = []
    cfi_path, source = path, ".eh_frame"
    present = [s for s in _UNWIND_SECTIONS if _has_bytes(image, s)]
    if not present:
        cfi_path = _debug_file_with_frames(path, image, search, notes)
        if cfi_path is None:
            notes.append(f"{path}: no CFI (.eh_frame or .debug_frame) in the binary or a debug file")
            return _with_segments(UnwindTable.empty(), image, "", notes)
        source = f"{cfi_path} .debug_frame"
    else:
        source = " + ".join(present)
    try:
        text = _breakpad_cfi(cfi_path)
    except Exception as exc:  # symbolic raises its own hierarchy for corrupt or unsupported input
        notes.append(f"{path}: cannot read CFI ({type(exc).__name__}: {exc})")
        return _with_segments(UnwindTable.empty(), image, "", notes)
    rows = _rows_from_breakpad(text, notes, path)
    if image.load_bias:  # symbolic gives addresses relative to the image base (0x400000 for non-PIE)
        rows = (rows[0] + np.uint64(image.load_bias), *rows[1:])
    rows = _patch_plt(rows, image, notes)
    rows = _patch_sigreturn(rows, image)
    rows = _patch_entry(rows, image)
    table = UnwindTable(*rows)
    return _with_segments(table, image, source, notes)


def _has_bytes(image: ElfImage, section: str) -> bool:
    info = image.sections.get(section)
    return info is not None and info.type != "SHT_NOBITS" and info.size > 0


def _debug_file_with_frames(path: str, image: ElfImage, search, notes: list[str]) -> str | None:
    from hwprof.symbolize.debugfile import DebugSearch, find_debug_file

    found = find_debug_file(path, image, image.build_id, search or DebugSearch(), notes.append)
    if found is None or found == path:
        return None
    try:
        debug = open_image(found)
    except ElfError as exc:
        notes.append(str(exc))
        return None
    return found if _has_bytes(debug, ".debug_frame") else None


def _with_segments(table: UnwindTable, image: ElfImage, source: str, notes: list[str]) -> UnwindTable:
    segs = [s for s in image.segments if s.executable] or list(image.segments)
    table.seg_offset = np.array([s.offset for s in segs], np.uint64)
    table.seg_vaddr = np.array([s.vaddr for s in segs], np.uint64)
    table.seg_size = np.array([s.filesz for s in segs], np.uint64)
    table.source = source
    table.notes = tuple(notes)
    return table


def _breakpad_cfi(path: str) -> str:
    import symbolic

    return _breakpad_cfi_of(symbolic.Archive.open(path))


def breakpad_rows_of_image(elf: bytes, notes: list[str], what: str) -> Rows:
    """The rows of an ELF image held in memory (JIT code's CFI wrapped by hwprof.symbolize.jit_cfi): the same
    reading and conversion as a binary's. Raises what symbolic raises for CFI it cannot read."""
    import symbolic

    return _rows_from_breakpad(_breakpad_cfi_of(symbolic.Archive.from_bytes(elf)), notes, what)


def _breakpad_cfi_of(archive) -> str:
    import symbolic

    objects = list(archive.iter_objects())
    if not objects:
        raise ValueError("no object in the file")
    cache = symbolic.CfiCache.from_object(objects[0])
    return cache.open_stream().read().decode("ascii", "replace")


Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rows_from_breakpad(text: str, notes: list[str], path: str) -> Rows:
    """Breakpad STACK CFI records -> sorted rows with NONE rows in the gaps between FDEs.

    `STACK CFI INIT addr size rules` opens an FDE (its initial rules); `STACK CFI addr rules` changes the listed
    registers from that address on. An INIT without `.ra:` is an FDE whose return address is undefined.
    """
    fdes: list[tuple[int, int, list[tuple[int, int, int, int, int]]]] = []
    rows: list[tuple[int, int, int, int, int]] | None = None
    state = [0, 0, 0, RA_UNDEFINED, RBP_SAME]
    bad = 0
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 4 or tokens[0] != "STACK" or tokens[1] != "CFI":
            continue
        try:
            if tokens[2] == "INIT":
                start, size = int(tokens[3], 16), int(tokens[4], 16)
                rows = []
                fdes.append((start, start + size, rows))
                state = [start, CfaRule.NONE, 0, RA_UNDEFINED, RBP_SAME]
                rules = tokens[5:]
            else:
                if rows is None:
                    continue
                state[0] = int(tokens[2], 16)
                rules = tokens[3:]
        except (ValueError, IndexError):
            bad += 1
            continue
        _apply_rules(rules, state)
        if rows and rows[-1][0] == state[0]:
            rows[-1] = tuple(state)
        else:
            rows.append(tuple(state))
    if bad:
        notes.append(f"{path}: {bad} unreadable CFI records skipped")
    fdes.sort(key=lambda f: f[0])
    out: list[tuple[int, int, int, int, int]] = []
    for i, (_start, end, fde_rows) in enumerate(fdes):
        if out and fde_rows and out[-1][0] >= fde_rows[0][0]:
            # overlapping FDEs (duplicate or nested): keep the earlier one's rows up to this start
            while out and out[-1][0] >= fde_rows[0][0]:
                out.pop()
        out.extend(fde_rows)
        next_start = fdes[i + 1][0] if i + 1 < len(fdes) else None
        if next_start is None or next_start > end:
            out.append((end, CfaRule.NONE, 0, RA_UNDEFINED, RBP_SAME))
    if not out:
        z = np.zeros(0, np.int32)
        return np.zeros(0, np.uint64), np.zeros(0, np.uint8), z, z.copy(), z.copy()
    arr = np.array(out, dtype=np.int64)
    return (arr[:, 0].astype(np.uint64), arr[:, 1].astype(np.uint8), arr[:, 2].astype(np.int32),
            arr[:, 3].astype(np.int32), arr[:, 4].astype(np.int32))


def _apply_rules(tokens: list[str], state: list) -> None:
    """Fold `REG: postfix-expression` rules into [addr, cfa_rule, cfa_offset, ra_offset, rbp_offset]."""
    i = 0
    while i < len(tokens):
        reg = tokens[i]
        j = i + 1
        while j < len(tokens) and not tokens[j].endswith(":"):
            j += 1
        expr = tokens[i + 1:j]
        i = j
        if reg == ".cfa:":
            if len(expr) == 3 and expr[2] == "+" and expr[0] in ("$rsp", "$rbp"):
                state[1] = CfaRule.RSP if expr[0] == "$rsp" else CfaRule.RBP
                state[2] = int(expr[1])
            else:
                state[1], state[2] = CfaRule.UNSUPPORTED, 0
        elif reg == ".ra:":
            if len(expr) == 4 and expr[0] == ".cfa" and expr[2] == "+" and expr[3] == "^":
                state[3] = int(expr[1])
            else:
                state[3] = RA_UNSUPPORTED
        elif reg == "$rbp:":
            if len(expr) == 4 and expr[0] == ".cfa" and expr[2] == "+" and expr[3] == "^":
                state[4] = int(expr[1])
            elif expr == ["$rbp"]:
                state[4] = RBP_SAME
            else:
                state[4] = RBP_LOST


def _insert_rows(rows: Rows, at: list[tuple[int, int, int, int, int, int]]) -> Rows:
    """Override [lo, hi) ranges with a fixed rule; the row that held at hi continues after it."""
    if not at:
        return rows
    start, rule, off, ra, rbp = (list(c.tolist()) for c in rows)
    for lo, hi, new_rule, new_off, new_ra, new_rbp in sorted(at):
        idx = np.searchsorted(np.array(start, dtype=np.uint64), np.uint64(hi), side="right") - 1
        after = (hi, rule[idx], off[idx], ra[idx], rbp[idx]) if idx >= 0 else (hi, CfaRule.NONE, 0, RA_UNDEFINED,
                                                                              RBP_SAME)
        keep = [k for k in range(len(start)) if not lo <= start[k] <= hi]
        start, rule, off, ra, rbp = ([c[k] for k in keep] for c in (start, rule, off, ra, rbp))
        for row in ((lo, new_rule, new_off, new_ra, new_rbp), after):
            pos = int(np.searchsorted(np.array(start, dtype=np.uint64), np.uint64(row[0])))
            for col, value in zip((start, rule, off, ra, rbp), row, strict=True):
                col.insert(pos, value)
    return (np.array(start, np.uint64), np.array(rule, np.uint8), np.array(off, np.int32), np.array(ra, np.int32),
            np.array(rbp, np.int32))


def _patch_plt(rows: Rows, image: ElfImage, notes: list[str]) -> Rows:
    plt = image.sections.get(".plt")
    if plt is None or plt.size <= 16 or plt.type == "SHT_NOBITS":
        return rows
    threshold = None
    for section in (".eh_frame", ".debug_frame"):
        try:
            data = image.read_section(section)
        except ElfError:
            data = None
        if data:
            at = data.find(_PLT_EXPRESSION)
            if at >= 0 and at + len(_PLT_EXPRESSION) < len(data):
                lit = data[at + len(_PLT_EXPRESSION)]
                if _DW_OP_LIT0 <= lit < _DW_OP_LIT0 + 32:
                    threshold = lit - _DW_OP_LIT0
                    break
    if threshold is None:
        return rows  # no lazy-binding expression: the rows symbolic gave stand
    return _insert_rows(rows, [(plt.addr + 16, plt.addr + plt.size, CfaRule.PLT, threshold, -8, RBP_SAME)])


def _patch_sigreturn(rows: Rows, image: ElfImage) -> Rows:
    found = []
    try:
        with open(image.path, "rb") as f:
            for seg in image.segments:
                if not seg.executable or seg.filesz > (1 << 30):
                    continue
                f.seek(seg.offset)
                code = f.read(seg.filesz)
                at = code.find(_RT_SIGRETURN)
                while at >= 0:
                    vaddr = seg.vaddr + at
                    # from the byte before: a handler's return address is __restore_rt itself, looked up at -1
                    found.append((vaddr - 1, vaddr + len(_RT_SIGRETURN), CfaRule.SIGRETURN, 0, RA_UNSUPPORTED,
                                  RBP_SAME))
                    at = code.find(_RT_SIGRETURN, at + 1)
    except OSError:
        return rows
    return _insert_rows(rows, found[:16])


def _patch_entry(rows: Rows, image: ElfImage) -> Rows:
    """The ELF entry point is the outermost frame even where no FDE covers it (ld.so's hand-written _start): a
    caller looked up there ends the stack properly instead of as "no CFI". Where an FDE covers it but marks the
    return address undefined only after the first instruction (older crt1.o, as in Node's binary: `ra: u` from
    _start+4), the breakpad form loses that row (symbolic drops an undefined rule after the INIT line), and the walk
    would go on past _start into whatever the stack holds: the whole FDE then says undefined -- when the entry is a
    _start, which opens with `xor %ebp,%ebp` (the ABI's mark of the outermost frame); libc.so's entry point, say, is
    an ordinary function with ordinary CFI."""
    try:
        with open(image.path, "rb") as f:
            f.seek(24)
            entry = int.from_bytes(f.read(8), "little")
            at = image.vaddr_to_offset_one(entry) if entry else None
            first = b""
            if at is not None:
                f.seek(at)
                first = f.read(6)
    except (OSError, ValueError):
        return rows
    if not entry or not any(seg.executable and seg.vaddr <= entry < seg.vaddr + seg.memsz for seg in image.segments):
        return rows
    starts = rows[0]
    i = int(np.searchsorted(starts, np.uint64(entry), side="right")) - 1
    if i >= 0 and rows[1][i] != CfaRule.NONE:
        if rows[3][i] == RA_UNDEFINED or not first.removeprefix(_ENDBR64).startswith(_XOR_EBP):
            return rows  # an FDE describes the entry point (as the outermost frame, or as a function): it stands
        after = starts[(starts > np.uint64(entry)) & (rows[1] == CfaRule.NONE)]  # to the end of that FDE
    else:
        after = starts[starts > np.uint64(entry)]
    end = int(after[0]) if len(after) else entry + 64
    return _insert_rows(rows, [(entry, end, CfaRule.RSP, 8, RA_UNDEFINED, RBP_SAME)])


def cache_dir_default() -> str:
    from hwprof.symbolize.module import default_cache_dir

    return os.environ.get("HWPROF_CACHE_DIR") or default_cache_dir()
