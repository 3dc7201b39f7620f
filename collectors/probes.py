"""Dynamic probes on a live system: open uprobes/kprobes/tracepoints as perf events, collect hits, take them out.

Mechanism, in order of preference:
- the perf PMUs `uprobe` and `kprobe` (path or symbol through config1, offset through config2): the kernel removes
  the probe when the last fd closes, so nothing can be left behind, not even by SIGKILL;
- tracefs `uprobe_events`/`kprobe_events` (collectors.tracefs) when the PMU is missing or fetch-args are wanted,
  opened as tracepoints; those definitions are removed explicitly (and by the next hwprof after a SIGKILL);
- static tracepoints through the event parser (hwprof.events).

Every probe is a perf event with sample_period 1. Totals come from the in-kernel counter (read(2): exact even when
the ring overflows); the per-process/thread breakdown, latencies, stacks and arguments come from samples.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from hwprof.collectors.probe_spec import Probe, ProbeKind
from hwprof.collectors.tracefs import DynamicEvent, DynamicEvents, TraceFormat, read_format, tracefs_root

from hwprof.errors import HwprofError
from hwprof.perf import syscall
from hwprof.perf.abi import ReadFormat, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import read_counters
from hwprof.perf.records import Comm, Lost, Mmap, ReadRecord, SampleLayout, TaskEvent, parse_sample
from hwprof.perf.ring import RingBuffer, poll_rings
from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk, SampleRecords
from hwprof.system.cpus import online_cpus
from hwprof.system.launch import HeldCommand, resolve_command
from hwprof.system.procfs import owning_process, process_exists, read_comm, read_maps, thread_ids
from hwprof.system.stopping import StopSignals
from hwprof.units import Nanoseconds, Pid, Tid

SIGNAL_FORWARD_DELAY_S = 0.2  # a terminal's signal reaches the command itself; pass it on only if it did not

PMU_ROOT = "/sys/bus/event_source/devices"


class Mode(Enum):
    COUNT = "count"
    LATENCY = "latency"
    STACKS = "stacks"
    ARGS = "args"


class Mechanism(Enum):
    AUTO = "auto"
    PMU = "pmu"
    TRACEFS = "tracefs"


@dataclass(frozen=True)
class Target:
    """Where probes fire: given processes (all their threads, and children from now on), a command, or everything."""

    pids: tuple[Pid, ...] = ()
    command: tuple[str, ...] = ()

    @property
    def system_wide(self) -> bool:
        return not self.pids and not self.command

    def describe(self) -> str:
        if self.command:
            return " ".join(self.command)
        if self.pids:
            return "pid " + ",".join(map(str, self.pids))
        return "system-wide"


@dataclass(frozen=True)
class Filter:
    """Hits to keep: by process id and/or command name (empty = everything)."""

    pids: frozenset[Pid] = frozenset()
    comms: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return bool(self.pids or self.comms)

    def keeps(self, pid: Pid, comm: str) -> bool:
        return (not self.pids or pid in self.pids) and (not self.comms or comm in self.comms)


@dataclass(frozen=True)
class SessionOptions:
    mode: Mode = Mode.COUNT
    duration_s: float | None = None
    filter: Filter = field(default_factory=Filter)
    mechanism: Mechanism = Mechanism.AUTO
    ring_pages: int = 256
    max_stack: int = 127


# --- PMUs -------------------------------------------------------------------------------------------------

def pmu_type(name: str) -> int | None:
    try:
        with open(os.path.join(PMU_ROOT, name, "type")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def retprobe_bit(name: str) -> int:
    """The config bit that makes a probe PMU event a return probe (`format/retprobe` is `config:0` today)."""
    try:
        with open(os.path.join(PMU_ROOT, name, "format", "retprobe")) as f:
            spec = f.read().strip()
        return int(spec.split(":", 1)[1].split("-")[0])
    except (OSError, ValueError, IndexError):
        return 0


def threads_of(pid: Pid) -> list[Tid]:
    tids = thread_ids(pid)
    if not tids:
        raise HwprofError(f"no such process: {pid}")
    return tids


# --- results ----------------------------------------------------------------------------------------------

@dataclass
class Hit:
    """One sample, decoded (stacks and args modes)."""

    probe: int
    pid: Pid
    tid: Tid
    time: Nanoseconds
    cpu: int = -1
    callchain: tuple[int, ...] = ()
    args: dict[str, int | str] = field(default_factory=dict)


@dataclass
class ProbeCounts:
    probe: Probe
    mechanism: str
    total: int = 0                                   # in-kernel counter (or filtered sample count)
    per_thread: Counter = field(default_factory=Counter)  # (pid, tid) -> hits seen as samples

    @property
    def per_process(self) -> Counter:
        out: Counter = Counter()
        for (pid, _), n in self.per_thread.items():
            out[pid] += n
        return out


@dataclass
class SessionResult:
    mode: Mode
    target: Target
    probes: list[ProbeCounts]
    duration_ns: Nanoseconds = 0
    lost: int = 0
    comms: dict[Tid, str] = field(default_factory=dict)
    # latency mode: per sample, parallel arrays
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    tids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    probe_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    # stacks and args modes
    hits: list[Hit] = field(default_factory=list)
    maps: list[Mmap] = field(default_factory=list)
    proc_maps: dict[Pid, list[tuple[int, int, int, str]]] = field(default_factory=dict)  # snapshots, stacks mode
    exit_status: int | None = None
    notes: list[str] = field(default_factory=list)
    formats: dict[int, TraceFormat] = field(default_factory=dict)  # probe index -> RAW format

    def comm(self, tid: Tid, pid: Pid | None = None) -> str:
        """A thread's name; a thread that never exec'd nor renamed itself carries its process's name."""
        return self.comms.get(tid) or (self.comms.get(pid, "") if pid is not None else "")


# --- the session ------------------------------------------------------------------------------------------

@dataclass
class _Opened:
    probe: Probe
    index: int
    mechanism: str                 # "pmu", "tracefs", "tracepoint"
    dynamic: DynamicEvent | None
    format: TraceFormat | None
    fds: list[int] = field(default_factory=list)


class ProbeSession:
    """Open every probe on every target, run until the deadline/command end/Ctrl-C/SIGTERM, then close all.

    Use as a context manager: closing happens on every path out, and tracefs definitions follow the fds.
    """

    def __init__(self, probes: list[Probe], target: Target, options: SessionOptions) -> None:
        if not probes:
            raise HwprofError("no probes given: use -u, -r, -k, -K or -t")
        self.probes = probes
        self.target = target
        self.options = options
        self._opened: list[_Opened] = []
        self._rings: list[RingBuffer] = []
        self._ids: dict[int, int] = {}          # perf event id -> probe index
        self._layouts: dict[int, SampleLayout] = {}  # probe index -> its sample layout
        self._read_formats: dict[int, int] = {}  # probe index -> the read_format its fds were opened with
        self._side_layout: SampleLayout | None = None  # layout of the ring owners (side-record trailers)
        self._walk: RecordWalk | None = None   # the record walk over the rings, made once the ids are known
        self._dynamic: DynamicEvents | None = None
        self._child: HeldCommand | None = None
        self._fd_task: dict[int, tuple[Pid, Tid]] = {}  # fd -> the (pid, tid) it was opened on
        self._exited: set[Tid] = set()          # tids the kernel reported as exited (EXIT records)
        self._reported: set[tuple[int, Tid]] = set()  # (probe, tid) whose own count arrived (READ records)
        self._parent: dict[Tid, Tid] = {}       # tid -> the thread that created it (FORK records)
        self._child_counts: Counter = Counter()  # event id -> hits of exited inherited threads (READ records)
        self._keep: list[object] = []           # C strings the kernel reads during perf_event_open
        self.result = SessionResult(options.mode, target, [])

    # --- context -------------------------------------------------------------------------------------
    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_events(self) -> None:
        """Every perf fd and ring; tracefs definitions can only be removed after this (an open one is EBUSY)."""
        for ring in self._rings:
            ring.close()
        self._rings = []
        for opened in self._opened:
            for fd in opened.fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            opened.fds = []

    def close(self) -> None:
        self._close_events()
        if self._dynamic is not None:
            self._dynamic.remove_all()
            self._dynamic = None
        if self._child is not None and not self._child.started:
            self._child.abandon()  # setup failed after the fork: the command never runs

    # --- setup ---------------------------------------------------------------------------------------
    def _sample_type(self, opened: _Opened) -> int:
        # TIME in every mode: the side records' trailers carry it too, and a thread's renames (exec, prctl) that
        # land in two CPUs' rings are applied in time order, not in the order the rings are read.
        st = SampleType.IDENTIFIER | SampleType.TID | SampleType.TIME
        mode = self.options.mode
        if mode == Mode.STACKS:
            st |= SampleType.CALLCHAIN
        if mode == Mode.ARGS:
            st |= SampleType.CPU
            if opened.format is not None:
                st |= SampleType.RAW
        return int(st)

    def _mechanism_for(self, probe: Probe) -> str:
        wanted = self.options.mechanism
        if probe.kind == ProbeKind.TRACEPOINT:
            return "tracepoint"
        pmu = "uprobe" if probe.kind.is_user else "kprobe"
        if probe.spec.fetch_args:
            if wanted == Mechanism.PMU:
                raise HwprofError(f"{probe.spec.text!r}: fetch-args need the tracefs mechanism, not --mechanism pmu")
            return "tracefs"
        if wanted == Mechanism.TRACEFS:
            return "tracefs"
        if wanted == Mechanism.AUTO and not self.target.system_wide and _has_control(f"{pmu}_events"):
            # A PMU probe cannot follow new threads and children (see _base_attr: inheriting it breaks the
            # target's fork), while a tracefs probe opened as a tracepoint is inherited like any tracepoint.
            # Tasks get tracefs; system-wide gets the PMU.
            return "tracefs"
        if pmu_type(pmu) is not None:
            return "pmu"
        if wanted == Mechanism.PMU:
            raise HwprofError(f"this kernel has no '{pmu}' perf PMU ({PMU_ROOT}/{pmu} is missing)")
        return "tracefs"

    @property
    def _sampling(self) -> bool:
        """Count mode on tasks needs no samples; system-wide counts sample for their per-thread breakdown."""
        return self.options.mode != Mode.COUNT or self.target.system_wide

    def _base_attr(self, opened: _Opened) -> PerfEventAttr:
        probe = opened.probe
        if opened.mechanism == "pmu":
            pmu = "uprobe" if probe.kind.is_user else "kprobe"
            attr = PerfEventAttr(type=pmu_type(pmu))
            if probe.kind.is_return:
                attr.config = 1 << retprobe_bit(pmu)
            text = probe.path if probe.kind.is_user else probe.symbol
            buf = ctypes.create_string_buffer(text.encode())
            self._keep.append(buf)
            attr.config1 = ctypes.addressof(buf)
            attr.config2 = probe.file_offset if probe.kind.is_user else probe.offset
        elif opened.mechanism == "tracefs":
            attr = PerfEventAttr(type=2, config=opened.dynamic.id)
        else:
            from hwprof.events import parse_events

            groups = parse_events(probe.symbol)
            attr = groups[0].events[0].attr.copy()
        attr.sample_type = self._sample_type(opened)
        # Every event, not only the ring's owner: the kernel stamps a LOST record with the trailer of the event
        # whose sample it dropped, and a record without the trailer the ring's others carry cannot be read.
        attr.sample_id_all = 1
        if self._sampling:
            attr.sample_period = 1
            if syscall.reports_lost_samples():
                attr.read_format = ReadFormat.LOST
        else:
            # Pure counting: no sample per hit, so a probe costs what the kernel's uprobe costs. Each exiting
            # thread reports its own count (inherit_stat -> PERF_RECORD_READ) for the per-thread breakdown.
            attr.read_format = ReadFormat.ID
            attr.inherit_stat = 1
        attr.disabled = 1
        # Never inherit a PMU probe: copying it into a new thread or child makes the kernel re-read config1 (the
        # path or symbol pointer, valid only in hwprof) in the target's address space, and the target's
        # fork/clone fails with EFAULT (pthread_create: "Bad address"; test_pmu_probes_never_break_forks).
        attr.inherit = 0 if self.target.system_wide or opened.mechanism == "pmu" else 1
        if self.target.command:
            attr.enable_on_exec = 1
        if self.options.mode == Mode.LATENCY:
            # Entry and return of one call may be stamped on two CPUs. The default perf clock (local_clock) is
            # per CPU and, where the kernel found no usable TSC, ticks in jiffies; CLOCK_MONOTONIC is one clock
            # for every CPU at the clocksource's resolution, the clock bcc's funclatency measures with.
            attr.use_clockid, attr.clockid = 1, time.CLOCK_MONOTONIC
        if self.options.mode == Mode.STACKS:
            attr.sample_max_stack = self.options.max_stack
            if probe.kind.is_user:
                attr.exclude_callchain_kernel = 1  # the kernel part is only the uprobe trap path
        return attr

    def _prepare(self) -> None:
        for index, probe in enumerate(self.probes):
            mechanism = self._mechanism_for(probe)
            dynamic = fmt = None
            if mechanism == "tracefs":
                if self._dynamic is None:
                    self._dynamic = DynamicEvents(tracefs_root())
                    # However hwprof ends (an exit handler included), the fds go before the definitions.
                    self._dynamic.on_close(self._close_events)
                if probe.kind.is_user:
                    location = f"{probe.path}:{probe.file_offset:#x}"
                else:
                    location = probe.symbol + (f"+{probe.offset}" if probe.offset else "")
                kind = "r" if probe.kind.is_return else "p"
                dynamic = self._dynamic.add(kind, location, probe.spec.fetch_args, kernel=not probe.kind.is_user,
                                            label=probe.label)
                fmt = dynamic.format
            elif mechanism == "tracepoint" and self.options.mode == Mode.ARGS:
                subsys, event = probe.symbol.split(":", 1)
                fmt = read_format(tracefs_root(), subsys, event)
            self._opened.append(_Opened(probe, index, mechanism, dynamic, fmt))
            self.result.probes.append(ProbeCounts(probe, mechanism))
            if fmt is not None:
                self.result.formats[index] = fmt

    def _open_targets(self) -> list[tuple[int, int]]:
        """(pid, cpu) pairs. Task events are opened per CPU too: an inherited event can only be mmapped, or
        redirected into another task's ring, when it is bound to a CPU."""
        cpus = online_cpus()
        if self.target.command:
            return [(self._child.pid, cpu) for cpu in cpus]
        if self.target.pids:
            return [(tid, cpu) for pid in self.target.pids for tid in threads_of(pid) for cpu in cpus]
        return [(-1, cpu) for cpu in cpus]

    def _open_one(self, opened: _Opened, attr: PerfEventAttr, pid: int, cpu: int) -> int:
        try:
            return syscall.perf_event_open(attr, pid, cpu, name=opened.probe.label)
        except syscall.PerfOpenError as exc:
            raise _explain(opened, exc, pid) from None

    def _check_target(self) -> None:
        """Say what is wrong with the target before anything is created for it."""
        if self.target.command:
            resolve_command(self.target.command)
        for pid in self.target.pids:
            threads_of(pid)

    def open(self) -> None:
        syscall.raise_fd_limit()
        self._check_target()
        self._prepare()
        if self.target.command:
            # Held before exec until the probes are open (enable_on_exec starts them at its exec).
            self._child = HeldCommand(self.target.command)
        targets = self._open_targets()
        leaders: dict[int, int] = {}  # cpu -> the fd that owns that CPU's ring
        opened_any = False
        for pid, cpu in targets:
            for opened in self._opened:
                attr = self._base_attr(opened)
                leader = leaders.get(cpu, -1)
                if leader < 0:
                    # The fd that owns a ring also reports comm changes, task exits and (for stacks) mmaps.
                    attr.comm = attr.task = 1
                    attr.mmap2 = attr.mmap = 1 if self.options.mode == Mode.STACKS else 0
                    attr.watermark = 1
                    attr.wakeup_watermark = self.options.ring_pages * 4096 // 4
                try:
                    fd = self._open_one(opened, attr, pid, cpu)
                except HwprofError as exc:
                    if getattr(exc, "errno", None) == errno.ESRCH and self.target.pids and pid > 0:
                        break  # a thread exited while we were opening: nothing to probe there
                    raise
                opened.fds.append(fd)
                ident = syscall.event_id(fd)
                self._ids[ident] = opened.index
                self._fd_task[fd] = (self._pid_of(pid), pid)
                self._layouts[opened.index] = SampleLayout.from_attr(attr)
                self._read_formats[opened.index] = int(attr.read_format)
                if leader < 0:
                    leaders[cpu] = fd
                    self._side_layout = SampleLayout.from_attr(attr)  # ring owners carry the sample_id trailer
                    self._rings.append(RingBuffer(fd, self.options.ring_pages))
                else:
                    syscall.set_output(fd, leader)
                opened_any = True
                if self.options.filter.pids and opened.mechanism != "pmu":
                    expr = " || ".join(f"common_pid == {p}" for p in sorted(self.options.filter.pids))
                    try:
                        syscall.set_filter(fd, expr)
                    except OSError:
                        pass  # filtering then happens in user space only
        if self.target.command and any(o.mechanism == "pmu" for o in self._opened):
            self.result.notes.append("perf PMU probes on a command follow its first thread only (they cannot be "
                                     "inherited): threads and children it creates are not probed")
        if not opened_any:
            raise HwprofError(f"no thread of {self.target.describe()} could be probed (did it exit?)")

    # --- running -------------------------------------------------------------------------------------
    def run(self, on_attached: Callable[[], None] | None = None) -> SessionResult:
        """Collect until -d expires, the command or the target processes end, or a stop signal (SIGINT, SIGTERM,
        SIGHUP). A stop signal sent to hwprof alone reaches the command too, as a terminal's would."""
        start = time.monotonic_ns()
        deadline = None if self.options.duration_s is None else start + int(self.options.duration_s * 1e9)
        poller = select.poll()
        for ring in self._rings:
            poller.register(ring.fd, select.POLLIN)
        with StopSignals() as stop:
            poller.register(stop.fd, select.POLLIN)
            if self._child is None:
                for opened in self._opened:
                    for fd in opened.fds:
                        syscall.enable(fd)
            else:
                self._child.start(stop)
            if on_attached is not None:
                on_attached()  # only now: a workload started on this signal must not run before the probes
            while True:
                timeout_ms = 100
                if deadline is not None:
                    left = (deadline - time.monotonic_ns()) // 1_000_000
                    if left <= 0:
                        break
                    timeout_ms = min(timeout_ms, max(1, left))
                poll_rings(poller, timeout_ms, stop.fd)
                stop.drain()
                if stop.requested:
                    break
                self._drain()
                if self._targets_gone():
                    break
            for opened in self._opened:
                for fd in opened.fds:
                    try:
                        syscall.disable(fd)
                    except OSError:
                        pass
            self.result.duration_ns = time.monotonic_ns() - start  # the probing window, not the decoding after it
            self._drain()
            self._read_totals()
            self._account_missing_samples()
            if self._child is not None:
                self._reap_child(stop)
        if self._walk is not None:
            self.result.notes.extend(self._walk.stats.notes())  # records the walk could not read, with reasons
        return self.result

    def _targets_gone(self) -> bool:
        if self._child is not None:
            if self._child.poll():
                self.result.exit_status = self._child.exit_code
                return True
            return False
        if self.target.pids:
            return not any(process_exists(p) for p in self.target.pids)
        return False

    def _reap_child(self, stop: StopSignals, grace_s: float = 0.5) -> None:
        """Collect the command's exit status if it ends soon. A stop signal that hwprof alone got is passed on
        (SIGHUP: the hang-up a terminal would deliver). A command still running when -d expired, or that ignored
        the signal, is left running, as perf stat --timeout does not kill its workload either."""
        child = self._child
        if stop.first is not None and not child.wait(SIGNAL_FORWARD_DELAY_S):
            child.send(stop.first)
        if child.wait(grace_s):
            self.result.exit_status = child.exit_code
        else:
            self.result.notes.append(f"the command (pid {child.pid}) is still running; it was probed "
                                     "until now and keeps running unprobed")

    def _pid_of(self, tid: int) -> Pid:
        if self.target.command:
            return self._child.pid if self._child is not None else tid
        return owning_process(tid, self.target.pids) or tid

    def _read_totals(self) -> None:
        counts = self.result.probes
        dropped = 0  # samples the kernel could not write, by the events' own counts (PERF_FORMAT_LOST)
        for opened in self._opened:
            total = 0
            own: Counter = Counter()  # opened tid -> hits not reported by any READ record
            for fd in opened.fds:
                if self._sampling:
                    (value,) = read_counters(fd, self._read_formats[opened.index])
                    total += value.raw
                    dropped += value.lost
                    continue
                value, ident = struct.unpack("<QQ", os.read(fd, 16))
                total += value
                own[self._fd_task[fd]] += value - self._child_counts[ident]
            counts[opened.index].total = total
            for (pid, tid), n in own.items():
                if n > 0:
                    self._attribute_remainder(opened.index, pid, tid, n)
        # LOST records miss the drops after the last sample that fit; the events' counts miss inherited copies'.
        self.result.lost = max(self.result.lost, dropped)
        if self.options.filter.active:
            # The kernel counted every hit in scope; the user asked only about some processes.
            for c in counts:
                c.total = sum(c.per_thread.values())

    def _account_missing_samples(self) -> None:
        """Hits the kernel counted that never arrived as samples, beyond what LOST records owned up to, are said."""
        if not self._sampling or self.options.filter.active:
            return
        short = {c.probe.label: c.total - sum(c.per_thread.values()) for c in self.result.probes}
        unexplained = sum(n for n in short.values() if n > 0) - self.result.lost
        if unexplained > 0:
            detail = ", ".join(f"{label}: {n}" for label, n in short.items() if n > 0)
            self.result.notes.append(f"{unexplained} hits the kernel counted never arrived as samples and were not "
                                     f"reported lost ({detail}): results cover only the hits that arrived")

    def _attribute_remainder(self, index: int, pid: Pid, tid: Tid, hits: int) -> None:
        """Hits of an opened task's family that no READ record claimed: whose are they?

        The opened task's own hits, unless it exited and reported them itself (after exec the kernel treats the
        command's first thread like an inherited one); and the hits of any descendant thread whose READ record
        the kernel did not deliver (it sometimes does not). One candidate owner: the split stays exact. Several:
        the opened task gets them and a note says so.
        """
        candidates = [] if (index, tid) in self._reported else [tid]
        for silent in sorted(self._exited - {t for i, t in self._reported if i == index} - {tid}):
            ancestor = silent
            while ancestor in self._parent and ancestor != tid:
                ancestor = self._parent[ancestor]
            if ancestor == tid:
                candidates.append(silent)
        owner = candidates[0] if len(candidates) == 1 else tid
        if len(candidates) > 1:
            self.result.notes.append(
                f"{len(candidates) - 1} thread(s) of {pid} exited without reporting their own count "
                f"(PERF_RECORD_READ): {hits} hits are shown under thread {tid} (totals are exact)")
        if self.options.filter.keeps(pid, self._comm(owner)):
            self.result.probes[index].per_thread[(pid, owner)] += hits

    # --- decoding: the pipeline's record walk with this session's callbacks ---------------------------
    def _drain(self) -> None:
        for ring in self._rings:
            data = ring.read_available()
            if data:
                self._decode(data)

    def _decode(self, data: bytes) -> None:
        if self._walk is None:
            events = [EventInfo(index, self.probes[index].label, PerfEventAttr(), layout)
                      for index, layout in sorted(self._layouts.items())]
            table = EventTable(events, {ident: pos for pos, e in enumerate(events) for ident, index
                                        in self._ids.items() if index == e.index}, side_layout=self._side_layout)
            self._walk = RecordWalk(table, _SessionRecords(self))
        self._walk.walk_whole(data)

    def _snapshot_maps(self, pid: Pid) -> None:
        """Mappings of a process that was running before the probes went in (no MMAP2 records for those)."""
        try:
            maps = read_maps(pid)
        except HwprofError:
            maps = []
        self.result.proc_maps[pid] = [(m.start, m.end, m.offset, m.path) for m in maps
                                      if m.executable and m.path.startswith("/")]

    def _comm(self, tid: Tid) -> str:
        comm = self.result.comms.get(tid)
        if comm is None:
            comm = self.result.comms[tid] = read_comm(tid) or ""
        return comm

    def _take_fixed(self, data: bytes, offsets: np.ndarray) -> None:
        """Vectorised decode of IDENTIFIER, TID[, TIME] samples (count and latency modes)."""
        raw = np.frombuffer(data, dtype=np.uint8)

        def field_at(delta: int, dtype: str) -> np.ndarray:
            width = np.dtype(dtype).itemsize
            idx = (offsets + delta)[:, None] + np.arange(width)
            return raw[idx].copy().view(dtype).reshape(-1)

        ids = field_at(8, "<u8")
        pids = field_at(16, "<i4")
        tids = field_at(20, "<i4")
        index = np.full(len(ids), -1, dtype=np.int32)
        for ident, probe in self._ids.items():
            index[ids == ident] = probe
        keep = index >= 0
        filt = self.options.filter
        if filt.active:
            comms = np.array([filt.keeps(int(p), self._comm(int(t))) for p, t in zip(pids, tids, strict=True)],
                             dtype=bool)
            keep &= comms
        else:
            for t in np.unique(tids).tolist():
                self._comm(int(t))
        index, pids, tids = index[keep], pids[keep], tids[keep]
        triples = np.stack([index.astype(np.int64), pids.astype(np.int64), tids.astype(np.int64)], axis=1)
        if len(triples):
            uniq, counts = np.unique(triples, axis=0, return_counts=True)
            for (probe, pid, tid), n in zip(uniq.tolist(), counts.tolist(), strict=True):
                self.result.probes[probe].per_thread[(pid, tid)] += n
        if self.options.mode == Mode.LATENCY:
            times = field_at(24, "<u8")[keep]
            self.result.times = np.concatenate([self.result.times, times])
            self.result.tids = np.concatenate([self.result.tids, tids])
            self.result.probe_index = np.concatenate([self.result.probe_index, index])


class _SessionRecords(RecordHandler):
    """The probe session's callbacks for the record walk: hits, names, mappings, losses, exits, final counts."""

    def __init__(self, session: ProbeSession) -> None:
        self.session = session
        self.result = session.result
        self._named_at: dict[Tid, int] = {}  # tid -> time of the COMM record its name came from

    def samples(self, records: SampleRecords) -> None:
        session = self.session
        mode = session.options.mode
        if mode in (Mode.COUNT, Mode.LATENCY):
            session._take_fixed(records.buffer, records.offsets)
            return
        buffer = records.buffer
        layouts = session._layouts
        for offset in records.offsets.tolist():
            (ident,) = struct.unpack_from("<Q", buffer, offset + 8)
            index = session._ids.get(ident)
            if index is None:
                continue
            sample = parse_sample(buffer, offset, layouts[index])
            comm = session._comm(sample.tid)
            if session.options.filter.active and not session.options.filter.keeps(sample.pid, comm):
                continue
            self.result.probes[index].per_thread[(sample.pid, sample.tid)] += 1
            if mode == Mode.STACKS and sample.pid not in self.result.proc_maps:
                session._snapshot_maps(sample.pid)
            hit = Hit(index, sample.pid, sample.tid, sample.time, sample.cpu, sample.callchain)
            fmt = self.result.formats.get(index)
            if fmt is not None and sample.raw:
                hit.args = fmt.decode(sample.raw)
            self.result.hits.append(hit)

    def read(self, rec: ReadRecord, when: int) -> None:
        """An inherited thread exited; its own count, under its parent event's id."""
        session = self.session
        value, ident = rec.values[0].raw, rec.values[0].id
        index = session._ids.get(ident)
        if index is None:
            return
        session._child_counts[ident] += value
        session._reported.add((index, rec.tid))
        if value and session.options.filter.keeps(rec.pid, session._comm(rec.tid)):
            self.result.probes[index].per_thread[(rec.pid, rec.tid)] += value

    def comm(self, rec: Comm, when: int) -> None:
        if when >= self._named_at.get(rec.tid, -1):  # the latest name by time, whichever ring is read last
            self._named_at[rec.tid] = when
            self.result.comms[rec.tid] = rec.comm

    def mmap(self, rec: Mmap, when: int) -> None:
        self.result.maps.append(rec)

    def lost(self, rec: Lost, when: int) -> None:
        self.result.lost += rec.lost

    def exit(self, rec: TaskEvent, when: int) -> None:
        self.session._exited.add(rec.tid)

    def fork(self, rec: TaskEvent, when: int) -> None:
        if rec.tid != rec.ptid:
            self.session._parent[rec.tid] = rec.ptid


def _has_control(name: str) -> bool:
    try:
        return (tracefs_root() / name).exists()
    except HwprofError:
        return False


def _explain(opened: _Opened, exc: syscall.PerfOpenError, pid: int) -> HwprofError:
    """Probe-specific advice on top of the generic perf_event_open message."""
    probe = opened.probe
    err = exc.errno
    message = str(exc)
    if exc.permission and opened.mechanism == "pmu":
        message = (f"no permission to open {probe.label}: uprobes and kprobes need root or CAP_PERFMON "
                   "(kernel.perf_event_paranoid does not lower this)")
    elif err == errno.ESRCH:
        message = f"no such process: {pid}"
    elif probe.kind.is_kernel_function and err in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP):
        why = "it is on the kprobe blacklist" if _blacklisted(probe.symbol) else \
            "not a probe-able function entry (notrace, inlined, or in a non-probe-able section)"
        message = f"kernel function {probe.symbol!r} cannot be probed: {why}"
    elif probe.kind.is_user and err == errno.EINVAL:
        message = (f"the kernel refused {probe.label}: offset {probe.file_offset:#x} is not at an instruction "
                   "in an executable segment")
    out = HwprofError(message)
    out.errno = err  # type: ignore[attr-defined]
    return out


def _blacklisted(symbol: str) -> bool:
    for path in ("/sys/kernel/debug/kprobes/blacklist", "/sys/kernel/tracing/../debug/kprobes/blacklist"):
        try:
            with open(path) as f:
                return any(line.split()[-1] == symbol for line in f if line.strip())
        except OSError:
            continue
    return False


def collect(probes: list[Probe], target: Target, options: SessionOptions) -> SessionResult:
    """Open, run, close: the whole life of a probe session."""
    with ProbeSession(probes, target, options) as session:
        session.open()
        return session.run()


def iter_latency_groups(result: SessionResult) -> Iterator[tuple[int, int]]:
    """(entry probe index, return probe index) pairs in a latency result: probes come as entry, return, ..."""
    for i in range(0, len(result.probes) - 1, 2):
        yield i, i + 1
