"""Finding tracefs and the tracepoints in it: `events/<system>/<name>/id` is the config of a TRACEPOINT event."""

from __future__ import annotations

import ctypes
import fnmatch
import os

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


class TracefsError(OSError):
    pass


def _mount_tracefs(target: str) -> bool:
    """Mount tracefs the way the kernel documents it; only root can, and only where the directory exists."""
    if os.geteuid() != 0 or not os.path.isdir(target):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.mount(b"nodev", target.encode(), b"tracefs", 0, None) == 0


def find_tracefs(mount: bool = True) -> str | None:
    """The tracefs directory that has `events/`; mount it at /sys/kernel/tracing if needed and allowed."""
    for candidate in TRACEFS_CANDIDATES:
        if os.path.isdir(os.path.join(candidate, "events")):
            return candidate
    if mount and _mount_tracefs(TRACEFS_CANDIDATES[0]) and os.path.isdir(os.path.join(TRACEFS_CANDIDATES[0],
                                                                                      "events")):
        return TRACEFS_CANDIDATES[0]
    return None


def tracefs_status() -> tuple[str | None, str]:
    """(path or None, why not): used by `hwprof check` and for error messages."""
    for candidate in TRACEFS_CANDIDATES:
        if os.path.isdir(candidate) and os.path.ismount(candidate) or os.path.isdir(os.path.join(candidate,
                                                                                                 "events")):
            if os.access(os.path.join(candidate, "events"), os.R_OK | os.X_OK):
                return candidate, ""
            return None, (f"tracefs at {candidate} is not readable by this user "
                          "(run as root, or 'chmod -R go+rX' it / mount with gid= and mode=)")
    return None, "tracefs is not mounted (as root: mount -t tracefs nodev /sys/kernel/tracing)"


def require_tracefs() -> str:
    path = find_tracefs()
    if path is not None:
        if not os.access(os.path.join(path, "events"), os.R_OK | os.X_OK):
            raise TracefsError(f"tracepoints need read access to {path}/events: run as root")
        return path
    _, why = tracefs_status()
    raise TracefsError(f"tracepoints need tracefs: {why}")


def tracepoint_id(tracefs: str, system: str, name: str) -> int | None:
    try:
        with open(os.path.join(tracefs, "events", system, name, "id")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def list_systems(tracefs: str) -> list[str]:
    try:
        with os.scandir(os.path.join(tracefs, "events")) as entries:
            return sorted(e.name for e in entries if e.is_dir())
    except OSError:
        return []


def list_events(tracefs: str, system: str) -> list[str]:
    """The event directories of a system that have an `id` (its `enable`/`filter` files are not events, nor
    are ftrace's internal formats)."""
    try:
        with os.scandir(os.path.join(tracefs, "events", system)) as entries:
            return sorted(e.name for e in entries if e.is_dir() and os.path.isfile(e.path + "/id"))
    except OSError:
        return []


def all_tracepoints(tracefs: str) -> list[tuple[str, str]]:
    """Every `system:name` directory under events/ that has an `id`, sorted (what `hwprof list` shows).

    Checking ~2,300 `id` files one by one is most of a listing's time (each lookup makes the kernel build a tracefs
    entry). `available_events` names, in one read, every event that can be enabled, and each of those has an id (the
    kernel creates `id` for every registered event with a class). So only the directories it does not name (ftrace's
    own entries such as ftrace:function, and events added since the read) are checked one by one: the same set as
    checking every directory. Where it cannot be read (not root: it is mode 0440), every directory is checked."""
    try:
        with open(os.path.join(tracefs, "available_events")) as f:
            enabled = set(f.read().split())
    except OSError:
        return [(system, name) for system in list_systems(tracefs) for name in list_events(tracefs, system)]
    out: list[tuple[str, str]] = []
    events_dir = os.path.join(tracefs, "events")
    for system in list_systems(tracefs):
        try:
            with os.scandir(os.path.join(events_dir, system)) as entries:
                names = sorted(e.name for e in entries if e.is_dir())
        except OSError:
            continue
        out.extend((system, name) for name in names
                   if f"{system}:{name}" in enabled or os.path.isfile(os.path.join(events_dir, system, name, "id")))
    return out


def expand(tracefs: str, system: str, name: str) -> list[tuple[str, str]]:
    """Globs as perf allows them (`sched:sched_sw*`, `syscalls:sys_enter_*`); exact names as is."""
    is_glob = any(c in system + name for c in "*?[")
    if not is_glob:
        return [(system, name)]
    out = []
    # Directory order, not sorted: perf walks readdir() order, and the oracle test holds us to perf's order.
    for sys_name in _listdir(os.path.join(tracefs, "events")):
        if not fnmatch.fnmatchcase(sys_name, system):
            continue
        for event in _listdir(os.path.join(tracefs, "events", sys_name)):
            if fnmatch.fnmatchcase(event, name) and os.path.isfile(os.path.join(tracefs, "events", sys_name, event,
                                                                                "id")):
                out.append((sys_name, event))
    return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
