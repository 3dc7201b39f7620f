"""Address spaces of the processes in a capture, as they were at any moment of it.

Mappings change while a capture runs (exec, dlopen, a fork inherits its parent's): the side records (MMAP/MMAP2,
COMM with exec, FORK) are kept per process in stream order, and a sample is resolved against the space of its
process as it was when the sample was taken. A process's spaces are numbered by generation (how many of its
changes came before) and built lazily, once each, by replaying its changes.

`when` is the ordering key of the stream: the timestamp when every record carries one (sample_id_all + TIME), else
the position of the side record in the stream (see RecordWalk).

A decoder of consecutive windows of one session (`hwprof agent`) keeps one AddressSpaces from window to window:
`carry_over()` after each window folds every live process's changes into its latest space and forgets the
processes and threads that exited, so the next window needs only the kernel's own records of what changed.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from hwprof.perf.abi import MISC_MMAP_DATA, RecordType
from hwprof.perf.records import Comm, Mmap, MmapRef, TaskEvent
from hwprof.units import Pid, Tid


@dataclass
class Space:
    """A process's code mappings at one generation, sorted by start, overlaps resolved newest-wins."""

    starts: list[int] = field(default_factory=list)
    maps: list[Mmap] = field(default_factory=list)

    def copy(self) -> Space:
        return Space(list(self.starts), list(self.maps))

    def insert(self, mmap: Mmap) -> None:
        """Add a mapping; the older ones it overlaps go (the mappings never overlap, so those are one run)."""
        first = bisect.bisect_right(self.starts, mmap.start) - 1
        if first < 0 or self.maps[first].end <= mmap.start:
            first += 1
        last = max(first, bisect.bisect_left(self.starts, mmap.end))
        self.starts[first:last] = [mmap.start]
        self.maps[first:last] = [mmap]

    def lookup(self, addrs: np.ndarray) -> np.ndarray:
        """Index into self.maps for each address, -1 where none covers it."""
        if not self.maps:
            return np.full(len(addrs), -1, dtype=np.int64)
        starts = np.array(self.starts, dtype=np.uint64)
        ends = np.array([m.end for m in self.maps], dtype=np.uint64)
        idx = np.searchsorted(starts, addrs, side="right").astype(np.int64) - 1
        ok = idx >= 0
        ok[ok] = addrs[ok] < ends[idx[ok]]
        return np.where(ok, idx, -1)


@dataclass(slots=True)  # not frozen: one per side record, and frozen fields cost a setattr call each
class _Change:
    when: int
    kind: str            # "mmap", "exec", "fork", "base" (a carried-over space), "none" (a mapping of no process)
    mmap: Mmap | None = None
    parent: Pid = -1
    space: Space | None = None
    ref: MmapRef | None = None   # "mmap" not parsed yet (mmap is None until a replay needs it)

    def mapping(self) -> Mmap | None:
        """The mapping of an "mmap" change, parsed on first use; None when it turns out not to be a process's."""
        if self.mmap is None and self.ref is not None:
            mmap, self.ref = self.ref.parse(), None
            if _is_process_mapping(mmap):
                self.mmap = mmap
            else:
                self.kind = "none"
        return self.mmap


class AddressSpaces:
    """Side records in stream order: per-process mapping changes, thread names, forks; replayed per generation."""

    def __init__(self) -> None:
        self.changes: dict[Pid, list[_Change]] = defaultdict(list)
        self.comms: dict[Tid, str] = {}
        self.pid_of_tid: dict[Tid, Pid] = {}
        self._states: dict[Pid, dict[int, Space]] = {}  # pid -> generation -> space (those asked for)
        self._sorted: set[Pid] = set()
        self._exited: set[Tid] = set()  # tids with an EXIT record since the last carry_over (pid == tid: process)

    # --- what the walk feeds in ----------------------------------------------------------------------
    def mmap(self, when: int, rec: Mmap) -> None:
        if _is_process_mapping(rec) and not rec.misc & MISC_MMAP_DATA and (not rec.prot or rec.prot & 4):
            self._change(rec.pid, _Change(when, "mmap", rec))

    def mmap_ref(self, when: int, ref: MmapRef) -> None:
        """A mapping kept unparsed until a replay of its process needs it (most processes of a busy machine
        exit without a sample)."""
        pid = ref.pid
        if pid != -1 and ref.is_code:
            self._change(pid, _Change(when, "mmap", ref=ref))

    def snapshot(self, pid: Pid, maps: list[Mmap]) -> None:
        """Mappings of a process that ran before the capture (from /proc/PID/maps): valid from the start."""
        for m in maps:
            self._change(pid, _Change(-1, "mmap", m))

    def comm(self, when: int, rec: Comm) -> None:
        self.comms[rec.tid] = rec.comm
        self.pid_of_tid[rec.tid] = rec.pid
        if rec.exec and rec.pid == rec.tid:
            self._change(rec.pid, _Change(when, "exec"))

    def task(self, when: int, rec: TaskEvent) -> None:
        self.pid_of_tid[rec.tid] = rec.pid
        if rec.kind == RecordType.EXIT:
            self._exited.add(rec.tid)
        elif rec.kind == RecordType.FORK:
            self._exited.discard(rec.tid)  # a recycled tid (or pid) lives again
            if rec.pid != rec.ppid and rec.pid not in self.changes:
                self._change(rec.pid, _Change(when, "fork", parent=rec.ppid))
            parent_comm = self.comms.get(rec.ptid) or self.comms.get(rec.ppid)
            if parent_comm and rec.tid not in self.comms:
                self.comms[rec.tid] = parent_comm

    def _change(self, pid: Pid, change: _Change) -> None:
        self.changes[pid].append(change)
        self._sorted.discard(pid)
        self._states.pop(pid, None)

    # --- what stages and stack resolution ask ---------------------------------------------------------
    def generations(self, pid: Pid, whens: np.ndarray) -> np.ndarray:
        """For samples of `pid` taken at `whens`: how many of pid's changes precede each (its generation)."""
        changes = self._ordered(pid)
        change_whens = np.array([c.when for c in changes], dtype=np.int64)
        return np.searchsorted(change_whens, whens, side="right")

    def at(self, pid: Pid, when: int) -> Space:
        """The space of `pid` as it was at `when` (for a stage that looks at one sample)."""
        return self.space(pid, int(self.generations(pid, np.array([when], dtype=np.int64))[0]))

    def space(self, pid: Pid, gen: int) -> Space:
        """The space of `pid` after its first `gen` changes. Only the generations asked for are kept: each is
        replayed from the nearest one built before it (a process that starts maps dozens of files in a row, and
        its samples fall into a few of those generations)."""
        changes = self._ordered(pid)
        gen = max(0, min(gen, len(changes)))
        states = self._states.get(pid)
        if states is None:
            states = self._states[pid] = {0: Space()}
        found = states.get(gen)
        if found is not None:
            return found
        since = max(g for g in states if g < gen)
        state, shared = states[since], True   # copied before its first change: built spaces never change
        for change in changes[since:gen]:
            if change.kind == "mmap":
                mmap = change.mapping()
                if mmap is None:
                    continue
                if shared:
                    state, shared = state.copy(), False
                state.insert(mmap)
            elif change.kind == "none":
                continue
            elif change.kind == "exec":
                state, shared = Space(), False
            elif change.kind == "base":
                state, shared = change.space, True
            else:  # fork: the parent's space as it was when it forked
                parent = change.parent
                state, shared = (self.at(parent, change.when), True) if parent != pid else (Space(), False)
        states[gen] = state
        return state

    def carry_over(self) -> None:
        """Between two windows of one session: each live process keeps only its latest space (valid from the start
        of the next window); processes and threads that exited are forgotten, so what is kept stays the size of
        what runs, however long the session."""
        exited_processes = {tid for tid in self._exited if self.pid_of_tid.get(tid, tid) == tid}
        for tid in self._exited:
            self.comms.pop(tid, None)
            self.pid_of_tid.pop(tid, None)
        latest = {pid: changes[0].space if len(changes) == 1 and changes[0].kind == "base" else self.latest(pid)
                  for pid, changes in self.changes.items() if pid not in exited_processes}
        self.changes.clear()
        for pid, space in latest.items():
            if space.maps:
                self.changes[pid] = [_Change(-1, "base", space=space)]
        self._states.clear()
        self._sorted.clear()
        self._exited.clear()

    def mapped_names(self, pid: Pid) -> list[str]:
        """Every file name `pid`'s mappings had over the capture (or since the last carry-over), oldest first."""
        names: dict[str, None] = {}
        for change in self.changes.get(pid, ()):
            if change.kind == "mmap" and change.mapping() is not None:
                names[change.mmap.filename] = None
            elif change.space is not None:
                names.update(dict.fromkeys(m.filename for m in change.space.maps))
        return list(names)

    def latest(self, pid: Pid) -> Space:
        """The space after all of pid's changes."""
        return self.space(pid, len(self._ordered(pid)))

    def _ordered(self, pid: Pid) -> list[_Change]:
        changes = self.changes.get(pid, [])
        if pid not in self._sorted:
            changes.sort(key=lambda c: c.when)  # stable: records of equal time keep their stream order
            self._sorted.add(pid)
        return changes


def _is_process_mapping(rec: Mmap) -> bool:
    """Not the kernel image (resolved from kallsyms, not from a mapping) nor a guest's."""
    return rec.pid != -1 and not rec.filename.startswith("[kernel.kallsyms]") and not rec.filename.startswith("[guest")
