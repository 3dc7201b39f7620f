"""The sampling capture: open the events, copy ring buffers into a perf.data file, finalise it.

perf's design, kept because it is what makes capture cheap and lossless: one ring per CPU, with every other event
of that CPU redirected into it (SET_OUTPUT); a task target is followed per CPU with inherit=1 so children and new
threads are sampled too; poll(2) wakes us at a watermark, and each wake copies the raw bytes of every ring into
the file with a FINISHED_ROUND after them. No record is looked at while the target runs: counting samples and
losses, collecting build-ids and JIT maps happens after the stop, from the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import select
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hwprof.errors import HwprofError
from hwprof.events import EventGroup, EventSpec, parse_events
from hwprof.perf import abi, syscall
from hwprof.perf.abi import ReadFormat, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.readformat import read_counters
from hwprof.perf.records import Lost, Mmap, SampleLayout, Switch, TaskEvent, trailer_maker
from hwprof.perf.ring import DEFAULT_DATA_PAGES, PAGE_SIZE, RingBuffer, poll_rings
from hwprof.perfdata import features as feat
from hwprof.perfdata.features import Feature
from hwprof.perfdata.writer import FileAttr, PerfDataWriter
from hwprof.pipeline.walk import EventInfo, EventTable, RecordHandler, RecordWalk
from hwprof.system.cpus import online_cpus
from hwprof.system.launch import HeldCommand
from hwprof.system.procfs import all_pids, process_exists, process_start_wall, thread_ids
from hwprof.system.stopping import StopSignals
from hwprof.units import Cpu, Nanoseconds, Pid

DEFAULT_FREQUENCY = 4000  # perf record's default
DEFAULT_EVENT = "cycles"
FALLBACK_EVENT = "cpu-clock"
POLL_TIMEOUT_MS = 250
FLUSH_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Target:
    """What to sample: a command to start, running processes, or CPUs (system-wide), the latter optionally only
    while tasks of one cgroup (or of its descendants) run (perf's -G: the name is relative to the cgroup
    hierarchy, hwprof.system.cgroups)."""

    command: tuple[str, ...] = ()
    pids: tuple[Pid, ...] = ()
    system_wide: bool = False
    cpus: tuple[Cpu, ...] | None = None
    cgroup: str | None = None

    def describe(self) -> str:
        if self.command:
            return " ".join(self.command)
        if self.pids:
            return "pid " + ",".join(map(str, self.pids))
        where = "cpu " + ",".join(map(str, self.cpus)) if self.cpus is not None and not self.system_wide \
            else "system-wide"
        return f"{where}, cgroup {self.cgroup}" if self.cgroup is not None else where


@dataclass(frozen=True)
class SamplingOptions:
    events: str | None = None          # an event list as `-e` takes it; None = cycles, falling back to cpu-clock
    frequency: int | None = None
    period: int | None = None
    callgraph: bool = False
    stack_dump: int = 0                # --call-graph dwarf: bytes of user stack per sample (0: frame pointers)
    max_stack: int | None = None
    user_callchain: bool = True
    kernel_callchain: bool = True
    data_pages: int | None = None      # None: DEFAULT_DATA_PAGES, halved while the lock limit refuses it
    duration: float | None = None
    inherit: bool = True
    # Off-CPU capture (collectors/offcpu.py): event groups sampled at every hit besides the sampling event,
    # PERF_RECORD_SWITCH records, and sample times in this clock (its span goes into the SAMPLE_TIME feature).
    extra_events: str | None = None
    context_switch: bool = False
    clockid: int | None = None
    window: float | None = None        # cut the capture into files of this many seconds (hwprof agent)
    # With windows: False starts only the first file (and those after request_synthesis() or after a window with
    # lost records) with the /proc snapshot of every process; the others hold the kernel's own records of what
    # changed, for a decoder that carries the address spaces from window to window (hwprof agent).
    synthesize_each_window: bool = True
    # With a cgroup target: True records the side-band of every task (perf record -G's tracking event, and the
    # /proc snapshot of every process), so a process moved into the cgroup after it mapped its code is still
    # symbolized from the file alone. False keeps only the cgroup's tasks' records (they come with its events) and
    # snapshots only its processes: far fewer records, for a reader that fills in a process that joined later from
    # /proc while it still runs (hwprof agent, collectors/joined.py).
    every_task_sideband: bool = True


@dataclass(frozen=True)
class CaptureResult:
    path: str
    target: str
    command: list[str]
    events: list[str]
    start_time_ns: Nanoseconds
    duration_ns: Nanoseconds
    samples: int
    lost: int
    size: int
    exit_status: int | None            # the command's, as a shell reports it (128 + N: killed by signal N)
    notices: list[str] = field(default_factory=list)
    switches: int = 0  # PERF_RECORD_SWITCH switch-ins (with context_switch)
    synthesized: bool = True  # the file starts with what ran before it (a /proc snapshot of the target's processes)


def default_data_pages(stack_dump: int = 0) -> int:
    """Ring pages per CPU when -m is not given: 1 MiB for root (twice perf's default: a Python reader can be
    scheduled later than perf's C loop on a busy machine, and the ring must absorb that), perf's 512 KiB
    otherwise (the locked-memory limit of an unprivileged user). Stack copies (--call-graph dwarf) make every
    sample up to 64 KiB: root gets 4 MiB then, so a ring still holds a quarter second at 4000 Hz x 8 KiB."""
    if os.geteuid() != 0:
        return DEFAULT_DATA_PAGES
    return 8 * DEFAULT_DATA_PAGES if stack_dump else 2 * DEFAULT_DATA_PAGES


# --- attrs ------------------------------------------------------------------------------------------------

@dataclass
class _Event:
    spec: EventSpec
    attr: PerfEventAttr
    ids: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    tracking: bool = False  # the side-band event of a cgroup capture: every task of the CPU, never samples


def _sampling_attrs(groups: list[EventGroup], opts: SamplingOptions,
                    notices: list[str] | None = None, tracking: bool = False) -> list[list[_Event]]:
    """One _Event per event of `groups`. `tracking`: the side-band goes to a separate dummy event (the last
    group) instead of the first event (see _tracking_event)."""
    notices = notices if notices is not None else []
    total = sum(len(g.events) for g in groups) + int(tracking)
    out = []
    first = True
    for group in groups:
        reads_group = group.is_group and len(group.events) > 1
        events = []
        for index, spec in enumerate(group.events):
            attr = spec.attr_copy()
            st = SampleType.IP | SampleType.TID | SampleType.TIME | SampleType.CPU | SampleType.PERIOD
            if opts.callgraph:
                st |= SampleType.CALLCHAIN
            if reads_group:
                # STREAM_ID names the counter instance a read comes from (a CPU's event system-wide, a thread's
                # inherited copy per CPU otherwise): the decoder takes per-sample deltas per instance.
                st |= SampleType.READ | SampleType.STREAM_ID
                attr.read_format = (ReadFormat.GROUP | ReadFormat.ID | ReadFormat.TOTAL_TIME_ENABLED
                                    | ReadFormat.TOTAL_TIME_RUNNING)
            if total > 1:
                st |= SampleType.IDENTIFIER
            if spec.is_tracepoint:
                st |= SampleType.RAW
            attr.sample_type = st
            attr.sample_id_all = 1
            if syscall.reports_lost_samples():
                attr.read_format |= ReadFormat.LOST  # what the kernel dropped at the very end (see _unreported_drops)
            if opts.clockid is not None:
                attr.use_clockid, attr.clockid = 1, opts.clockid
            attr.disabled = 1 if index == 0 else 0  # members follow their leader
            attr.inherit = 1 if opts.inherit else 0
            if index == 0:
                _set_rate(attr, spec, opts, notices)
                # Wake the reader when a quarter of the ring is full: three quarters stay free for the time it
                # takes to be scheduled and copy (the kernel's default waits for half).
                pages = opts.data_pages or default_data_pages(opts.stack_dump)
                attr.watermark = 1
                attr.wakeup_watermark = max(64, pages * PAGE_SIZE // 4)
                if opts.callgraph:
                    if opts.max_stack:
                        attr.sample_max_stack = opts.max_stack
                    attr.exclude_callchain_user = 0 if opts.user_callchain else 1
                    attr.exclude_callchain_kernel = 0 if opts.kernel_callchain else 1
                    if opts.stack_dump and opts.user_callchain:
                        _dwarf_stacks(attr, opts.stack_dump)
            if first:
                # The first event carries the side-band: mappings, names, forks and exits.
                if not tracking:
                    attr.mmap = attr.mmap2 = attr.comm = attr.comm_exec = attr.task = 1
                attr.context_switch = 1 if opts.context_switch else 0
                first = False
            events.append(_Event(spec, attr))
        out.append(events)
    if tracking:
        out.append([_tracking_event(out[0][0].attr)])
    return out


# The sample_id trailer's fields: a side record of the tracking event must have the same trailer as the first
# event's, so that the one side layout of a ring (and perf's readers) parse it.
_TRAILER_TYPES = (SampleType.TID | SampleType.TIME | SampleType.ID | SampleType.STREAM_ID | SampleType.CPU
                  | SampleType.IDENTIFIER)


def _tracking_event(leader: PerfEventAttr) -> _Event:
    """perf record -G's `dummy` tracking event: the sampling events of a cgroup capture see only the cgroup's
    tasks, and so would their side-band (the kernel filters mmap/comm/task records by the cgroup of the task
    that makes them). A process that mapped its code before it was moved into the cgroup would then have no
    mappings, so, as perf does, one dummy event per CPU without the cgroup carries the side-band of every task,
    and the capture starts with the /proc snapshot of every process. It counts nothing and never samples."""
    spec = parse_events("dummy")[0].events[0]
    attr = spec.attr_copy()
    attr.sample_type = leader.sample_type & _TRAILER_TYPES | SampleType.IP
    attr.sample_period, attr.freq = 1, 0
    attr.sample_id_all = 1
    attr.use_clockid, attr.clockid = leader.use_clockid, leader.clockid  # one clock per ring
    attr.exclude_kernel, attr.exclude_hv = leader.exclude_kernel, leader.exclude_hv
    attr.disabled = 1
    attr.inherit = leader.inherit
    attr.mmap = attr.mmap2 = attr.comm = attr.comm_exec = attr.task = 1
    attr.mmap_data = leader.mmap_data
    attr.read_format = leader.read_format & ReadFormat.LOST
    return _Event(spec, attr, tracking=True)


def _dwarf_stacks(attr: PerfEventAttr, stack_dump: int) -> None:
    """perf's --call-graph dwarf: user registers and a copy of the user stack in every sample; the kernel
    callchain keeps only the kernel part (the user part is unwound from the copy). Data mappings are recorded too
    (mmap_data), as perf does: .eh_frame_hdr lives in a binary's read-only segment, and perf's unwinder finds it
    through that mapping."""
    from hwprof.callgraph import X86_64_DWARF_REGS_MASK

    attr.sample_type |= SampleType.REGS_USER | SampleType.STACK_USER
    attr.sample_regs_user = X86_64_DWARF_REGS_MASK
    attr.sample_stack_user = stack_dump
    attr.exclude_callchain_user = 1
    attr.mmap_data = 1


def _set_rate(attr: PerfEventAttr, spec: EventSpec, opts: SamplingOptions, notices: list[str]) -> None:
    if opts.period:
        attr.sample_period, attr.freq = opts.period, 0
    elif opts.frequency:
        attr.sample_freq, attr.freq = opts.frequency, 1
    elif spec.sample_period:
        attr.sample_period, attr.freq = spec.sample_period, 0
    elif spec.sample_freq:
        attr.sample_freq, attr.freq = spec.sample_freq, 1
    elif spec.is_tracepoint:
        attr.sample_period, attr.freq = 1, 0  # every hit, as perf samples tracepoints
    else:
        attr.sample_freq, attr.freq = DEFAULT_FREQUENCY, 1
    if attr.freq:
        limit = syscall.read_sysctl("perf_event_max_sample_rate", 100000) or 100000
        if attr.sample_freq > limit:
            # As perf does: the kernel lowers this sysctl itself when sampling interrupts take too long.
            notices.append(f"{attr.sample_freq} Hz is above kernel.perf_event_max_sample_rate ({limit}): "
                           f"sampling at {limit} Hz")
            attr.sample_freq = limit


# --- the session ------------------------------------------------------------------------------------------

class SamplingSession:
    """One capture. `run()` blocks until the target ends, the duration passes, or SIGINT/SIGTERM."""

    def __init__(self, target: Target, options: SamplingOptions, output: str | os.PathLike,
                 cmdline: list[str] | None = None, notify: Callable[[str], None] | None = None,
                 on_window: Callable[[CaptureResult], str | os.PathLike] | None = None) -> None:
        """`on_window` (with options.window): called with each finished window's file, returns the next file's
        path; `run()` returns the last window."""
        self.target = target
        self._on_window = on_window
        self.options = options
        self.output = os.fspath(output)
        self.cmdline = cmdline or ["hwprof", "record"]
        self.notices: list[str] = []
        self._notify = notify or (lambda _msg: None)
        self._rings: list[RingBuffer] = []
        self._owner_fds: list[int] = []  # dummy events on hwprof owning the rings of a -p capture
        self._lost_reported = 0  # what LOST records of the files written so far reported
        self._events: list[list[_Event]] = []
        self._child: HeldCommand | None = None
        self._map_seen: dict[str, tuple[int, int]] = {}
        self._process_start: dict[int, float] = {}  # pid -> wall-clock start, to tell a JIT map from a stale one
        self._started = False
        self._start_wall = self._start_mono = 0.0
        self._start_ns = 0
        self._clock = time.CLOCK_MONOTONIC
        self._synthesis_requested = False
        self._file_synthesized = True
        self._kernel_mmap: bytes | None = None
        self._kernel_build_id: bytes | None = None
        self._cgroup_fd: int | None = None  # the -G cgroup's directory, open while the events are

    @property
    def _whole_machine(self) -> bool:
        """Every process of the CPUs is sampled (-a, or -C without a command or processes)."""
        return self.target.system_wide or (self.target.cpus is not None and not self.target.command
                                           and not self.target.pids)

    @property
    def _tracks_every_task(self) -> bool:
        """A cgroup capture whose side-band covers every task (a dummy tracking event per CPU)."""
        return self.target.cgroup is not None and self.options.every_task_sideband

    def request_synthesis(self) -> None:
        """The next window's file starts with a /proc snapshot again (without synthesize_each_window): its decoder
        lost track of the address spaces (a window skipped or not decoded)."""
        self._synthesis_requested = True

    def notice(self, message: str) -> None:
        self.notices.append(message)
        self._notify(message)

    # --- opening ------------------------------------------------------------------------------------
    def _groups(self) -> tuple[list[EventGroup], bool]:
        explicit = self.options.events is not None
        groups = parse_events(self.options.events or DEFAULT_EVENT)
        return groups + self._extra_groups(), explicit

    def _extra_groups(self) -> list[EventGroup]:
        return parse_events(self.options.extra_events) if self.options.extra_events else []

    def _open_targets(self) -> list[tuple[int, Cpu]]:
        """(pid, cpu) pairs to open every event on."""
        cpus = list(self.target.cpus) if self.target.cpus is not None else online_cpus()
        known = set(online_cpus())
        for cpu in cpus:
            if cpu not in known:
                raise HwprofError(f"CPU {cpu} is not online (online: {','.join(map(str, sorted(known)))})")
        if self._whole_machine:
            return [(-1, cpu) for cpu in cpus]
        if self._child is not None:
            return [(self._child.pid, cpu) for cpu in cpus]
        pairs = []
        for pid in self.target.pids:
            tids = thread_ids(pid)
            if not tids:
                raise HwprofError(f"no such process: {pid}")
            pairs += [(tid, cpu) for tid in tids for cpu in cpus]
        return pairs

    def _open_all(self, groups: list[EventGroup], explicit: bool) -> None:
        rate_notices: list[str] = []
        self._events = _sampling_attrs(groups, self.options, rate_notices, tracking=self._tracks_every_task)
        for message in dict.fromkeys(rate_notices):
            self.notice(message)
        pairs = self._open_targets()
        kernel_fallback_done = clock_fallback_done = False
        for _attempt in range(3):
            try:
                self._open_pairs(pairs)
                return
            except syscall.PerfOpenError as exc:
                self._close_fds()
                leader = self._events[0][0]
                # Either fallback may come first: unprivileged, the kernel refuses the kernel part of `cycles`
                # before it finds that there is no CPU PMU.
                if exc.unsupported and not explicit and leader.spec.is_hardware and not clock_fallback_done:
                    clock_fallback_done = True
                    self.notice(f"event '{leader.spec.name}' cannot be opened here ({_short(exc)}); "
                                f"falling back to '{FALLBACK_EVENT}'")
                    self._events = _sampling_attrs(parse_events(FALLBACK_EVENT) + self._extra_groups(), self.options,
                                                   tracking=self._tracks_every_task)
                    if kernel_fallback_done:
                        self._user_space_only()
                    continue
                if exc.permission and os.geteuid() != 0 and not kernel_fallback_done:
                    # perf's fallback at perf_event_paranoid 2: sample user space only.
                    kernel_fallback_done = True
                    if any(not e.attr.exclude_kernel for g in self._events for e in g):
                        level = syscall.read_sysctl("perf_event_paranoid", 2)
                        self.notice(f"kernel.perf_event_paranoid is {level}: sampling user space only (as with :u)")
                        self._user_space_only()
                        continue
                raise
        raise HwprofError("cannot open the sampling events")

    def _user_space_only(self) -> None:
        for group in self._events:
            for event in group:
                event.attr.exclude_kernel = event.attr.exclude_hv = 1
                event.attr.exclude_callchain_kernel = 1

    def _open_pairs(self, pairs: list[tuple[int, Cpu]]) -> None:
        cpu_owner: dict[Cpu, int] = {}
        opened_any = False
        for pid, cpu in pairs:
            try:
                fds = self._open_on(pid, cpu)
            except syscall.PerfOpenError as exc:
                if exc.errno == errno.ESRCH and self.target.pids:
                    continue  # a thread that exited while we attached: nothing to sample there
                raise
            opened_any = True
            owner = cpu_owner.get(cpu)
            if owner is None and self.target.pids:
                owner = cpu_owner[cpu] = self._ring_owner(cpu)
            if owner is None:
                cpu_owner[cpu] = fds[0]
                owner_fd = fds[0]
                self._rings.append(self._map(owner_fd))
                rest = fds[1:]
            else:
                owner_fd = owner
                rest = fds
            for fd in rest:
                syscall.set_output(fd, owner_fd)
        if not opened_any:
            raise HwprofError(f"no such process: {','.join(map(str, self.target.pids))}")

    def _ring_owner(self, cpu: Cpu) -> int:
        """A dummy event on hwprof itself that owns CPU `cpu`'s ring when attaching to processes (-p).

        The threads of a running process come and go. The ring used to belong to the event of the lowest thread id;
        when that thread exited, its fd reported POLLHUP for ever, poll(2) returned at once and hwprof spun on a
        CPU for the rest of the capture. On a 2-CPU machine that took the CPU from the server being profiled: a
        thread-per-request server whose request threads had lower ids than its main thread (pids wrap) got a third
        of perf's samples. hwprof outlives every capture, so an event on itself owns a ring that never hangs up.
        """
        attr = parse_events("dummy")[0].events[0].attr_copy()
        leader = self._events[0][0].attr
        attr.exclude_kernel = attr.exclude_hv = 1  # counts nothing; allowed at any perf_event_paranoid
        attr.disabled = 1
        attr.watermark, attr.wakeup_watermark = leader.watermark, leader.wakeup_watermark  # the ring's wake-ups
        attr.use_clockid, attr.clockid = leader.use_clockid, leader.clockid  # the kernel wants one clock per ring
        fd = syscall.perf_event_open(attr, 0, cpu, -1, name="dummy")
        self._owner_fds.append(fd)
        self._rings.append(self._map(fd))
        return fd

    def _open_on(self, pid: int, cpu: Cpu) -> list[int]:
        fds = []
        for group in self._events:
            leader_fd = -1
            for event in group:
                attr = event.attr
                attr.enable_on_exec = 1 if self._child is not None and leader_fd == -1 else 0
                if self._cgroup_fd is not None and not event.tracking:
                    # -G: on this CPU, only while a task of the cgroup (or of a descendant) runs.
                    fd = syscall.perf_event_open(attr, self._cgroup_fd, cpu, leader_fd,
                                                 abi.FLAG_PID_CGROUP | abi.FLAG_FD_CLOEXEC, name=event.spec.name)
                else:
                    fd = syscall.perf_event_open(attr, pid, cpu, leader_fd, name=event.spec.name)
                event.fds.append(fd)
                event.ids.append(syscall.event_id(fd))
                fds.append(fd)
                if leader_fd == -1:
                    leader_fd = fd
        return fds

    def _map(self, fd: int) -> RingBuffer:
        pages = self.options.data_pages
        if pages is not None:
            return RingBuffer(fd, pages)
        pages = default_data_pages(self.options.stack_dump)
        while True:
            try:
                return RingBuffer(fd, pages)
            except HwprofError:
                if pages <= 8 or os.geteuid() == 0:
                    raise
                pages //= 2
                if not any("ring buffer" in n for n in self.notices):
                    self.notice("the locked-memory limit refuses the default ring size: using smaller rings")

    def _close_fds(self) -> None:
        for ring in self._rings:
            ring.close()
        self._rings = []
        for fd in self._owner_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._owner_fds = []
        for group in self._events:
            for event in group:
                for fd in event.fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                event.fds.clear()
                event.ids.clear()

    # --- the file -----------------------------------------------------------------------------------
    def _file_attrs(self) -> list[FileAttr]:
        return [FileAttr(e.attr, tuple(e.ids), e.spec.name) for g in self._events for e in g]

    def _trailer(self) -> Callable[[int, int], bytes]:
        first = self._events[0][0]
        layout = SampleLayout.from_attr(first.attr)
        return trailer_maker(layout, first.ids[0])

    def _synthesize(self, writer: PerfDataWriter, processes: bool = True) -> None:
        """The kernel image's mapping (every file has it, as perf's do) and, with `processes`, the COMM/FORK/MMAP2
        records of the target's running processes read from /proc."""
        from hwprof.collectors import procfs

        trailer = self._trailer()
        if self._kernel_mmap is None:
            self._kernel_mmap = procfs.kernel_mmap_record(trailer)  # the kernel's text does not move while we run
        writer.write(self._kernel_mmap)
        self._file_synthesized = processes
        if not processes:
            writer.finish_round()
            return
        if self.target.cgroup is not None and not self.options.every_task_sideband:
            from hwprof.system.cgroups import cgroup_pids

            writer.write(procfs.synthesize_processes(cgroup_pids(self.target.cgroup), trailer))
        elif self._whole_machine:
            writer.write(procfs.synthesize_processes(all_pids(), trailer))
        elif self.target.pids:
            writer.write(procfs.synthesize_processes(self.target.pids, trailer))
        writer.finish_round()

    # --- running ------------------------------------------------------------------------------------
    def run(self) -> CaptureResult:
        groups, explicit = self._groups()
        for group in groups:
            for spec in group.events:
                if spec.is_tool:
                    raise HwprofError(f"'{spec.name}' is measured by the tool and cannot be sampled")
        syscall.raise_fd_limit()
        if self.target.cgroup is not None and not self._whole_machine:
            raise HwprofError("a cgroup is sampled on CPUs: -G/--cgroup needs -a or -C (as perf's)", exit_code=2)
        if self.target.command:
            self._child = HeldCommand(self.target.command)
        created = False
        try:
            if self.target.cgroup is not None:
                from hwprof.system.cgroups import open_cgroup

                self._cgroup_fd = open_cgroup(self.target.cgroup)
            self._open_all(groups, explicit)
            writer = PerfDataWriter(self.output, self._file_attrs())
            created = True
            with StopSignals(wake_on_child=True) as stop:
                self._start(writer, stop)
                return self._capture(writer, stop)
        except BaseException:
            if self._child is not None and not self._child.started:
                self._child.abandon()  # the command never runs unprofiled
            if created and not self._started:
                _remove_capture(self.output)  # a failed start leaves no file behind
            raise
        finally:
            self._close_fds()
            if self._cgroup_fd is not None:
                os.close(self._cgroup_fd)
                self._cgroup_fd = None

    def _leader_fds(self) -> Iterator[int]:
        for group in self._events:
            yield from group[0].fds

    def _start(self, writer: PerfDataWriter, stop: StopSignals) -> None:
        """Synthesize what already runs, then let the events count: the command's exec enables them."""
        self._synthesize(writer)
        self._start_wall = time.time()
        self._start_mono = time.monotonic()
        self._clock = self.options.clockid if self.options.clockid is not None else time.CLOCK_MONOTONIC
        self._start_ns = time.clock_gettime_ns(self._clock)
        if self._child is not None:
            self._child.start(stop)
        else:
            for fd in self._leader_fds():
                syscall.enable(fd)
        self._started = True

    def _capture(self, writer: PerfDataWriter, stop: StopSignals) -> CaptureResult:
        opts = self.options
        poller = select.poll()
        for ring in self._rings:
            poller.register(ring.fd, select.POLLIN)
        poller.register(stop.fd, select.POLLIN)
        start_wall, start_mono, start_ns = self._start_wall, self._start_mono, self._start_ns
        clock = self._clock
        deadline = start_mono + opts.duration if opts.duration else None
        last_flush = start_mono
        next_cut = start_mono + opts.window if opts.window and self._on_window else None
        try:
            while True:
                timeout = POLL_TIMEOUT_MS
                if deadline is not None:
                    timeout = max(0, min(timeout, int((deadline - time.monotonic()) * 1000)))
                poll_rings(poller, timeout, stop.fd)
                stop.drain()
                if stop.requested:
                    self.notice(f"stopping on {stop.requested}")
                    break
                self._drain(writer)
                # Every wake-up (at least 4 a second): a short-lived JIT may delete its map when it exits.
                self._snapshot_perf_maps()
                now = time.monotonic()
                if now - last_flush >= FLUSH_INTERVAL_S:
                    writer.flush()
                    last_flush = now
                if deadline is not None and now >= deadline:
                    break
                if next_cut is not None and now >= next_cut and (deadline is None or deadline - now > 0.05):
                    # Events stay enabled; the rings hold what arrives while this file is finished, and it
                    # goes into the next window, which therefore starts at this cut.
                    cut = (time.time(), now, time.clock_gettime_ns(clock))
                    finished = self._result(writer, start_wall, start_mono, start_ns, cut[2], now)
                    self.output = os.fspath(self._on_window(finished))
                    self._map_seen = {}
                    writer = PerfDataWriter(self.output, self._file_attrs())
                    # A lost record may have been a mapping: the next window brings the whole picture again.
                    processes = opts.synthesize_each_window or self._synthesis_requested or finished.lost > 0
                    self._synthesis_requested = False
                    self._synthesize(writer, processes)
                    start_wall, start_mono, start_ns = cut
                    next_cut = start_mono + opts.window
                    continue
                if self._child is not None and self._child.poll():
                    break
                if self.target.pids and not any(process_exists(p) for p in self.target.pids):
                    break
        finally:
            for fd in self._leader_fds():
                with contextlib.suppress(OSError):
                    syscall.disable(fd)
            end_ns = time.clock_gettime_ns(clock)
            self._drain(writer)
            writer.flush()
            if self._child is not None:
                self._child.end(stop, signal.SIGTERM, notify=self.notice)
        return self._result(writer, start_wall, start_mono, start_ns, end_ns)

    def _result(self, writer: PerfDataWriter, start_wall: float, start_mono: float, start_ns: int, end_ns: int,
                end_mono: float | None = None) -> CaptureResult:
        """Finish the current file and describe it (a window ends at `end_mono`, the capture now)."""
        duration_ns = int(((end_mono or time.monotonic()) - start_mono) * 1e9)
        stats = self._finalise(writer, start_ns, end_ns, final=end_mono is None)
        return CaptureResult(
            path=self.output, target=self.target.describe(), command=list(self.target.command),
            events=[e.spec.name for g in self._events for e in g], start_time_ns=int(start_wall * 1e9),
            duration_ns=duration_ns, samples=stats[0], lost=stats[1], size=os.path.getsize(self.output),
            exit_status=self._child.exit_code if self._child else None, notices=list(self.notices),
            switches=stats[2], synthesized=self._file_synthesized)

    def _drain(self, writer: PerfDataWriter) -> None:
        data = b"".join(ring.read_available() for ring in self._rings)
        if data:
            writer.write(data)
            writer.finish_round()

    # --- after the stop -----------------------------------------------------------------------------
    def _unreported_drops(self) -> int:
        """Samples and records the kernel dropped for want of ring space that no LOST record reported.

        The kernel writes a LOST record only in front of the next record that fits, so what it dropped in the
        last moments of a capture is known from the events' own counts alone (PERF_FORMAT_LOST, read as perf
        record reads them at its end). Inherited copies keep their own counts, which nobody can read: the
        difference is then a floor."""
        dropped = 0
        for group in self._events:
            for event in group:
                read_format = int(event.attr.read_format)
                if not read_format & ReadFormat.LOST:
                    return 0
                if read_format & ReadFormat.GROUP and event is not group[0]:
                    continue  # the leader's read gives the whole group
                members = len(group) if read_format & ReadFormat.GROUP else 1
                for fd in event.fds:
                    try:
                        values = read_counters(fd, read_format, members)
                    except OSError:
                        continue
                    dropped += sum(v.lost for v in values)
        return max(0, dropped - self._lost_reported)

    def _finalise(self, writer: PerfDataWriter, start_ns: int, end_ns: int,
                  final: bool = True) -> tuple[int, int, int]:
        """Count samples, losses and switch-ins, gather build-ids and JIT maps from the file, write the features."""
        from hwprof.collectors import buildids

        # A decoder that follows the windows (synthesize_each_window=False) reads each binary's build-id from the
        # file itself when it needs it: its windows skip parsing every mapping record (thousands a window on a
        # machine that starts many processes) and the build-id reads.
        census = _Census() if self.options.synthesize_each_window else _TaskCensus()
        layout = SampleLayout.from_attr(self._events[0][0].attr)
        event = EventInfo(0, "", self._events[0][0].attr, layout)
        walk = RecordWalk(EventTable([event], {}, side_layout=layout), census)
        for block in _data_blocks(self.output, writer.data_offset, writer.data_size):
            walk.feed(block)
        walk.close()
        samples, lost, switches = walk.stats.samples, census.lost_samples, census.switch_ins
        self._lost_reported += lost
        if final:
            unreported = self._unreported_drops()
            if unreported:
                # As perf record does: a LOST_SAMPLES record, so that every reader of the file counts them too.
                from hwprof.collectors import procfs

                writer.write(procfs.lost_samples_record(unreported, self._trailer()(-1, -1)))
                writer.flush()
                lost += unreported
        mapped, pids = census.mapped, census.pids
        entries = [feat.BuildIdEntry(-1, bid, path, abi.CpuMode.USER) for _, path, bid in buildids.collect(mapped)]
        if self._kernel_build_id is None:
            self._kernel_build_id = buildids.kernel_build_id() or b""
        kernel_bid = self._kernel_build_id
        if kernel_bid:
            entries.append(feat.BuildIdEntry(-1, kernel_bid, "[kernel.kallsyms]", abi.CpuMode.KERNEL))
        if not self._file_synthesized:
            pids |= self._running_pids()  # processes older than this file write JIT maps too; it has no record of them
        self._copy_perf_maps(pids, mapped)
        uname = platform.uname()
        writer.add_feature(Feature.BUILD_ID, feat.pack_build_ids(entries))
        writer.add_feature(Feature.HOSTNAME, feat.pack_string(socket.gethostname()))
        writer.add_feature(Feature.OSRELEASE, feat.pack_string(uname.release))
        from hwprof import __version__

        writer.add_feature(Feature.VERSION, feat.pack_string(f"hwprof {__version__}"))
        writer.add_feature(Feature.ARCH, feat.pack_string(uname.machine))
        writer.add_feature(Feature.NRCPUS, feat.pack_nrcpus(os.cpu_count() or 1, len(online_cpus())))
        writer.add_feature(Feature.CPUDESC, feat.pack_string(_cpu_description()))
        writer.add_feature(Feature.TOTAL_MEM, feat.pack_u64(_total_mem_kb()))
        writer.add_feature(Feature.CMDLINE, feat.pack_string_list(self.cmdline))
        tracepoints = [e.spec.name for g in self._events for e in g if e.spec.is_tracepoint]
        if tracepoints:
            from hwprof.collectors.tracefs import tracing_data

            tracing = tracing_data(tracepoints)
            if tracing is not None:
                writer.add_feature(Feature.TRACING_DATA, tracing)
        if self.options.clockid is not None:
            # The capture's span in the samples' clock: threads still blocked at the stop are blocked until then.
            writer.add_feature(Feature.SAMPLE_TIME, feat.pack_sample_time(start_ns, end_ns))
        writer.add_feature(Feature.EVENT_DESC, feat.pack_event_desc(
            [feat.EventDesc(fa.attr, fa.name, fa.ids) for fa in self._file_attrs()], writer.attr_size))
        writer.close()
        return samples, lost, switches

    def _copy_perf_maps(self, pids: set[int], mapped: list[tuple[int, str]] = ()) -> None:
        """JIT maps go next to the capture, the process and /tmp may be gone later: /tmp/perf-PID.map, and jitdumps
        (jit-PID.dump: /tmp, or wherever an MMAP record showed the JIT mapping one). A file last written before its
        process started belongs to an earlier process with the same pid (nothing removes /tmp/perf-PID.map), and
        would name this one's code wrongly: it is left behind."""
        in_tmp = _jit_files_in_tmp() if len(pids) > 16 else None  # one directory read instead of a stat per pid
        sources: dict[int, list[Path]] = {
            pid: [Path(f"/tmp/{name}") for name in (f"perf-{pid}.map", f"jit-{pid}.dump")
                  if in_tmp is None or name in in_tmp]
            for pid in pids if pid > 0}
        for pid, filename in mapped:
            name = os.path.basename(filename)
            if pid > 0 and name == f"jit-{pid}.dump" and os.path.dirname(filename) != "/tmp":
                sources.setdefault(pid, []).append(Path(filename))
        for pid in sorted(sources):
            for source in sources[pid]:
                try:
                    stat = source.stat()
                except OSError:
                    continue  # none, or already removed by its exiting process (an earlier snapshot may have it)
                if self._map_seen.get(str(source)) == (stat.st_mtime_ns, stat.st_size):
                    continue
                started = self._started_at(pid)
                if started is not None and stat.st_mtime < started - 0.001:
                    continue
                dest_dir = Path(jit_dir(self.output))
                with contextlib.suppress(OSError):
                    dest_dir.mkdir(exist_ok=True)
                    shutil.copyfile(source, dest_dir / source.name)
                    self._map_seen[str(source)] = (stat.st_mtime_ns, stat.st_size)

    def _running_pids(self) -> set[int]:
        if self._whole_machine:
            return set(all_pids())
        return set(self.target.pids) | ({self._child.pid} if self._child is not None else set())

    def _started_at(self, pid: int) -> float | None:
        """A target's start (remembered while it lives; the launched command cannot predate the capture)."""
        if pid not in self._process_start:
            started = process_start_wall(pid)
            if started is None and self._child is not None and pid == self._child.pid:
                started = self._start_wall
            if started is None:
                return None
            self._process_start[pid] = started
        return self._process_start[pid]

    def _snapshot_perf_maps(self) -> None:
        """While the capture runs, keep copies of the targets' JIT maps: a JIT may delete its map when it exits.
        One stat(2) per target process per wake-up; system-wide captures only copy at the end."""
        pids = set(self.target.pids)
        if self._child is not None:
            pids.add(self._child.pid)
        self._copy_perf_maps(pids)


def _jit_files_in_tmp() -> set[str]:
    try:
        return {name for name in os.listdir("/tmp") if name.startswith(("perf-", "jit-"))}
    except OSError:
        return set()


def jit_dir(perf_data_path: str | os.PathLike) -> str:
    """Where a capture's copies of JIT maps (/tmp/perf-PID.map, jit-PID.dump) live: `<file>.jit/` beside it."""
    return f"{os.fspath(perf_data_path)}.jit"


def _remove_capture(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    shutil.rmtree(jit_dir(path), ignore_errors=True)


class _Census(RecordHandler):
    """What finalising a capture needs from its records: the files mapped (for build-ids), the processes (for
    JIT maps), the losses and the switch-ins; samples are counted by the walk itself."""

    def __init__(self) -> None:
        self.lost_samples = 0
        self.switch_ins = 0
        self.mapped: list[tuple[int, str]] = []
        self.pids: set[int] = set()

    def mmap(self, rec: Mmap, when: int) -> None:
        self.mapped.append((rec.pid, rec.filename))
        self.pids.add(rec.pid)

    def lost(self, rec: Lost, when: int) -> None:
        self.lost_samples += rec.lost

    def switch(self, rec: Switch, when: int) -> None:
        self.switch_ins += not rec.out


class _TaskCensus(_Census):
    """The census of a window for a decoder that follows the windows: new processes (for JIT maps) instead of
    every mapping record (no build-ids gathered)."""

    mmap = RecordHandler.mmap  # not parsed

    def fork(self, rec: TaskEvent, when: int) -> None:
        self.pids.add(rec.pid)


def _data_blocks(path: str, offset: int, size: int, block: int = 16 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(offset)
        left = size
        while left > 0:
            data = f.read(min(block, left))
            if not data:
                return
            left -= len(data)
            yield data


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def _cpu_description() -> str:
    from hwprof.system.cpus import first_cpu

    return first_cpu().get("model name") or platform.processor() or platform.machine()


def _total_mem_kb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
