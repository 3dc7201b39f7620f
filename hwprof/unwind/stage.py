"""The unwinding stage of the decoder: per batch of dwarf samples, their user frames and why each stack ended.

The decoder feeds it the side records (mappings, exec, fork) and then, batch by batch, the samples that carry user
registers and a stack copy. The stage unwinds them while the batch's bytes are at hand (stack copies are never
kept: memory stays bounded by the batch) and hands back, per sample, the user frames leaf first in the kernel's
callchain convention, so everything after it (deduplication, stack resolution, symbolization) treats unwound
stacks exactly like the kernel's callchains. hwprof.unwind.dwarf_stage plugs it into the pipeline.

Binaries' unwind tables come from an injected provider (hwprof.symbolize builds and caches them): core never reads
ELF files itself.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwprof.perf.abi import MISC_MMAP_DATA
from hwprof.perf.records import Comm, Mmap, SampleLayout, TaskEvent
from hwprof.unwind.samples import UserState, has_user_stacks, supported
from hwprof.unwind.table import UnwindTable
from hwprof.unwind.walk import STOP_TEXT, MappingKind, Mappings, StackSamples, StopReason, Unwound, unwind

_JITDUMP_NAME = re.compile(r"jit-\d+\.dump")
TableProvider = Callable[[str, "bytes | None"], UnwindTable]
# (pid, the paths of the files it mapped) -> a table for its JIT code and the base its rows are relative to
JitTableProvider = Callable[[int, "list[str]"], "tuple[UnwindTable, int] | None"]


def is_jit_name(filename: str) -> bool:
    """Anonymous executable memory: where JITs put code (perf names it //anon; memfd-backed JIT heaps too)."""
    return (not filename or filename.startswith("//anon") or filename.startswith("[anon")
            or filename.startswith("/memfd:") or filename in ("[heap]", "[stack]"))


@dataclass
class _History:
    """One process's side records (exec, mmap, fork from its parent), kept in arrival order and replayed in time
    order: rings of different CPUs reach the file in rounds, so a mapping can arrive before the exec it follows."""

    events: list[tuple[int, int, str, object]] = field(default_factory=list)  # (when, arrival, kind, data)
    version: int = 0
    _sorted_version: int = -1
    _execs: list[int] = field(default_factory=list)

    def add(self, when: int, kind: str, data: object) -> None:
        self.events.append((when, len(self.events), kind, data))
        self.version += 1

    def ordered(self) -> list[tuple[int, int, str, object]]:
        if self._sorted_version != self.version:
            self.events.sort(key=lambda e: (e[0], e[1]))
            self._execs = [e[0] for e in self.events if e[2] == "exec"]
            self._sorted_version = self.version
        return self.events

    def execs(self) -> int:
        self.ordered()
        return len(self._execs)

    def generation(self, when: int) -> int:
        """How many execs happened at or before `when`."""
        self.ordered()
        return bisect.bisect_right(self._execs, when)


class UnwindStage:
    def __init__(self, tables: TableProvider, build_ids: dict[str, bytes] | None = None,
                 jit_tables: JitTableProvider | None = None) -> None:
        self._provide = tables
        self._provide_jit = jit_tables
        self._jit_of: dict[int, tuple[int, int] | None] = {}   # pid -> (table index, base)
        self._build_ids = build_ids or {}
        self._history: dict[int, _History] = defaultdict(_History)
        self._tables: list[UnwindTable] = []
        self._table_of: dict[tuple[str, bytes | None], int] = {}
        self._space_ids: dict[tuple[int, int, int], int] = {}   # (pid, generation, version) -> space id
        self._space_rows: dict[int, list[tuple[int, int, int, int, int, int]]] = {}
        self.stops: Counter[int] = Counter()
        self.needed_max = 0
        self.truncated_sizes: list[int] = []
        self.copy_size = 0
        self.samples = 0
        self.fp_frames = 0
        self.table_notes: list[str] = []
        self.refused: str | None = None

    # --- address spaces, from the side records ---------------------------------------------------------
    def mmap(self, when: int, rec: Mmap) -> None:
        if rec.pid == -1 or rec.filename.startswith("[kernel.kallsyms]") or rec.filename.startswith("[guest"):
            return
        if rec.misc & MISC_MMAP_DATA or (rec.prot and not rec.prot & 4):
            return  # data mappings (recorded for perf's unwinder) hold no code
        if _JITDUMP_NAME.fullmatch(rec.filename.rsplit("/", 1)[-1]):
            return  # a JIT maps its jitdump executable only so that the capture names it: no code runs there
        self._history[rec.pid].add(when, "mmap", rec)

    def comm(self, when: int, rec: Comm) -> None:
        if rec.exec and rec.pid == rec.tid:
            self._history[rec.pid].add(when, "exec", None)

    def task(self, when: int, rec: TaskEvent) -> None:
        from hwprof.perf.abi import RecordType

        if rec.kind == RecordType.FORK and rec.pid != rec.ppid:
            self._history[rec.pid].add(when, "fork", rec.ppid)

    def _maps(self, pid: int, when: int, depth: int = 0) -> list[Mmap]:
        """The code mappings of `pid` in the generation (exec to exec) that holds `when`: every mapping of that
        generation (munmap is not recorded; later mappings of the same generation do not hurt), plus what a
        forked child inherited from its parent."""
        history = self._history.get(pid)
        if history is None:
            return []
        gen = history.generation(when)
        maps: list[Mmap] = []
        seen = 0
        for at, _, kind, data in history.ordered():
            if kind == "exec":
                seen += 1
                maps = []
                if seen > gen:
                    break
            elif seen == gen:
                if kind == "mmap":
                    maps.append(data)
                elif kind == "fork" and gen == 0 and depth < 8:
                    maps = self._maps(int(data), at, depth + 1) + maps
        return maps

    def _space(self, pid: int, when: int) -> int:
        history = self._history[pid]
        key = (pid, history.generation(when), history.version)
        space = self._space_ids.get(key)
        if space is None:
            space = self._space_ids[key] = len(self._space_ids)
            maps = self._maps(pid, when)
            self._space_rows[space] = [self._mapping_row(space, m, pid, maps) for m in maps]
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

    def _jit_table(self, pid: int, maps: list[Mmap]) -> tuple[int, int] | None:
        if pid not in self._jit_of:
            found = None
            if self._provide_jit is not None:
                try:
                    found = self._provide_jit(pid, list(dict.fromkeys(m.filename for m in maps)))
                except Exception as exc:  # never take the decode down: JIT frames then stop with their reason
                    self.table_notes.append(f"JIT unwind info of pid {pid}: {exc}")
            if found is not None:
                table, base = found
                self._tables.append(table)
                self._jit_of[pid] = (len(self._tables) - 1, base)
            else:
                self._jit_of[pid] = None
        return self._jit_of[pid]

    def _mapping_row(self, space: int, m: Mmap, pid: int = -1,
                     maps: list[Mmap] | None = None) -> tuple[int, int, int, int, int, int]:
        if is_jit_name(m.filename):
            jit = self._jit_table(pid, maps or []) if pid > 0 else None
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

    def unwind_batch(self, chunk: bytes, state: UserState, pid: np.ndarray, when: np.ndarray) -> Unwound:
        """The user frames of each sample of one attr (leaf = exact ip, callers = return addresses: the kernel's
        callchain convention) and its StopReason. `state` locates each sample's registers and stack in `chunk`."""
        n = len(pid)
        space = np.empty(n, np.int64)
        for p in np.unique(pid).tolist():
            mask = pid == p
            ws = when[mask]
            history = self._history[p]
            gens = np.array([history.generation(int(w)) for w in ws.tolist()]) if history.execs() else None
            if gens is None or (gens == gens[0]).all():
                space[mask] = self._space(p, int(ws[0]))
            else:
                space[mask] = [self._space(p, int(w)) for w in ws.tolist()]
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
