"""`hwprof agent`: sample the machine all the time, cut the samples into windows, ship them to the fleet store.

How (and why this way):
- One `SamplingSession` (the same collector as `hwprof record -a`) runs for the whole time in the main thread
  (its stop signals must be handled there) and, every window, finishes its perf.data file and starts the next
  while the events stay enabled. Each finished file goes to a
  worker process (a thread would share the interpreter lock and delay the next window's start) that decodes and
  symbolizes it with one long-lived Symbolizer (its per-binary caches carry over from window to window),
  aggregates it into store rows and sends them; meanwhile the next window is already sampling. Processes come
  and go freely: the first window starts with what runs (synthesized from /proc), and the kernel reports the
  rest (mmap, exec, fork, exit); the worker carries the address spaces, thread names and programs from window
  to window, so later windows need no /proc snapshot of every process (the machine's thousands of mappings
  were most of the agent's CPU when every window had one). A window that lost records, that the worker
  skipped or could not decode starts the next one with a snapshot again. A window that cannot be decoded is
  counted and reported, and the agent goes on.
- Each window stores its measured start and duration; samples taken while a window's file is being finished wait
  in the ring buffers and go into the next window (lost records, if a ring overflows, are counted per window).
- Decoded windows wait in the worker until they cover --send-interval (default 60 s), then go to the store together:
  one insert per table for all of them, since each insert costs the server a part to write and merge and the
  agent a round trip per table, however few rows it holds (windows keep their own 10 s rows in the store). While
  they wait they are also in the spool (written as decoded), so a killed worker loses none of them.
- When the store cannot be reached, windows go to a size-capped spool on local disk (one file per window) and are
  sent, oldest first and SPOOL_SEND_WINDOWS per insert, as soon as a send succeeds again; sends are idempotent per
  window, so a window that was stored just before a crash (alone or within a batch) and sent again after the
  restart is kept once.
- SIGTERM/SIGINT/SIGHUP end the current window early; it and the windows waiting for the send interval are sent
  (or spooled) before the agent exits, and so are they when the sampler process dies. A kill of the worker process
  itself leaves them in the spool for the next start; only the window being decoded is lost.
- The agent's own CPU time (both processes) and resident memory are measured per window and stored with it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwprof.collectors.joined import JoinedProcesses

from hwprof.errors import HwprofError
from hwprof.fleet.window import ProcessLabels, WindowBatch, stable_id, window_from_profile
from hwprof.pipeline.scope import CommScope
from hwprof.pipeline.spaces import AddressSpaces, Space
from hwprof.pipeline.stacks import Symbolizer
from hwprof.system.memory import release_free_memory

DEFAULT_FREQUENCY = 19
DEFAULT_WINDOW_S = 10.0
DEFAULT_SEND_INTERVAL_S = 60.0  # windows sent together: one insert per table per minute (BENCHMARKS.md, "Fleet store")
SPOOL_SEND_WINDOWS = 60         # spooled windows sent per insert when the store is back (ten minutes of windows)
DEFAULT_SPOOL_BYTES = 256 << 20
DEFAULT_MAX_RSS = 150 << 20     # the worker drops its symbolizer caches above this (they map back from disk)
RESET_MIN_GAIN = 32 << 20       # ... once they have grown by this much since the last drop
LABEL_CACHE_SIZE = 4096
MAX_PENDING_WINDOWS = 30
WORKER_NICE = 10
RETENTION_CHECK_S = 3600


@dataclass(frozen=True)
class AgentOptions:
    store_url: str
    frequency: int = DEFAULT_FREQUENCY
    callgraph: str | None = "fp"            # None (no stacks), "fp" or "dwarf"
    stack_dump: int = 0                     # dwarf: bytes of user stack per sample
    events: str | None = None
    window_s: float = DEFAULT_WINDOW_S
    send_interval_s: float = DEFAULT_SEND_INTERVAL_S   # decoded windows wait this long, then go in one insert
    duration_s: float | None = None
    pids: tuple[int, ...] = ()
    comms: tuple[str, ...] = ()
    cgroup: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    spool_dir: str = ""
    spool_max_bytes: int = DEFAULT_SPOOL_BYTES
    host: str = ""
    max_stack: int | None = None
    max_rss_bytes: int = DEFAULT_MAX_RSS
    retention_days: int | None = None       # drop the store's day partitions older than this (hourly)


@dataclass
class AgentStats:
    windows: int = 0
    samples: int = 0
    lost: int = 0
    filtered: int = 0
    sent: int = 0
    already_stored: int = 0
    spooled: int = 0
    backlog_sent: int = 0
    dropped_windows: int = 0
    dropped_samples: int = 0
    failed_windows: int = 0
    skipped_windows: int = 0         # finished windows the worker was too far behind to take
    skipped_samples: int = 0
    cache_resets: int = 0            # times the worker dropped its symbolizer caches to stay under --max-rss-mb
    sampled_ns: int = 0
    wall_ns: int = 0
    cpu_ns: int = 0
    peak_rss_bytes: int = 0          # the larger of the two processes' peaks
    sampler_rss_bytes: int = 0
    stop_reason: str = ""

    def cpu_share(self) -> float:
        """The agent's CPU time as a share of one CPU over its run."""
        return self.cpu_ns / self.wall_ns if self.wall_ns else 0.0


PROT_EXEC = 4


def program_in(space: Space) -> str:
    """A process's program from its code mappings: the lowest file mapping (the kernel maps a program at 0x400000
    or a PIE's 0x55..., below its interpreter and libraries at 0x7f...). Labels a process that exited before its
    window was labelled."""
    for mapping in space.maps:
        if mapping.filename.startswith("/") and not mapping.filename.startswith("//"):
            return mapping.filename
    return ""


class ProcLabeler:
    """executable, build-id and cgroup of a process from /proc, cached per (pid, start time) (bounded); for a
    process already gone, the program `gone(pid)` names (what its window saw it map)."""

    def __init__(self, gone: Callable[[int], str] | None = None) -> None:
        self._cache: dict[tuple[int, str], ProcessLabels] = {}
        self._file_ids: dict[str, str] = {}
        self.gone = gone

    def __call__(self, pid: int, comm: str) -> ProcessLabels:
        start = _start_time(pid)
        if not start:
            exe = self.gone(pid) if self.gone is not None else ""
            return ProcessLabels(executable=exe, build_id=self._file_id(exe) if exe else "")
        key = (pid, start)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        from hwprof.collectors.buildids import file_build_id

        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = ""
        exe = exe.removesuffix(" (deleted)")
        build_id = file_build_id(f"/proc/{pid}/exe") if exe else None
        labels = ProcessLabels(executable=exe, build_id=build_id.hex() if build_id else "", cgroup=_cgroup(pid))
        if len(self._cache) >= LABEL_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = labels
        return labels

    def _file_id(self, path: str) -> str:
        found = self._file_ids.get(path)
        if found is None:
            from hwprof.collectors.buildids import file_build_id

            if len(self._file_ids) >= LABEL_CACHE_SIZE:
                self._file_ids.clear()
            build_id = file_build_id(path)
            found = self._file_ids[path] = build_id.hex() if build_id else ""
        return found


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: tells a reused pid from the process that had it before."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data[data.rfind(b")") + 2:].split()[19].decode()


def _cgroup(pid: int) -> str:
    """The process's cgroup v2 path (or the first v1 hierarchy's): the container or service unit it runs in."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
    return lines[0].split(":", 2)[2] if lines and line.count(":") >= 2 else ""


class _Shipper:
    """Decodes, labels and sends windows; lives in the agent's worker process (see Agent.run)."""

    def __init__(self, options: AgentOptions, host: str, notify: Callable[[str], None],
                 make_symbolizer: Callable[[], Symbolizer] | None,
                 request_resync: Callable[[], None] = lambda: None) -> None:
        """`request_resync`: asks the sampler to start its next window with a snapshot of every process."""
        from hwprof.fleet.spool import Spool

        self.options = options
        self.host = host
        self.notify = notify
        self.stats = AgentStats()
        self.spool = Spool(options.spool_dir or os.path.join(tempfile.gettempdir(), "hwprof-agent-spool"),
                           options.spool_max_bytes)
        self._store = None
        self._store_down_since: float | None = None
        self._pending: list[WindowBatch] = []         # decoded windows waiting for the send interval
        self._labeler = ProcLabeler(self._program_of)
        self._make_symbolizer = make_symbolizer
        self._symbolizer: Symbolizer | None = None
        self._request_resync = request_resync
        self._spaces: AddressSpaces | None = None     # carried from window to window
        self._rss_after_reset = 0
        self._cpu_mark = _cpu_ns()
        self._retention_checked = 0.0

    # --- the store ------------------------------------------------------------------------------------------
    def _connect(self):
        from hwprof.fleet.clickhouse import ClickHouseStore

        if self._store is None:
            self._store = ClickHouseStore.open(self.options.store_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
        self._store = None

    def _note_down(self, message: str) -> None:
        if self._store_down_since is None:
            self._store_down_since = time.monotonic()
            self.notify(f"{message}; spooling windows to {self.spool.directory} until it is back")
        self.close()

    def _send(self, batches: list[WindowBatch], first_attempt: bool = False) -> list[WindowBatch]:
        """Send windows in one insert per table; returns the ones left unsent because the store is away (the
        caller spools them): all of them, or, after a refused batch was retried window by window, the rest."""
        from hwprof.fleet.clickhouse import StoreUnavailable

        try:
            new = self._connect().insert_windows(batches, first_attempt=first_attempt)
        except StoreUnavailable as exc:
            self._note_down(str(exc))
            return list(batches)
        except Exception as exc:  # noqa: BLE001 -- the server (HwprofError) or the driver refused these rows
            self.close()
            if len(batches) > 1:
                # Not a network failure: one window's rows may be the cause, and must not keep the others out.
                # Each goes alone, checked (part of the batch may be stored); if the store goes away meanwhile,
                # the ones not sent yet are left to the spool.
                for i, batch in enumerate(batches):
                    if self._send([batch]):
                        return batches[i:]
                return []
            # Retrying the same rows would fail again and block the windows behind it: counted, reported, left out.
            self.stats.failed_windows += 1
            self.notify(f"the store refused window {batches[0].window_id:016x} ({batches[0].samples:,} samples): "
                        f"{exc}")
            return []
        if self._store_down_since is not None:
            self.notify(f"store is back after {time.monotonic() - self._store_down_since:.0f} s")
            self._store_down_since = None
        self._enforce_retention()
        self.stats.sent += sum(new)
        self.stats.already_stored += len(new) - sum(new)
        return []

    def _enforce_retention(self) -> None:
        """Once an hour: drop day partitions older than --retention-days (the TTL of servers that lack one).
        Several agents may do it at once; a partition another agent dropped first is not an error."""
        if not self.options.retention_days or time.monotonic() - self._retention_checked < RETENTION_CHECK_S \
                and self._retention_checked:
            return
        self._retention_checked = time.monotonic()
        try:
            dropped = self._connect().enforce_retention(self.options.retention_days)
        except HwprofError as exc:
            self.notify(f"retention: {exc}")
            return
        if dropped:
            self.notify(f"retention ({self.options.retention_days} days): dropped {', '.join(dropped)}")

    def drain_spool(self, leave: frozenset[str] = frozenset()) -> None:
        """Send the spooled windows, oldest first, SPOOL_SEND_WINDOWS per insert (checked: a spooled window may have
        been stored before a crash); stops at the first failure, the store being away again. `leave`: file names
        not to send (the journal of windows waiting for the send interval)."""
        files = [path for path in self.spool.files() if path.name not in leave]
        for lo in range(0, len(files), SPOOL_SEND_WINDOWS):
            loaded = []
            for path in files[lo:lo + SPOOL_SEND_WINDOWS]:
                batch = self.spool.load(path)
                if batch is None:
                    self.notify(f"spool: {path.name} is unreadable; removed it")
                    self.spool.remove(path)
                    self.spool.stats.dropped_windows += 1
                    continue
                loaded.append((path, batch))
            unsent = {id(batch) for batch in self._send([batch for _, batch in loaded])} if loaded else set()
            for path, batch in loaded:
                if id(batch) not in unsent:
                    self.spool.remove(path)
                    self.stats.backlog_sent += 1
            if unsent:
                break
        self._count_spool_drops()

    def _ship(self, batch: WindowBatch) -> None:
        """Keep a decoded window until the pending ones cover the send interval, then send them together (half a
        window of slack: measured window lengths vary around --window). Each window is written to the spool as it
        is decoded (a journal, ~5 ms): a worker killed before the interval is up (the OOM killer, kill -9) loses
        none of them, the next start sends them, checked, as any backlog."""
        for message in self.spool.put(batch):
            self.notify(message)
        self._pending.append(batch)
        covered_s = sum(b.duration_ns for b in self._pending) / 1e9
        if covered_s >= self.options.send_interval_s - self.options.window_s / 2:
            self.flush()

    def flush(self) -> None:
        """Send every pending window now (the send interval is up, or the agent stops): after the spool's backlog,
        in one batch of fresh windows; they stay in the spool when the store is away."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        journal = frozenset(self.spool.path_of(batch).name for batch in pending)
        if any(path.name not in journal for path in self.spool.files()):
            self.drain_spool(leave=journal)
        backlog_left = any(path.name not in journal for path in self.spool.files())
        unsent = {id(batch) for batch in (pending if backlog_left else self._send(pending, first_attempt=True))}
        for batch in pending:
            if id(batch) in unsent:
                self.stats.spooled += 1  # its journal entry is now the spool's: sent when the store is back
            else:
                self.spool.remove(self.spool.path_of(batch))
        self._count_spool_drops()

    def finish(self) -> None:
        """The worker ends: what waits for the send interval goes now, then the connection closes."""
        try:
            self.flush()
        finally:
            self.close()

    def _count_spool_drops(self) -> None:
        self.stats.dropped_windows = self.spool.stats.dropped_windows
        self.stats.dropped_samples = self.spool.stats.dropped_samples

    # --- windows --------------------------------------------------------------------------------------------
    def _program_of(self, pid: int) -> str:
        return program_in(self._spaces.latest(pid)) if self._spaces is not None else ""

    def process_window(self, path: str, start_ns: int, duration_ns: int, index: int, target: str,
                       sampler_cpu_ns: int, synthesized: bool = True) -> None:
        """Decode, label and ship one window. `synthesized`: its file starts with a snapshot of every process
        (the first window, or one after lost records); otherwise it continues the address spaces carried over."""
        from hwprof import __version__
        from hwprof.pipeline import decode_file

        if synthesized or self._spaces is None:
            if not synthesized:
                self._request_resync()  # decoding goes on with what this window shows; the next one has it all
            self._spaces = AddressSpaces()
        try:
            if self._symbolizer is None and self._make_symbolizer is not None:
                self._symbolizer = self._make_symbolizer()
            # --cgroup is the kernel's (the sampler's events and their side-band cover only the cgroup's tasks; a
            # process moved in while it ran is filled in from /proc); --comm drops the other processes' samples as
            # they are decoded, before their stacks are resolved or symbolized.
            scope = CommScope(self.options.comms) if self.options.comms else None
            stages = [stage for stage in (scope, JoinedProcesses() if self.options.cgroup is not None else None)
                      if stage is not None]
            profile = decode_file(path, self._symbolizer, spaces=self._spaces, stages=stages)
            batch = window_from_profile(
                profile, host=self.host, start_ns=start_ns, duration_ns=duration_ns, labels=self.options.labels,
                labeler=self._labeler, hwprof_version=__version__,
                window_id=stable_id("window", self.host, start_ns, index, *sorted(self.options.labels.items())))
            batch.filtered = scope.filtered if scope else 0
        except Exception as exc:  # noqa: BLE001 -- one bad window must not stop a continuous profiler
            self.stats.failed_windows += 1
            self.notify(f"window {index} could not be decoded ({type(exc).__name__}: {exc}); skipped it")
            self._spaces = None  # its mappings are unknown: the next window starts from a snapshot
            self._request_resync()
            return
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
            import shutil

            shutil.rmtree(f"{path}.jit", ignore_errors=True)
        self._spaces.carry_over()  # after labelling: the processes that exited are forgotten
        batch.target = target
        now_cpu = _cpu_ns()
        batch.agent_cpu_ns = now_cpu - self._cpu_mark + sampler_cpu_ns   # both processes of the agent
        self._cpu_mark = now_cpu
        release_free_memory()  # the window's decoding garbage goes back to the system, not only to malloc
        batch.agent_rss_bytes = _rss_bytes()
        if batch.agent_rss_bytes > self.options.max_rss_bytes and \
                batch.agent_rss_bytes > self._rss_after_reset + RESET_MIN_GAIN:
            # Bounded memory: the symbolizer's indexes are the bulk; drop them (their on-disk caches under
            # ~/.cache/hwprof/symbolize are mapped back in cheaply for the binaries still in use). Not again
            # before they have grown back by RESET_MIN_GAIN: a floor above the cap (thousands of processes'
            # mappings) would otherwise cost a reload every window.
            import gc

            self._symbolizer = None
            self._labeler = ProcLabeler(self._program_of)
            gc.collect()
            release_free_memory()
            self._rss_after_reset = _rss_bytes()
            self.stats.cache_resets += 1
        self.stats.windows += 1
        self.stats.samples += batch.samples
        self.stats.lost += batch.lost
        self.stats.filtered += batch.filtered
        self._ship(batch)


def _worker_main(options: AgentOptions, host: str, work, results, notify: Callable[[str], None],
                 make_symbolizer: Callable[[], Symbolizer] | None, resync=None) -> None:
    """The worker process: windows in from `work`, stats out to `results` when the sampler says it is done;
    `resync` (an Event) asks the sampler for a window that starts with a snapshot of every process."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # the sampler process decides when to stop, then flushes through us
    with contextlib.suppress(OSError):
        # Decoding can wait, the host's own work cannot: on a saturated machine the worker runs when a CPU is free
        # (windows wait in the queue; past MAX_PENDING_WINDOWS they are skipped and counted). The sampler keeps
        # its priority: its rings must be read in time.
        os.nice(WORKER_NICE)
    parent = os.getppid()
    shipper = _Shipper(options, host, notify, make_symbolizer, resync.set if resync is not None else lambda: None)
    try:
        shipper.drain_spool()  # backlog of an earlier run (or of a crash) first
        while True:
            try:
                item = work.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return  # the sampler died (SIGKILL): its spool stays for the next start
                continue
            if item is None:
                break
            try:
                shipper.process_window(*item)
            except Exception as exc:  # noqa: BLE001 -- the worker must outlive any one window
                shipper.stats.failed_windows += 1
                notify(f"window {item[3]} failed ({type(exc).__name__}: {exc}); the agent goes on")
    finally:
        shipper.finish()  # the windows waiting for the send interval: sent (or spooled) before the stats go out
        stats = shipper.stats
        stats.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        results.put(stats)


class Agent:
    """Samples in this process; decodes and ships in a worker process, so decoding never delays the sampler's
    window changes (the two would share one interpreter lock in threads)."""

    def __init__(self, options: AgentOptions, notify: Callable[[str], None] | None = None,
                 make_symbolizer: Callable[[], Symbolizer] | None = None) -> None:
        """`make_symbolizer` builds the worker's long-lived symbolizer (the CLI passes hwprof.symbolize's; collectors
        never import it: dependencies point one way). None ships unsymbolized module+offset frames."""
        self.options = options
        self.make_symbolizer = make_symbolizer
        self.notify = notify or (lambda _m: None)
        self.host = options.host or socket.gethostname()
        self.stats = AgentStats()
        self._stop_requested: str | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="hwprof-agent-"))

    def check_store(self) -> None:
        """Before sampling starts: a wrong URL, wrong credentials or a newer schema stop the agent at once; an
        unreachable server does not (the agent spools until it is back). The spool directory must be usable."""
        from hwprof.fleet.clickhouse import ClickHouseStore, StoreUnavailable
        from hwprof.fleet.spool import Spool

        Spool(self.options.spool_dir or os.path.join(tempfile.gettempdir(), "hwprof-agent-spool"),
              self.options.spool_max_bytes)
        try:
            ClickHouseStore.open(self.options.store_url).close()
        except StoreUnavailable as exc:
            self.notify(f"{exc}; windows are spooled until it is reachable")

    def run(self) -> AgentStats:
        import multiprocessing

        from hwprof.collectors.sampling import CaptureResult, SamplingOptions, SamplingSession, Target

        opts = self.options
        if opts.cgroup is not None and opts.pids:
            raise HwprofError("--cgroup samples the CPUs for that cgroup's tasks: give it without -p")
        target = Target(pids=opts.pids, system_wide=not opts.pids, cgroup=opts.cgroup)
        context = multiprocessing.get_context("fork")
        work = context.Queue()  # file names only: a slow worker never delays the sampler's window cuts
        results = context.Queue()
        resync = context.Event()
        worker = context.Process(target=_worker_main,
                                 args=(opts, self.host, work, results, self.notify, self.make_symbolizer, resync),
                                 name="hwprof-agent-ship", daemon=True)
        worker.start()
        started = time.monotonic()
        cpu_mark = _cpu_ns()
        index = 0

        def hand_over(result: CaptureResult) -> str:
            """A window is finished: the worker takes its file; sampling goes on into the next one."""
            nonlocal cpu_mark, index
            self.stats.sampled_ns += result.duration_ns
            now_cpu = _cpu_ns()
            if work.qsize() >= MAX_PENDING_WINDOWS:
                # The worker is far behind (a machine too busy to decode): bounded disk and memory win, counted.
                self.stats.skipped_windows += 1
                self.stats.skipped_samples += result.samples
                self.notify(f"window {index} skipped: {MAX_PENDING_WINDOWS} windows still wait to be decoded "
                            f"({result.samples:,} samples)")
                with contextlib.suppress(OSError):
                    os.unlink(result.path)
                session.request_synthesis()  # the worker never sees this window's records of what changed
            else:
                work.put((result.path, result.start_time_ns, result.duration_ns, index, result.target,
                          now_cpu - cpu_mark, result.synthesized))
            if resync.is_set():
                resync.clear()
                session.request_synthesis()
            cpu_mark = now_cpu
            index += 1
            return str(self._workdir / f"window-{index}.perf.data")

        # One session for the whole run: the events stay open and enabled from window to window, so nothing
        # falls between two windows (the rings hold what arrives while a window's file is finished).
        options = SamplingOptions(events=opts.events, frequency=opts.frequency, callgraph=opts.callgraph is not None,
                                  stack_dump=opts.stack_dump, max_stack=opts.max_stack, duration=opts.duration_s,
                                  window=opts.window_s, synthesize_each_window=False,
                                  every_task_sideband=False)
        session = SamplingSession(target, options, self._workdir / "window-0.perf.data", cmdline=["hwprof", "agent"],
                                  notify=lambda m: None if m.startswith("stopping on ") else self.notify(m),
                                  on_window=hand_over)
        shipped = None
        try:
            last = session.run()
            for notice in last.notices:
                if notice.startswith("stopping on "):
                    self._stop_requested = notice.removeprefix("stopping on ")
            if opts.pids and not any(os.path.exists(f"/proc/{p}") for p in opts.pids):
                self.stats.stop_reason = "the processes exited"
            hand_over(last)
        finally:
            # SIGTERM flushes: the worker finishes the windows it holds, sends or spools them, then reports.
            work.put(None)
            while shipped is None and worker.is_alive():
                with contextlib.suppress(queue.Empty):
                    shipped = results.get(timeout=1.0)
            if shipped is None:
                with contextlib.suppress(queue.Empty):
                    shipped = results.get(timeout=1.0)
            worker.join(timeout=10)
            import shutil

            shutil.rmtree(self._workdir, ignore_errors=True)
        if shipped is not None:
            for name in ("windows", "samples", "lost", "filtered", "sent", "already_stored", "spooled",
                         "backlog_sent", "dropped_windows", "dropped_samples", "failed_windows", "cache_resets"):
                setattr(self.stats, name, getattr(shipped, name))
        if self._stop_requested:
            self.stats.stop_reason = f"stopped on {self._stop_requested}"
        elif not self.stats.stop_reason:
            self.stats.stop_reason = "duration reached"
        self.stats.wall_ns = int((time.monotonic() - started) * 1e9)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.stats.cpu_ns = _cpu_ns() + int((children.ru_utime + children.ru_stime) * 1e9)
        own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.stats.peak_rss_bytes = max(own_peak, shipped.peak_rss_bytes if shipped else 0)
        self.stats.sampler_rss_bytes = own_peak
        return self.stats


def _cpu_ns() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
