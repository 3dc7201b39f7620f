"""The unwinding stage of the decoder: per batch of dwarf samples, their user frames and why each stack ended.

The decoder feeds it the side records in stream order (mappings, exec, fork) and then, chunk by chunk, the
samples that carry user registers and a stack copy. The stage unwinds them while the chunk's bytes are at hand
(stack copies are never kept: memory stays bounded by the chunk) and hands back, per sample, the user frames as a
callchain tail (PERF_CONTEXT_USER then the addresses, leaf first), so everything after it (deduplication, stack
resolution, symbolization) treats unwound stacks exactly like the kernel's callchains.

Binaries' unwind tables come from an injected provider (hwprof.symbolize builds and caches them): core never reads
ELF files itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwprof.perf.abi import MISC_MMAP_DATA, CallchainContext
from hwprof.perf.records import Comm, Mmap, SampleLayout, TaskEvent
from hwprof.unwind.samples import supported, user_state
from hwprof.unwind.table import UnwindTable
from hwprof.unwind.walk import STOP_TEXT, MappingKind, Mappings, StackSamples, StopReason, unwind

TableProvider = Callable[[str, "bytes | None"], UnwindTable]
_USER_MARKER = np.uint64(CallchainContext.USER)


def is_jit_name(filename: str) -> bool:
    """Anonymous executable memory: where JITs put code (perf names it //anon; memfd-backed JIT heaps too)."""
    return (not filename or filename.startswith("//anon") or filename.startswith("[anon")
            or filename.startswith("/memfd:") or filename in ("[heap]", "[stack]"))


@dataclass
class _Generation:
    since: int                                   # stream position (time or side-record count) it began
    maps: list[Mmap] = field(default_factory=list)
    space_id: int = -1


class UnwindStage:
    def __init__(self, tables: TableProvider, build_ids: dict[str, bytes] | None = None) -> None:
        self._provide = tables
        self._build_ids = build_ids or {}
        self._gens: dict[int, list[_Generation]] = defaultdict(list)
        self._tables: list[UnwindTable] = []
        self._table_of: dict[tuple[str, bytes | None], int] = {}
        self._space_rows: dict[int, list[tuple[int, int, int, int, int, int]]] = {}
        self._next_space = 0
        self.stops: Counter[int] = Counter()
        self.needed_max = 0
        self.truncated_sizes: list[int] = []
        self.copy_size = 0
        self.samples = 0
        self.fp_frames = 0
        self.table_notes: list[str] = []
        self.refused: str | None = None

    # --- address spaces, from the side records in stream order -------------------------------------
    def _current(self, pid: int, when: int) -> _Generation:
        gens = self._gens[pid]
        if not gens:
            gens.append(_Generation(when))
        return gens[-1]

    def mmap(self, when: int, rec: Mmap) -> None:
        if rec.pid == -1 or rec.filename.startswith("[kernel.kallsyms]") or rec.filename.startswith("[guest"):
            return
        if rec.misc & MISC_MMAP_DATA or (rec.prot and not rec.prot & 4):
            return  # data mappings (recorded for perf's unwinder) hold no code
        gen = self._current(rec.pid, when)
        gen.maps.append(rec)
        self._space_rows.pop(gen.space_id, None)

    def comm(self, when: int, rec: Comm) -> None:
        if rec.exec and rec.pid == rec.tid:
            self._gens[rec.pid].append(_Generation(when))

    def task(self, when: int, rec: TaskEvent) -> None:
        from hwprof.perf.abi import RecordType

        if rec.kind == RecordType.FORK and rec.pid != rec.ppid and not self._gens.get(rec.pid):
            parent = self._gens.get(rec.ppid)
            inherited = list(parent[-1].maps) if parent else []
            self._gens[rec.pid].append(_Generation(when, inherited))

    def _space(self, pid: int, when: int) -> int:
        gens = self._gens.get(pid)
        if not gens:
            gens = self._gens[pid] = [_Generation(when)]
        i = max(0, int(np.searchsorted([g.since for g in gens], when, side="right")) - 1)
        gen = gens[i]
        if gen.space_id < 0:
            gen.space_id = self._next_space
            self._next_space += 1
        if gen.space_id not in self._space_rows:
            self._space_rows[gen.space_id] = [self._mapping_row(gen.space_id, m) for m in gen.maps]
        return gen.space_id

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

    def _mapping_row(self, space: int, m: Mmap) -> tuple[int, int, int, int, int, int]:
        if is_jit_name(m.filename):
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
        if why is not None and self.refused is None:
            self.refused = why
        return why is None

    def unwind_batch(self, chunk: bytes, words: np.ndarray, after_callchain: np.ndarray, layout: SampleLayout,
                     pid: np.ndarray, when: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        """User callchain tail (USER marker + frames, as bytes) and StopReason per sample of one attr."""
        state = user_state(words, after_callchain, layout)
        n = len(pid)
        space = np.empty(n, np.int64)
        for p in np.unique(pid).tolist():
            mask = pid == p
            ws = when[mask]
            ids = np.array([self._space(p, int(w)) for w in ws.tolist()], np.int64) if len(
                self._gens.get(p, ())) > 1 else np.full(int(mask.sum()), self._space(p, int(ws[0])), np.int64)
            space[mask] = ids
        used = np.unique(space).tolist()
        rows = [r for s in used for r in self._space_rows.get(s, ())]
        mappings = Mappings.build(rows)
        stack = np.frombuffer(chunk, dtype=np.uint8)
        result = unwind(StackSamples(state.ip, state.sp, state.bp, state.has_regs, space, stack, state.stack_at,
                                     state.stack_size), mappings, self._tables)
        # tails: USER marker then the frames, one bytes object per sample
        counts = np.diff(result.offsets)
        total = int(counts.sum()) + n
        flat = np.empty(total, np.uint64)
        starts = result.offsets[:-1] + np.arange(n)
        flat[starts] = _USER_MARKER
        dest = np.repeat(starts + 1, counts) + (np.arange(int(counts.sum())) - np.repeat(result.offsets[:-1],
                                                                                           counts))
        flat[dest] = result.frames
        raw = flat.astype("<u8").tobytes()
        bounds = (np.append(starts, total) * 8).tolist()
        tails = [raw[bounds[i]:bounds[i + 1]] if counts[i] else b"" for i in range(n)]
        # bookkeeping for the notes
        self.samples += n
        self.fp_frames += int(result.fp_steps.sum())
        self.stops.update(result.stop.tolist())
        trunc = result.stop == StopReason.STACK_TRUNCATED
        if trunc.any():
            self.truncated_sizes += result.needed[trunc].tolist()
        if n:
            self.copy_size = max(self.copy_size, int(state.copy_size.max()))
        return tails, result.stop

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
            sizes = np.array(self.truncated_sizes)
            need = int(np.percentile(sizes, 95))
            need = min(65528, (need + 1023) // 1024 * 1024)
            out.append(f"truncated: stack copy too small in {len(sizes):,} samples ({self.copy_size} bytes copied); "
                       f"--call-graph dwarf,{need} would have held 95% of them")
        if self.fp_frames:
            out.append(f"{self.fp_frames:,} frames were found by following frame pointers (code without CFI)")
        for note in dict.fromkeys(self.table_notes):
            out.append(f"unwind tables: {note}")
        return out
