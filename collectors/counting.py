"""Counting: open event groups on a target (a command, processes, threads or CPUs), then read and scale them.

One `CountingSession` holds one fd per (event, location): a location is a thread (task targets) or a CPU
(system-wide). Group leaders gate their members, so a braced group is co-scheduled on the PMU as perf does.
Values are read one fd at a time (no PERF_FORMAT_GROUP): the numbers are the same and every kernel accepts it
together with `inherit`.

Why the target modes open what they open:
- a command is forked and held before exec (hwprof.system.launch); counters are attached with inherit (children
  counted too) and enable_on_exec, so not one instruction of hwprof or of the fork is counted.
- `-p PID` opens every existing thread with inherit=1: threads (and processes) the target creates afterwards are
  inherited counters whose counts fold into their parent's, as with perf. Threads listed on a later re-scan are
  opened only when /proc says they started before the first counter of their process existed (the scan-to-open
  race); a younger thread was created by a thread already counted, so it is inherited and must not count twice.
- `--per-thread` opens each thread without inherit so a thread's numbers are its own; re-scans add threads
  created later (they are counted from their discovery on).
- `-a`/`-C` open one counter per CPU for every task (pid -1).
"""

from __future__ import annotations

import errno
import os
import re
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hwprof.errors import HwprofError
from hwprof.perf import syscall
from hwprof.perf.abi import FLAG_FD_CLOEXEC, FLAG_PID_CGROUP, PerfType, ReadFormat
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import CounterValue
from hwprof.system.cpus import format_cpu_list, online_cpus
from hwprof.system.procfs import (
    ThreadInfo,
    boot_ticks_now,
    process_exists,
    thread_ids,
    thread_info,
    thread_start_ticks,
)
from hwprof.units import Cpu, Nanoseconds, Pid, Tid

READ_FORMAT = ReadFormat.TOTAL_TIME_ENABLED | ReadFormat.TOTAL_TIME_RUNNING
_READ_SIZE = 24
_TASK_LEVEL = -1  # location key of a task-wide counter (command target): one fd covers the task and its children


# The Protocols are for type checkers; at run time they are plain classes, so that `hwprof stat` does not import
# `typing` for them (~3 ms of every start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


class EventLike(Protocol):
    """What counting needs of an event: hwprof.events.EventSpec satisfies it."""

    name: str
    attr: PerfEventAttr
    scale: float
    unit: str


class GroupLike(Protocol):
    events: tuple[EventLike, ...]
    is_group: bool


@dataclass(frozen=True)
class Target:
    """What to count. Exactly one of command / pids / tids / cpus drives the session; a command may be combined
    with cpus (system-wide while the command runs, as `perf stat -a -- CMD`). `cgroup` (with cpus, perf's -G):
    the CPUs count only while tasks of that cgroup or of its descendants run (hwprof.system.cgroups)."""

    command: tuple[str, ...] = ()
    pids: tuple[Pid, ...] = ()
    tids: tuple[Tid, ...] = ()
    cpus: tuple[Cpu, ...] | None = None
    cgroup: str | None = None

    @property
    def system_wide(self) -> bool:
        return self.cpus is not None

    def describe(self) -> str:
        """perf's wording after 'Performance counter stats for' (perf shows -G's cgroup beside each count)."""
        if self.cgroup is not None:
            return _without_cgroup(self).describe() + f" in cgroup '{self.cgroup}'"
        if self.system_wide and not self.command:
            return "'system wide'" if self.cpus == tuple(online_cpus()) else f"'CPU(s) {format_cpu_list(self.cpus)}'"
        if self.command:
            return "'" + " ".join(self.command) + "'" + (" (system wide)" if self.system_wide else "")
        if self.pids:
            return "process id '" + ",".join(map(str, self.pids)) + "'"
        return "thread id '" + ",".join(map(str, self.tids)) + "'"


@dataclass(frozen=True)
class EventSlot:
    """One event of the session as the user asked for it, and whether this machine can count it."""

    index: int
    name: str                 # as written, with ':u' appended when perf-style fallback excluded the kernel
    group: int                # index of its group: events sharing it were scheduled together
    attr: PerfEventAttr
    scale: float = 1.0
    unit: str = ""
    supported: bool = True
    error: str | None = None  # why it is not supported
    tool: bool = False        # duration_time & co: measured by the caller, never opened
    requested: str = ""       # the name as asked for, before any ':u' fallback renamed it
    cpus: tuple[Cpu, ...] | None = None  # package-scope PMUs: only these CPUs


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counter values at one instant: values[event index][location] (a tid, a CPU, or -1)."""

    time_ns: Nanoseconds                       # CLOCK_MONOTONIC
    values: dict[int, dict[int, CounterValue]]

    def total(self, index: int) -> CounterValue | None:
        """The event summed over its locations, as perf aggregates (sum values and times, then scale)."""
        per_location = self.values.get(index)
        if not per_location:
            return None
        return sum_values(per_location.values())

    def minus(self, earlier: Snapshot) -> Snapshot:
        """The counts between `earlier` and this snapshot (interval mode); new locations count from zero."""
        out: dict[int, dict[int, CounterValue]] = {}
        for index, per_location in self.values.items():
            before = earlier.values.get(index, {})
            out[index] = {loc: _delta(value, before.get(loc)) for loc, value in per_location.items()}
        return Snapshot(self.time_ns, out)


def sum_values(values: Iterable[CounterValue]) -> CounterValue:
    raw = enabled = running = 0
    for v in values:
        raw += v.raw
        enabled += v.enabled
        running += v.running
    return CounterValue(raw, enabled, running)


def _delta(now: CounterValue, before: CounterValue | None) -> CounterValue:
    if before is None:
        return now
    return CounterValue(now.raw - before.raw, now.enabled - before.enabled, now.running - before.running)


# --- the session -----------------------------------------------------------------------------------------

@dataclass
class _Location:
    key: int          # tid, CPU or _TASK_LEVEL
    pid: int          # perf_event_open pid argument
    cpu: int          # perf_event_open cpu argument
    fds: dict[int, int] = field(default_factory=dict)  # event index -> fd


class CountingSession:
    """Counters for one target. Use as a context manager so every fd is closed.

    Life cycle: `open(child_pid=None)`, then `enable()` (unless a command's exec enables them), `read()` as
    often as wanted, `disable()`, `close()`.
    """

    def __init__(self, groups: Sequence[GroupLike], target: Target, per_thread: bool = False,
                 inherit: bool = True, enable_on_exec: bool = True) -> None:
        if not groups:
            raise HwprofError("no events to count")
        self.groups = groups
        self.target = target
        self.per_thread = per_thread
        self.inherit = inherit  # False: threads and children created later are not counted (perf -i)
        self.enable_on_exec = enable_on_exec  # False: a command's counters wait for enable() (perf -D)
        self.slots: list[EventSlot] = []
        self.threads: dict[Tid, ThreadInfo] = {}
        self._locations: list[_Location] = []
        self._first_open_ticks: dict[Pid, int] = {}
        self._child: Pid | None = None
        self._fallback_user_only = False
        self._cgroup_fd: int | None = None  # target.cgroup's directory while the counters are open
        index = 0
        for g, group in enumerate(groups):
            for event in group.events:
                self.slots.append(EventSlot(index, event.name, g, event.attr, float(event.scale or 1.0),
                                            event.unit or "", tool=getattr(event, "pmu", "") == "tool",
                                            cpus=getattr(event, "cpus", None), requested=event.name))
                index += 1
        self._group_members: list[list[int]] = []
        start = 0
        for group in groups:
            self._group_members.append(list(range(start, start + len(group.events))))
            start += len(group.events)

    # -- opening --

    def open(self, child_pid: Pid | None = None) -> None:
        """Open every counter, disabled; for a command child (held before exec) they enable on its exec."""
        syscall.raise_fd_limit()
        self._child = child_pid
        try:
            if self.target.cgroup is not None:
                if not self.target.system_wide:
                    raise HwprofError("a cgroup is counted on CPUs: -G/--cgroup needs -a or -C", exit_code=2)
                from hwprof.system.cgroups import open_cgroup

                self._cgroup_fd = open_cgroup(self.target.cgroup)
            if self.target.system_wide:
                for cpu in self.target.cpus or ():
                    self._open_location(_Location(cpu, -1, cpu))
            elif child_pid is not None:
                self._open_location(_Location(_TASK_LEVEL, child_pid, -1))
            elif self.target.pids:
                for pid in self.target.pids:
                    if not process_exists(pid):
                        raise HwprofError(f"no such process: {pid}")
                for pid in self.target.pids:
                    self._first_open_ticks[pid] = boot_ticks_now()
                    self._open_threads(pid, thread_ids(pid))
                if not any(loc.fds for loc in self._locations) and not self._all_unsupported():
                    raise HwprofError("no such process: " + ",".join(map(str, self.target.pids)))
            else:
                for tid in self.target.tids:
                    if not process_exists(tid):
                        raise HwprofError(f"no such thread: {tid}")
                    info = thread_info(tid)
                    self.threads[tid] = info
                    self._open_location(_Location(tid, tid, -1))
        except BaseException:
            self.close()
            raise

    def _all_unsupported(self) -> bool:
        return not any(s.supported for s in self.slots)

    def _open_threads(self, pid: Pid, tids: Iterable[Tid]) -> None:
        known = {loc.key for loc in self._locations}
        for tid in tids:
            if tid in known:
                continue
            try:
                self._open_location(_Location(tid, tid, -1))
            except syscall.PerfOpenError as exc:
                if exc.errno == errno.ESRCH:
                    continue  # the thread exited between the scan and the open
                raise
            self.threads[tid] = thread_info(tid)

    def _open_location(self, loc: _Location) -> None:
        """Open every group at one location; a failure leaves nothing of this location open."""
        try:
            for g, members in enumerate(self._group_members):
                leader_fd = -1
                if loc.cpu < 0:
                    self._refuse_package_events(members)
                members = [i for i in members if not self.slots[i].tool
                           and (self.slots[i].cpus is None or loc.cpu < 0 or loc.cpu in self.slots[i].cpus)]
                for position, index in enumerate(members):
                    slot = self.slots[index]
                    if not slot.supported:
                        if position == 0:
                            break  # a group whose leader cannot exist cannot exist at all
                        continue
                    fd = self._open_one(slot, loc, leader_fd, is_leader=position == 0)
                    if fd is None:
                        if position == 0:
                            self._mark_group_unsupported(g)
                            break
                        continue
                    loc.fds[index] = fd
                    if position == 0:
                        leader_fd = fd
        except BaseException:
            for fd in loc.fds.values():
                os.close(fd)
            loc.fds.clear()
            raise
        self._locations.append(loc)

    def _refuse_package_events(self, members: list[int]) -> None:
        """Package-scope PMUs (power, uncore) count a whole socket: they cannot be attached to a task."""
        for index in members:
            slot = self.slots[index]
            if slot.cpus is not None and slot.supported:
                self.slots[index] = _replace(slot, supported=False, error=(
                    f"event '{slot.name}' counts a whole CPU package, not a task: count it system-wide (-a)"))

    def _mark_group_unsupported(self, g: int) -> None:
        members = [i for i in self._group_members[g] if not self.slots[i].tool]
        leader = self.slots[members[0]]
        for index in members[1:]:
            slot = self.slots[index]
            if slot.supported:
                self.slots[index] = _replace(slot, supported=False,
                                             error=f"its group leader '{leader.name}' is not supported")

    def _attr_for(self, slot: EventSlot, loc: _Location, is_leader: bool) -> PerfEventAttr:
        attr = slot.attr.copy()
        attr.read_format = READ_FORMAT
        attr.sample_period = 0
        attr.sample_type = 0
        attr.freq = 0
        attr.disabled = 1 if is_leader else 0
        task = loc.cpu < 0
        attr.inherit = 1 if task and self.inherit and not (self.per_thread and loc.key != _TASK_LEVEL) else 0
        if loc.key == _TASK_LEVEL and self.enable_on_exec:
            attr.enable_on_exec = 1 if is_leader else 0
        if self._fallback_user_only and task and attr.type != PerfType.TRACEPOINT:
            attr.exclude_kernel = 1
            attr.exclude_hv = 1
        return attr

    def _open_one(self, slot: EventSlot, loc: _Location, group_fd: int, is_leader: bool) -> int | None:
        """The fd, or None when the event is not supported here (the slot then says why)."""
        attr = self._attr_for(slot, loc, is_leader)
        pid, flags = loc.pid, FLAG_FD_CLOEXEC
        if self._cgroup_fd is not None and loc.cpu >= 0:
            pid, flags = self._cgroup_fd, FLAG_FD_CLOEXEC | FLAG_PID_CGROUP  # -G: this cgroup's tasks on the CPU
        try:
            return syscall.perf_event_open(attr, pid, loc.cpu, group_fd, flags, name=slot.name)
        except syscall.PerfOpenError as exc:
            if exc.permission and loc.cpu < 0 and not attr.exclude_kernel and os.geteuid() != 0 \
                    and attr.type != PerfType.TRACEPOINT:
                # perf's fallback under perf_event_paranoid >= 2: count user space only, and say so in the name.
                self._fallback_user_only = True
                # Not for tracepoints: most fire in kernel context and would silently count 0 without it.
                for i, s in enumerate(self.slots):
                    if not s.attr.exclude_kernel and s.attr.type != PerfType.TRACEPOINT and not s.tool:
                        self.slots[i] = _replace(s, name=_with_user_modifier(s.name))
                return self._open_one(self.slots[slot.index], loc, group_fd, is_leader)
            if exc.unsupported or (exc.errno == errno.EINVAL and group_fd >= 0):
                self.slots[slot.index] = _replace(slot, supported=False, error=str(exc))
                return None
            raise

    # -- running --

    def enable(self) -> None:
        for loc in self._locations:
            for index in self._leaders(loc):
                syscall.enable(loc.fds[index], group=True)

    def disable(self) -> None:
        for loc in self._locations:
            for index in self._leaders(loc):
                try:
                    syscall.disable(loc.fds[index], group=True)
                except OSError:
                    pass

    def _leaders(self, loc: _Location) -> list[int]:
        """The fd-holding leader of each group at this location (tool events never hold one)."""
        leaders = []
        for members in self._group_members:
            opened = [i for i in members if i in loc.fds]
            if opened:
                leaders.append(opened[0])
        return leaders

    def rescan(self) -> None:
        """Find threads of -p targets not yet counted (see the module docstring for which ones are opened)."""
        if not self.target.pids or self.target.system_wide:
            return
        known = {loc.key for loc in self._locations}
        for pid in self.target.pids:
            fresh = [t for t in thread_ids(pid) if t not in known]
            if not self.per_thread:
                limit = self._first_open_ticks.get(pid, 0)
                fresh = [t for t in fresh if (thread_start_ticks(pid, t) or limit) < limit]
            if fresh:
                self._open_threads(pid, fresh)
                if self.per_thread:
                    for loc in self._locations:
                        if loc.key in fresh:
                            for index in self._leaders(loc):
                                syscall.enable(loc.fds[index], group=True)

    def read(self) -> Snapshot:
        now = time.monotonic_ns()
        values: dict[int, dict[int, CounterValue]] = {}
        for loc in self._locations:
            for index, fd in loc.fds.items():
                raw, enabled, running = struct.unpack("<QQQ", os.read(fd, _READ_SIZE))
                values.setdefault(index, {})[loc.key] = CounterValue(raw, enabled, running)
        return Snapshot(now, values)

    def close(self) -> None:
        for loc in self._locations:
            for fd in loc.fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            loc.fds.clear()
        self._locations.clear()
        if self._cgroup_fd is not None:
            os.close(self._cgroup_fd)
            self._cgroup_fd = None

    def __enter__(self) -> CountingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def locations(self) -> list[int]:
        return [loc.key for loc in self._locations]


_MODIFIERS = re.compile(r":[ukhpGHPSDIWe]+$")


def _with_user_modifier(name: str) -> str:
    """'cycles' -> 'cycles:u', 'cycles:p' -> 'cycles:pu'; a tracepoint's 'sys:name' is not a modifier."""
    match = _MODIFIERS.search(name)
    if match and ":" not in name[: match.start()] or match and name.count(":") >= 2:
        return name if "u" in match.group() else name + "u"
    return name + ":u"


def _without_cgroup(target: Target) -> Target:
    from dataclasses import replace

    return replace(target, cgroup=None)


def _replace(slot: EventSlot, **changes: object) -> EventSlot:
    from dataclasses import replace

    return replace(slot, **changes)
