"""Unwind rows for JIT code from the CFI its JIT wrote (jitdump CODE_UNWINDING_INFO records).

A JIT that writes unwinding info (Node --perf-prof-unwinding-info, the JVM agents, CPython 3.13 -X perf_jit for its
trampolines) gives, per code-load record, an .eh_frame whose pc-relative pointers assume perf's genelf.c layout: the
.eh_frame starts right after the code, rounded up to 8 bytes. The CFI is read exactly as a binary's is
(hwprof.symbolize.cfi: symbolic's CFI cache, then the same breakpad-row conversion): every distinct (code size,
.eh_frame) pair is placed in one ELF image built here, each after a filler of at least its code's rounded size, so
that the code each one describes falls inside its own filler and no two overlap. The filler is a CIE full of
DW_CFA_nop (an .eh_frame entry no FDE refers to): a run of zeros would read as the section's terminator.

Only the entries' framing (the length and CIE-pointer words) is checked here, so that one damaged record is dropped
with a note instead of spoiling the image for every other entry; the instructions are left to symbolic. One thing
is rewritten: V8 (Node --perf-prof-unwinding-info) writes its CIE with augmentation "zLR" and the LSDA encoding
DW_EH_PE_omit, which symbolic's reader (gimli) refuses, dropping every FDE of it without a word. An omitted LSDA
means no LSDA pointer in any FDE, exactly as if there were no "L": the "L" and its encoding byte are taken out of
the CIE and the initial instructions move up, two DW_CFA_nop keep the CIE's length (nothing else moves).
"""

from __future__ import annotations

import struct

import numpy as np
from hwprof.symbolize.cfi import breakpad_rows_of_image

from hwprof.unwind.table import RA_UNDEFINED, RBP_SAME, CfaRule

# (offset from the code's start, cfa rule, cfa offset, return-address rule, rbp rule): hwprof.unwind.table's columns
JitRow = tuple[int, int, int, int, int]

_ALIGN = 16
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SHSTRTAB = b"\0.eh_frame\0.shstrtab\0"
_EM_X86_64 = 62


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def entries_framing(eh_frame: bytes) -> bytes | None:
    """`eh_frame` up to its terminator when its entries' lengths tile it and every FDE's CIE pointer stays inside
    it; None otherwise."""
    pos = 0
    while pos + 4 <= len(eh_frame):
        length = int.from_bytes(eh_frame[pos:pos + 4], "little")
        if length == 0:
            return eh_frame[:pos] if pos else None
        if length == 0xFFFFFFFF or length < 4 or pos + 4 + length > len(eh_frame):
            return None  # 64-bit DWARF never appears in an x86_64 .eh_frame; the rest: cut or damaged
        cie_pointer = int.from_bytes(eh_frame[pos + 4:pos + 8], "little")
        if cie_pointer and cie_pointer > pos + 4:
            return None
        if not cie_pointer:
            cie = _without_omitted_lsda(eh_frame[pos:pos + 4 + length])
            eh_frame = eh_frame[:pos] + cie + eh_frame[pos + len(cie):]
        pos += 4 + length
    return eh_frame[:pos] if pos == len(eh_frame) and pos else None


def _uleb_end(data: bytes, at: int) -> int:
    while at < len(data) and data[at] & 0x80:
        at += 1
    return at + 1


def _without_omitted_lsda(cie: bytes) -> bytes:
    """The CIE with an "L" whose encoding is DW_EH_PE_omit (0xff) taken out; any other CIE unchanged."""
    aug_at = 9
    aug_end = cie.find(b"\0", aug_at)
    augmentation = cie[aug_at:aug_end]
    if aug_end < 0 or not augmentation.startswith(b"z") or b"L" not in augmentation:
        return cie
    at = _uleb_end(cie, _uleb_end(cie, aug_end + 1))          # code and data alignment factors
    at = at + 1 if cie[8] == 1 else _uleb_end(cie, at)        # return-address register: a byte in version 1
    data_at = _uleb_end(cie, at)                              # augmentation data length
    if data_at - at != 1 or cie[at] >= 0x80:
        return cie
    lsda_at = data_at
    for letter in augmentation[1:augmentation.index(b"L")]:   # P carries an encoding and a pointer, R and S less
        if letter != ord("R"):
            return cie
        lsda_at += 1
    if lsda_at >= len(cie) or cie[lsda_at] != 0xFF:
        return cie
    letter_at = aug_at + augmentation.index(b"L")
    out = (cie[:letter_at] + cie[letter_at + 1:at] + bytes([cie[at] - 1]) + cie[data_at:lsda_at]
           + cie[lsda_at + 1:] + b"\0\0")
    return out if len(out) == len(cie) else cie


def _filler(size: int) -> bytes:
    """A CIE of exactly `size` bytes (>= 16, a multiple of 4): version 1, no augmentation, code alignment 1, data
    alignment -8, return address in r16, then DW_CFA_nop."""
    head = struct.pack("<II", size - 4, 0) + b"\x01\x00\x01\x78\x10"
    return head + b"\0" * (size - len(head))


def wrap_in_elf(blobs: list[tuple[int, bytes]]) -> tuple[bytes, list[int]]:
    """An x86_64 ELF image whose .eh_frame holds every (code size, .eh_frame) blob after its filler, and each blob's
    code address in it (link-time address = file offset; one PT_LOAD at 0)."""
    eh_at = _align(_EHDR.size + _PHDR.size, _ALIGN)
    body = bytearray()
    code_at: list[int] = []
    for code_size, eh_frame in blobs:
        filler = max(16, _align(code_size, 8))
        body += _filler(filler)
        code_at.append(eh_at + len(body) - _align(code_size, 8))
        body += eh_frame  # no padding after it: zeros would read as the section's terminator
    strtab_at = eh_at + len(body)
    sh_at = _align(strtab_at + len(_SHSTRTAB), 8)
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    ehdr = _EHDR.pack(ident, 3, _EM_X86_64, 1, 0, _EHDR.size, sh_at, 0, _EHDR.size, _PHDR.size, 1, _SHDR.size, 3, 2)
    phdr = _PHDR.pack(1, 5, 0, 0, 0, strtab_at, strtab_at, 0x1000)
    sections = (_SHDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                + _SHDR.pack(1, 1, 2, eh_at, eh_at, len(body), 0, 0, 8, 0)            # .eh_frame: PROGBITS, ALLOC
                + _SHDR.pack(11, 3, 0, 0, strtab_at, len(_SHSTRTAB), 0, 0, 1, 0))    # .shstrtab
    image = bytearray(ehdr + phdr)
    image += b"\0" * (eh_at - len(image))
    image += body + _SHSTRTAB
    image += b"\0" * (sh_at - len(image))
    return bytes(image + sections), code_at


def jit_cfi_rows(blobs: list[tuple[int, bytes]], notes: list[str], what: str = "jitdump") -> list[list[JitRow]]:
    """Per (code size, .eh_frame) blob: its rows from offset 0 (a NONE row where its FDEs leave gaps), the last
    row holding to the end of the code; an empty list when the blob is damaged or describes none of its code."""
    framed = [entries_framing(eh) for _size, eh in blobs]
    damaged = sum(f is None for f in framed)
    if damaged:
        notes.append(f"{what}: {damaged} JIT unwinding records whose .eh_frame entries do not fit their bytes; "
                     "their code is unwound without them")
    usable = [i for i, f in enumerate(framed) if f is not None]
    out: list[list[JitRow]] = [[] for _ in blobs]
    if not usable:
        return out
    elf, code_at = wrap_in_elf([(blobs[i][0], framed[i]) for i in usable])
    try:
        rows = breakpad_rows_of_image(elf, notes, what)
    except Exception as exc:  # symbolic's own errors for CFI it cannot read: try each blob alone
        if len(usable) == 1:
            notes.append(f"{what}: cannot read a JIT's CFI ({type(exc).__name__}: {exc}); its code is unwound "
                         "without it")
            return out
        for i in usable:
            out[i] = jit_cfi_rows([blobs[i]], notes, what)[0]
        return out
    starts = rows[0].astype(np.int64)
    for i, at in zip(usable, code_at, strict=True):
        size = blobs[i][0]
        first = int(np.searchsorted(starts, at, side="right")) - 1
        last = int(np.searchsorted(starts, at + size, side="left"))
        picked: list[JitRow] = [(0, CfaRule.NONE, 0, RA_UNDEFINED, RBP_SAME)]
        for k in range(max(first, 0), last):
            offset = max(int(starts[k]) - at, 0)
            row = (offset, int(rows[1][k]), int(rows[2][k]), int(rows[3][k]), int(rows[4][k]))
            if picked[-1][0] == offset:
                picked[-1] = row
            else:
                picked.append(row)
        if any(r[1] != CfaRule.NONE for r in picked):
            out[i] = picked
    missed = sum(not out[i] for i in usable)
    if missed:
        notes.append(f"{what}: {missed} JIT unwinding records describe none of the code they come with; that code "
                     "is unwound without them")
    return out
