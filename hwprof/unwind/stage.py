"""The unwinding stage of the decoder: per batch of dwarf samples, their user frames and why each stack ended.

The decoder gives it, batch by batch, the samples that carry user registers and a stack copy, with its address
spaces (hwprof.pipeline.spaces.AddressSpaces, built from the side records: the one model of every process's mappings
over time, which stack resolution uses too). The stage unwinds them while the batch's bytes are at hand (stack
copies are never kept: memory stays bounded by the batch) and hands back, per sample, the user frames leaf first in
the kernel's callchain convention, so everything after it (deduplication, stack resolution, symbolization) treats
unwound stacks exactly like the kernel's callchains. hwprof.unwind.dwarf_stage plugs it into the pipeline.

Binaries' unwind tables come from an injected provider (hwprof.symbolize builds and caches them): core never reads
ELF files itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import numpy as np

from hwprof.perf.records import Mmap, SampleLayout
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.unwind.samples import UserState, has_user_stacks, supported
from hwprof.unwind.table import JitUnwindTable, UnwindTable
from hwprof.unwind.walk import STOP_TEXT, MappingKind, Mappings, StackSamples, StopReason, Unwound, unwind

_JITDUMP_NAME = re.compile(r"jit-\d+\.dump")
TableProvider = Callable[[str, "bytes | None"], UnwindTable]
# (pid, the paths of the files it mapped) -> its JIT code's table, the base its rows are relative to, and its ranges
JitTableProvider = Callable[[int, "list[str]"], "JitUnwindTable | None"]


def is_jit_name(filename: str) -> bool:
    """Anonymous executable memory: where JITs put code (perf names it //anon; memfd-backed JIT heaps too)."""
    return (not filename or filename.startswith("//anon") or filename.startswith("[anon")
            or filename.startswith("/memfd:") or filename in ("[heap]", "[stack]"))


class UnwindStage:
    def __init__(self, tables: TableProvider, build_ids: dict[str, bytes] | None = None,
                 jit_tables: JitTableProvider | None = None) -> None:
        self._provide = tables
        self._provide_jit = jit_tables
        self._jit_of: dict[int, tuple[int, int, list[tuple[int, int]]] | None] = {}  # pid -> (table, base, ranges)
        self._build_ids = build_ids or {}
        self._tables: list[UnwindTable] = []
        self._table_of: dict[tuple[str, bytes | None], int] = {}
        # (pid, generation, how many changes the pid had then) -> space id: a change that arrives later (rings of
        # different CPUs reach the file in rounds) renumbers the generations, so the count is part of the key.
        self._space_ids: dict[tuple[int, int, int], int] = {}
        self._space_rows: dict[int, list[tuple[int, int, int, int, int, int]]] = {}
        self.stops: Counter[int] = Counter()
        self.needed_max = 0
        self.truncated_sizes: list[int] = []
        self.copy_size = 0
        self.samples = 0
        self.fp_frames = 0
        self.table_notes: list[str] = []
        self.refused: str | None = None

    # --- address spaces: the pipeline's (hwprof.pipeline.spaces), as rows for the vectorised walk ---------------
    def _spaces_of(self, spaces: AddressSpaces, pid: np.ndarray, when: np.ndarray) -> np.ndarray:
        """Each sample's space id: its process's address space at the sample's time."""
        out = np.empty(len(pid), np.int64)
        for p in np.unique(pid).tolist():
            mask = pid == p
            gens = spaces.generations(p, when[mask])
            version = len(spaces.changes.get(p, ()))
            ids = {g: self._space(spaces, p, g, version) for g in np.unique(gens).tolist()}
            out[mask] = [ids[g] for g in gens.tolist()] if len(ids) > 1 else next(iter(ids.values()))
        return out

    def _space(self, spaces: AddressSpaces, pid: int, gen: int, version: int) -> int:
        key = (pid, gen, version)
        space = self._space_ids.get(key)
        if space is None:
            space = self._space_ids[key] = len(self._space_ids)
            # A JIT maps its jitdump file executable only so that the capture names it: no code runs there.
            maps = [m for m in spaces.space(pid, gen).maps
                    if not _JITDUMP_NAME.fullmatch(m.filename.rsplit("/", 1)[-1])]
            # the files the process mapped over the whole capture: its jitdump may be mapped after this generation
            jit = self._jit_table(pid, spaces.mapped_names(pid)) if pid > 0 else None
            rows = [self._mapping_row(space, m, jit) for m in maps]
            if jit is not None:
                rows += [(space, lo, hi, jit[0], -jit[1], MappingKind.ANON) for lo, hi in _uncovered(jit[2], maps)]
            self._space_rows[space] = rows
        return space

    def _table(self, path: str, build_id: bytes | None) -> int:
        key = (path, build_id)
        index = self._table_of.get(key)
        if index is None:
            try:
                table = self._provide(path, build_id)
            except Exception as exc:  # a provider must not take the decode down: no table, with a note
                table = UnwindTable.empty(f"{path}: {exc}")
            self.table_notes += [n for n in table.notes if n]
            index = self._table_of[key] = len(self._tables)
            self._tables.append(table)
        return index

    def _jit_table(self, pid: int, names: list[str]) -> tuple[int, int, list[tuple[int, int]]] | None:
        if pid not in self._jit_of:
            found = None
            if self._provide_jit is not None:
                try:
                    found = self._provide_jit(pid, names)
                except Exception as exc:  # never take the decode down: JIT frames then stop with their reason
                    self.table_notes.append(f"JIT unwind info of pid {pid}: {exc}")
            if found is not None:
                table = found.table
                self.table_notes += [f"pid {pid}: {table.source}" if table.source else "", *table.notes]
                self._tables.append(table)
                self._jit_of[pid] = (len(self._tables) - 1, found.base, found.code_ranges)
            else:
                self._jit_of[pid] = None
        return self._jit_of[pid]

    def _mapping_row(self, space: int, m: Mmap,
                     jit: tuple[int, int, list[tuple[int, int]]] | None) -> tuple[int, int, int, int, int, int]:
        if is_jit_name(m.filename):
            if jit is not None:
                return (space, m.start, m.end, jit[0], -jit[1], MappingKind.ANON)
            return (space, m.start, m.end, -1, 0, MappingKind.ANON)
        if m.filename.startswith("[") and m.filename != "[vdso]":
            return (space, m.start, m.end, -1, 0, MappingKind.ANON)
        t = self._table(m.filename, m.build_id or self._build_ids.get(m.filename))
        delta = self._tables[t].vaddr_delta(m.pgoff)
        if delta is None:
            return (space, m.start, m.end, -1, 0, MappingKind.FILE)
        return (space, m.start, m.end, t, delta + m.pgoff - m.start, MappingKind.FILE)

    # --- samples --------------------------------------------------------------------------------
    def accepts(self, layout: SampleLayout) -> bool:
        why = supported(layout)
        if why is not None and has_user_stacks(layout) and self.refused is None:
            self.refused = why  # samples with stack copies that cannot be walked: said in the notes
        return why is None

    def unwind_batch(self, chunk: bytes, state: UserState, pid: np.ndarray, when: np.ndarray,
                     spaces: AddressSpaces) -> Unwound:
        """The user frames of each sample of one attr (leaf = exact ip, callers = return addresses: the kernel's
        callchain convention) and its StopReason. `state` locates each sample's registers and stack in `chunk`;
        `spaces` (the decoder's, fed with the side records) gives each sample's mappings at its time."""
        n = len(pid)
        space = self._spaces_of(spaces, pid, when)
        used = np.unique(space).tolist()
        rows = [r for s in used for r in self._space_rows.get(s, ())]
        mappings = Mappings.build(rows)
        stack = np.frombuffer(chunk, dtype=np.uint8)
        result = unwind(StackSamples(state.ip, state.sp, state.bp, state.has_regs, space, stack, state.stack_at,
                                     state.stack_size), mappings, self._tables)
        # bookkeeping for the notes
        self.samples += n
        self.fp_frames += int(result.fp_steps.sum())
        # A read past the copied bytes is "stack copy too small" only when the copy was full; a shorter copy
        # ended at the top of the stack (the kernel copies no further), so the walk went wrong there.
        past_top = (result.stop == StopReason.STACK_TRUNCATED) & (state.stack_size < state.copy_size)
        result.stop[past_top] = StopReason.BAD_FRAME
        self.stops.update(result.stop.tolist())
        trunc = result.stop == StopReason.STACK_TRUNCATED
        if trunc.any():
            self.truncated_sizes += result.needed[trunc].tolist()
        if n:
            self.copy_size = max(self.copy_size, int(state.copy_size.max()))
        return result

    # --- what the profile's notes say -----------------------------------------------------------
    def notes(self) -> list[str]:
        out: list[str] = []
        if self.refused and not self.samples:
            out.append(f"user stacks were not unwound: {self.refused}")
        if not self.samples:
            return out
        parts = [f"{STOP_TEXT[StopReason(r)]} {100.0 * c / self.samples:.1f}%"
                 for r, c in sorted(self.stops.items(), key=lambda kv: -kv[1])]
        out.append(f"dwarf unwinding of {self.samples:,} samples: " + ", ".join(parts))
        if self.truncated_sizes:
            out.append(truncation_note(np.array(self.truncated_sizes), self.copy_size))
        if self.fp_frames:
            out.append(f"{self.fp_frames:,} frames were found by following frame pointers (code without CFI)")
        for note in dict.fromkeys(self.table_notes):
            out.append(f"unwind tables: {note}")
        return out


def _uncovered(ranges: list[tuple[int, int]], maps: list[Mmap]) -> list[tuple[int, int]]:
    """The parts of a JIT's code ranges that no mapping of the process covers (code made executable by mprotect
    or mapped without an MMAP record)."""
    spans = sorted((m.start, m.end) for m in maps)
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for start, end in spans:
            if end <= lo or start >= hi:
                continue
            if start > lo:
                out.append((lo, start))
            lo = max(lo, end)
            if lo >= hi:
                break
        if lo < hi:
            out.append((lo, hi))
    return out


def truncation_note(needed: np.ndarray, copy_size: int) -> str:
    """What to tell the user about stacks that ran out of copied bytes: how many, and a copy size to try. The next
    read's offset is a lower bound of what the whole stack needs, so the advice doubles the copy at least."""
    from hwprof.callgraph import MAX_STACK_DUMP

    largest = int(np.percentile(needed, 95)) if len(needed) else 0
    suggest = min(MAX_STACK_DUMP, max(2 * copy_size, (largest * 3 // 2 + 4095) // 4096 * 4096))
    advice = (f"try --call-graph dwarf,{suggest}" if copy_size < MAX_STACK_DUMP
              else "the copy is already at the kernel's maximum")
    return (f"truncated: stack copy too small in {len(needed):,} samples ({copy_size} bytes copied per sample); "
            f"{advice}")
