"""Cgroups as perf's -G/--cgroup names them: a path relative to the hierarchy that holds the perf_event controller.

perf (tools/perf/util/cgroup.c) looks for that hierarchy in /proc/mounts: a cgroup v1 mount whose options name
perf_event, else the cgroup2 mount (on v2 the perf_event controller is always there). `-G NAME` is then the
directory MOUNT/NAME; its file descriptor, passed to perf_event_open(2) as the pid with PERF_FLAG_PID_CGROUP on a
CPU, makes an event count (and sample) only while a task of that cgroup or of one of its descendants runs on the
CPU (the kernel's perf_cgroup_match uses cgroup_is_descendant). The path a process's /proc/PID/cgroup shows for
that hierarchy ("0::/system.slice/nginx.service" on v2) is the same relative path, so what `hwprof agent` labels a
process with is what -G takes.

A full path under the mount (/sys/fs/cgroup/system.slice/...) is accepted too; anything that leaves the hierarchy
(.., a symlink out of it) is refused, as the kernel would refuse a directory that is not a cgroup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hwprof.errors import HwprofError

PERF_CONTROLLER = "perf_event"


@dataclass(frozen=True)
class CgroupMount:
    path: str          # where the hierarchy is mounted
    version: int       # 1 (a v1 hierarchy with perf_event) or 2 (the unified hierarchy)


def parse_mounts(text: str) -> CgroupMount | None:
    """The hierarchy perf's -G paths are relative to, from /proc/mounts text: a v1 mount with the perf_event
    controller wins (on a hybrid machine perf_event is there if it is bound anywhere in v1), else cgroup2."""
    unified = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mount_point, fstype, options = _unescape(fields[1]), fields[2], fields[3].split(",")
        if fstype == "cgroup" and PERF_CONTROLLER in options:
            return CgroupMount(mount_point, 1)
        if fstype == "cgroup2" and unified is None:
            unified = CgroupMount(mount_point, 2)
    return unified


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in octal (\\040)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def perf_cgroup_mount(mounts_file: str = "/proc/mounts") -> CgroupMount:
    try:
        with open(mounts_file) as f:
            text = f.read()
    except OSError as exc:
        raise HwprofError(f"cannot read {mounts_file} to find the cgroup hierarchy: {exc.strerror}") from None
    mount = parse_mounts(text)
    if mount is None:
        raise HwprofError("no cgroup hierarchy with the perf_event controller is mounted (neither a cgroup v1 "
                          "perf_event mount nor cgroup2): -G/--cgroup cannot be used here")
    return mount


def cgroup_directory(name: str, mount: CgroupMount) -> str:
    """The directory of cgroup `name` (relative to the mount, as perf takes it, or a full path under it)."""
    if not name or "\0" in name:
        raise HwprofError(f"invalid cgroup name {name!r}", exit_code=2)
    if "," in name:
        raise HwprofError(f"one cgroup per run: -G {name!r} is perf's list of a cgroup per event, which hwprof "
                          "does not take (its events all count in the one cgroup given)", exit_code=2)
    root = os.path.realpath(mount.path)
    if os.path.isabs(name) and _is_under(os.path.normpath(name), os.path.normpath(mount.path)):
        candidate = name  # a full path under the mount
    else:
        candidate = os.path.join(mount.path, name.lstrip("/"))
    resolved = os.path.realpath(candidate)
    if not _is_under(resolved, root):
        raise HwprofError(f"cgroup {name!r} is outside the cgroup hierarchy at {mount.path}", exit_code=2)
    return resolved


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def open_cgroup(name: str, mount: CgroupMount | None = None) -> int:
    """A read-only directory fd of cgroup `name` for perf_event_open's pid argument (the caller closes it).
    An unknown name is one clear line, as perf's "no access to cgroup PATH"."""
    mount = mount or perf_cgroup_mount()
    directory = cgroup_directory(name, mount)
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HwprofError(f"no such cgroup: {name} ({directory} does not exist; -G paths are relative to "
                          f"{mount.path})") from None
    except NotADirectoryError:
        raise HwprofError(f"not a cgroup: {name} ({directory} is not a directory)") from None
    except OSError as exc:
        raise HwprofError(f"no access to cgroup {name} ({directory}): {exc.strerror}") from None


def display_name(name: str, mount: CgroupMount | None = None) -> str:
    """How a cgroup is shown: relative to its hierarchy with a leading '/', as /proc/PID/cgroup shows it."""
    try:
        mount = mount or perf_cgroup_mount()
        directory = cgroup_directory(name, mount)
    except HwprofError:
        return name
    relative = os.path.relpath(directory, os.path.realpath(mount.path))
    return "/" if relative == "." else "/" + relative


def cgroup_pids(name: str, mount: CgroupMount | None = None) -> list[int]:
    """The processes of cgroup `name` and of every cgroup below it (the tasks a -G event sees), as they are now."""
    directory = cgroup_directory(name, mount or perf_cgroup_mount())
    pids: set[int] = set()
    for folder, _dirs, files in os.walk(directory):
        if "cgroup.procs" not in files:
            continue
        try:
            with open(os.path.join(folder, "cgroup.procs")) as f:
                pids.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue  # removed while we walked
    return sorted(pids)
