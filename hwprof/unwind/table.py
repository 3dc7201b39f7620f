"""A binary's unwind table: for each address range, how to find the caller's frame.

Why this shape: the unwinder steps every sample at once with numpy, so a binary's CFI must be a few flat, sorted
arrays (one binary search finds the row of thousands of addresses), not a tree of FDE objects. Only what x86_64
code needs to find the return address is kept: the CFA (canonical frame address: the stack pointer before the
call) as rsp or rbp plus an offset, or the PLT's expression; where the return address is saved relative to the CFA
(or that there is none: the outermost frame); and where rbp is saved (a later frame may compute its CFA from rbp).
The other callee-saved registers never feed a CFA rule in compiled x86_64 code and are not tracked.

Rows are keyed by the binary's link-time address (what .eh_frame says); a row holds until the next row's start.
Addresses outside every FDE have a NONE row, so a lookup never borrows a neighbouring function's rule.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

TABLE_FORMAT = 3  # bumped whenever the rows a binary gets change (cached tables are rebuilt)


class CfaRule(IntEnum):
    NONE = 0         # no CFI covers this address
    RSP = 1          # CFA = rsp + offset
    RBP = 2          # CFA = rbp + offset
    PLT = 3          # lazy-binding PLT entry: CFA = rsp + 8, + 8 more once (ip & 15) >= offset (binutils' expression)
    SIGRETURN = 4    # __restore_rt: the interrupted registers are in the ucontext at rsp
    UNSUPPORTED = 5  # a CFA rule this unwinder does not evaluate (another register, an arbitrary expression)


# Return-address rule sentinels (ra_offset is otherwise a negative offset from the CFA).
RA_UNDEFINED = 0     # .cfi_undefined rip: the outermost frame (_start, clone, clone3, thread entry)
RA_UNSUPPORTED = 1   # saved in another register or by an expression
# rbp rule sentinels (rbp_offset is otherwise a negative offset from the CFA).
RBP_SAME = 0         # rbp keeps its value in the caller
RBP_LOST = 1         # saved somewhere this unwinder does not follow: the caller's rbp is unknown


@dataclass
class UnwindTable:
    """One binary's rows, sorted by start address, plus its load segments (to turn file offsets into the
    link-time addresses the rows use) and notes on anything that could not be read."""

    start: np.ndarray        # uint64 link-time address where each row begins
    cfa_rule: np.ndarray     # uint8 CfaRule
    cfa_offset: np.ndarray   # int32 (PLT: the (ip & 15) threshold)
    ra_offset: np.ndarray    # int32 offset of the saved return address from the CFA, or an RA_* sentinel
    rbp_offset: np.ndarray   # int32 offset of the saved rbp from the CFA, or an RBP_* sentinel
    seg_offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # PT_LOAD p_offset
    seg_vaddr: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))   # PT_LOAD p_vaddr
    seg_size: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))    # PT_LOAD p_filesz
    source: str = ""         # where the rows came from (".eh_frame", a debug file's ".debug_frame", ...)
    notes: tuple[str, ...] = ()

    _COLUMNS = ("start", "cfa_rule", "cfa_offset", "ra_offset", "rbp_offset", "seg_offset", "seg_vaddr", "seg_size")

    @classmethod
    def empty(cls, note: str = "") -> UnwindTable:
        z = np.zeros(0, np.int32)
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint8), z, z.copy(), z.copy(),
                   notes=(note,) if note else ())

    def __len__(self) -> int:
        return len(self.start)

    def lookup(self, vaddrs: np.ndarray) -> np.ndarray:
        """Row index per link-time address; -1 before the first row."""
        return np.searchsorted(self.start, np.asarray(vaddrs, dtype=np.uint64), side="right").astype(np.int64) - 1

    def vaddr_delta(self, file_offset: int) -> int | None:
        """p_vaddr - p_offset of the segment holding `file_offset` (a mapping's pgoff): link-time address =
        file offset + delta. None when no segment holds it."""
        for off, vaddr, size in zip(self.seg_offset.tolist(), self.seg_vaddr.tolist(), self.seg_size.tolist(),
                                    strict=True):
            if off <= file_offset < off + max(size, 1):
                return vaddr - off
        return None

    # --- storage (numpy arrays + a small text header, no pickle) -------------------------------------
    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        header = "\n".join([str(TABLE_FORMAT), self.source, *self.notes]).encode("utf-8", "surrogateescape")
        np.savez(out, header=np.frombuffer(header, np.uint8), **{c: getattr(self, c) for c in self._COLUMNS})
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> UnwindTable:
        """Raises ValueError for anything that is not a table of this format."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                lines = bytes(npz["header"]).decode("utf-8", "surrogateescape").split("\n")
                if lines[0] != str(TABLE_FORMAT):
                    raise ValueError(f"unwind table format {lines[0]!r}")
                columns = {c: npz[c] for c in cls._COLUMNS}
        except (OSError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"not an unwind table ({exc})") from None
        return cls(**columns, source=lines[1] if len(lines) > 1 else "", notes=tuple(lines[2:]))


@dataclass
class JitUnwindTable:
    """A process's JIT code for the unwinder: its rows, keyed by runtime address - `base`, and the address ranges
    its JIT map names. A JIT may make code executable with mprotect, which the capture never sees as a mapping
    (V8 does): those ranges are where the walk looks the rows up all the same."""

    table: UnwindTable
    base: int
    code_ranges: list[tuple[int, int]] = field(default_factory=list)  # runtime [start, end), sorted, disjoint
