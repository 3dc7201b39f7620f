"""tracefs dynamic events (uprobe_events / kprobe_events) that never outlive the hwprof process that made them.

Why a group per process: entries written to tracefs stay in the kernel after their creator dies. Naming the group
``hwprof_<pid>`` lets every hwprof tell its own entries apart, remove them on exit/SIGINT/SIGTERM, and remove a
SIGKILLed hwprof's leftovers at its next start (the pid in the name is dead, or belongs to some other program).

Also here: the tracepoint ``format`` file, which says where each field of a RAW sample payload sits.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwprof.errors import HwprofError
from hwprof.perf.tracepoint_format import FormatField, TraceFormat, decode_field, parse_format  # noqa: F401
from hwprof.units import Pid

GROUP_PREFIX = "hwprof_"
_DEFINITION = re.compile(r"^(?P<type>[pr])\d*:(?P<group>[^/\s]+)/(?P<event>\S+)\s")


def tracefs_root(required: str | None = None) -> Path:
    """The tracefs mount point (mounted by hwprof.events when root and nothing is mounted yet).

    `required` names a control file (e.g. "uprobe_events") that must exist there.
    """
    from hwprof.events.tracefs import find_tracefs

    found = find_tracefs()
    if found is None:
        raise HwprofError("tracefs is not available: mount it with 'mount -t tracefs nodev /sys/kernel/tracing'")
    path = Path(found)
    if required and not (path / required).exists():
        raise HwprofError(f"this kernel has no {path / required} (built without the matching dynamic events)")
    return path


def group_name(pid: Pid | None = None) -> str:
    return f"{GROUP_PREFIX}{os.getpid() if pid is None else pid}"


def _pid_of_group(group: str) -> Pid | None:
    if not group.startswith(GROUP_PREFIX):
        return None
    tail = group[len(GROUP_PREFIX):]
    return int(tail) if tail.isdigit() else None


def _is_live_hwprof(pid: Pid) -> bool:
    """A group's owner is alive only if that pid runs hwprof: a recycled pid running something else is dead to us."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"hwprof" in cmdline


def list_definitions(control: Path) -> list[tuple[str, str, str]]:
    """(type, group, event) for every definition in a uprobe_events/kprobe_events file."""
    try:
        text = control.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        match = _DEFINITION.match(line + " ")
        if match:
            out.append((match["type"], match["group"], match["event"]))
    return out


def _write_control(control: Path, line: str) -> None:
    # O_APPEND: without it the write truncates the file, which deletes every probe on the system.
    fd = os.open(control, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _remove_definition(control: Path, group: str, event: str, patience_s: float = 2.0) -> bool:
    """Delete one definition. The kernel answers EBUSY while a perf event on it is still being released (the
    inherited copies in an exited command are freed a moment after their parent fd is closed), so retry briefly;
    whatever still fails is removed by the next hwprof (see remove_stale_groups)."""
    end = time.monotonic() + patience_s
    while True:
        try:
            _write_control(control, f"-:{group}/{event}")
            return True
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return True  # already gone
            if exc.errno != errno.EBUSY or time.monotonic() >= end:
                return False
        time.sleep(0.01)


def _last_error(root: Path) -> str:
    """The kernel's explanation of the last rejected definition (tracefs error_log), when it has one."""
    try:
        lines = (root / "error_log").read_text().strip().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return ""


def remove_stale_groups(root: Path | None = None) -> list[str]:
    """Delete the definitions of hwprof groups whose owner is gone; return the groups removed."""
    try:
        root = root or tracefs_root()
    except HwprofError:
        return []
    removed = []
    for control_name in ("uprobe_events", "kprobe_events"):
        control = root / control_name
        if not control.exists():
            continue
        for _, group, event in list_definitions(control):
            pid = _pid_of_group(group)
            if pid is None or pid == os.getpid() or _is_live_hwprof(pid):
                continue
            _disable_event(root, group, event)
            try:
                _write_control(control, f"-:{group}/{event}")
            except OSError:
                continue
            if group not in removed:
                removed.append(group)
    return removed


def _disable_event(root: Path, group: str, event: str) -> None:
    enable = root / "events" / group / event / "enable"
    try:
        if enable.read_text().strip() != "0":
            enable.write_text("0")
    except OSError:
        pass


def read_format(root: Path, group: str, event: str) -> TraceFormat:
    path = root / "events" / group / event / "format"
    try:
        return parse_format(path.read_text())
    except OSError as exc:
        raise HwprofError(f"cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class DynamicEvent:
    """One definition this process wrote, ready to open as a tracepoint (type 2, config = id)."""

    group: str
    event: str
    control: str          # "uprobe_events" or "kprobe_events"
    format: TraceFormat

    @property
    def id(self) -> int:
        return self.format.id


class DynamicEvents:
    """The tracefs definitions of this hwprof process; they are removed however the process ends, short of SIGKILL.

    Close the perf fds on these events before `remove_all()` (an open event cannot be deleted: EBUSY).
    """

    _instances: list[DynamicEvents] = []
    _handlers_installed = False
    _lock = threading.Lock()

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or tracefs_root()
        self.group = group_name()
        self.events: list[DynamicEvent] = []
        self._closers: list[Callable[[], None]] = []
        remove_stale_groups(self.root)
        with self._lock:
            DynamicEvents._instances.append(self)
            self._install_handlers()

    # --- creating --------------------------------------------------------------------------------------
    def add(self, definition_type: str, location: str, args: tuple[str, ...] = (), *, kernel: bool,
            label: str = "") -> DynamicEvent:
        """Write `p|r:hwprof_<pid>/probeN LOCATION ARGS` and read back its id and format."""
        control_name = "kprobe_events" if kernel else "uprobe_events"
        control = self.root / control_name
        if not control.exists():
            what = "kprobe" if kernel else "uprobe"
            raise HwprofError(f"this kernel has no {what} support ({control} is missing)")
        event = f"p{len(self.events)}_{os.getpid()}"
        line = " ".join((f"{definition_type}:{self.group}/{event}", location, *args))
        try:
            _write_control(control, line)
        except OSError as exc:
            detail = _last_error(self.root) or os.strerror(exc.errno or errno.EINVAL)
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise HwprofError(f"no permission to write {control}: tracefs probes need root") from None
            raise HwprofError(f"the kernel rejected probe {label or location}: {detail}") from None
        try:
            fmt = read_format(self.root, self.group, event)
        except HwprofError:
            _write_control(control, f"-:{self.group}/{event}")
            raise
        dyn = DynamicEvent(self.group, event, control_name, fmt)
        self.events.append(dyn)
        return dyn

    def on_close(self, closer: Callable[[], None]) -> None:
        """Something (the perf fds) that must be closed before the definitions can be deleted."""
        self._closers.append(closer)

    # --- removing --------------------------------------------------------------------------------------
    def remove_all(self) -> None:
        closers, self._closers = self._closers, []
        for closer in closers:
            try:
                closer()
            except OSError:
                pass
        events, self.events = self.events, []
        for dyn in reversed(events):
            _disable_event(self.root, dyn.group, dyn.event)
            _remove_definition(self.root / dyn.control, dyn.group, dyn.event)
        with self._lock:
            if self in DynamicEvents._instances:
                DynamicEvents._instances.remove(self)

    def __enter__(self) -> DynamicEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove_all()

    # --- however the process ends --------------------------------------------------------------------
    @classmethod
    def _remove_every_instance(cls) -> None:
        for instance in list(cls._instances):
            instance.remove_all()

    @classmethod
    def _install_handlers(cls) -> None:
        """atexit covers normal exit and SIGINT (KeyboardInterrupt unwinds); SIGTERM must become an exit too.

        Signal handlers can only be set from the main thread; elsewhere atexit alone has to do.
        """
        if cls._handlers_installed:
            return
        cls._handlers_installed = True
        atexit.register(cls._remove_every_instance)
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_DFL, None):
                signal.signal(signum, _exit_on_signal)


def _exit_on_signal(signum: int, frame: object) -> None:
    DynamicEvents._remove_every_instance()
    raise SystemExit(128 + signum)


def tracing_data(tracepoints: list[str], root: Path | None = None) -> bytes | None:
    """The TRACING_DATA feature for these `system:event` tracepoints (perf needs it to read the file), or None
    when tracefs cannot be read."""
    import mmap

    from hwprof.perfdata.features import TracingData, pack_tracing_data

    try:
        base = root or tracefs_root()
        systems: dict[str, list[bytes]] = {}
        for name in dict.fromkeys(tracepoints):
            system, event = name.split(":")[:2]
            systems.setdefault(system, []).append((base / "events" / system / event / "format").read_bytes())
        try:
            printk = (base / "printk_formats").read_bytes()
        except OSError:
            printk = b""
        data = TracingData((base / "events" / "header_page").read_bytes(),
                           (base / "events" / "header_event").read_bytes(), systems, printk, mmap.PAGESIZE)
    except (OSError, HwprofError, ValueError):
        return None
    return pack_tracing_data(data)
