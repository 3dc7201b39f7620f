"""What /proc says about processes and threads: mappings, threads, names, start times. One reader per file.

Readers of live processes race with those processes: a file that vanished (the task exited) gives an empty answer
(`[]`, None), never an exception, except `read_maps`, whose callers need to say why there is nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from hwprof.errors import HwprofError
from hwprof.units import Address, FileOffset, Pid, Tid

DELETED_SUFFIX = " (deleted)"


# --- /proc/PID/maps ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps. `path` is without the kernel's ' (deleted)' suffix; `deleted` keeps it."""

    start: Address
    end: Address
    perms: str
    offset: FileOffset
    major: int
    minor: int
    inode: int
    path: str
    deleted: bool = False

    @property
    def executable(self) -> bool:
        return "x" in self.perms

    @property
    def shared(self) -> bool:
        return "s" in self.perms

    @property
    def is_file(self) -> bool:
        return self.path.startswith("/")

    @property
    def kernel_name(self) -> str:
        """The name as the kernel writes it (deleted files keep their suffix, as in perf's synthesized MMAP2)."""
        return self.path + DELETED_SUFFIX if self.deleted else self.path

    def file_offset(self, addr: Address) -> FileOffset:
        return addr - self.start + self.offset


def parse_maps_line(line: str) -> Mapping | None:
    """One /proc/PID/maps line, or None for anything that is not one."""
    parts = line.rstrip("\n").split(None, 5)
    if len(parts) < 5:
        return None
    try:
        start_s, end_s = parts[0].split("-")
        major_s, minor_s = parts[3].split(":")
        path = parts[5].strip() if len(parts) > 5 else ""
        deleted = path.endswith(DELETED_SUFFIX)
        if deleted:
            path = path[: -len(DELETED_SUFFIX)]
        return Mapping(int(start_s, 16), int(end_s, 16), parts[1], int(parts[2], 16), int(major_s, 16),
                       int(minor_s, 16), int(parts[4]), path, deleted)
    except ValueError:
        return None


def parse_maps(text: str, executable_only: bool = False) -> list[Mapping]:
    if executable_only:
        return [m for m in map(parse_maps_line, _executable_lines(text)) if m is not None and m.executable]
    return [m for m in map(parse_maps_line, text.splitlines()) if m is not None]


def read_maps(pid: Pid, executable_only: bool = False) -> list[Mapping]:
    """The mappings of a live process; HwprofError (one line) when there is no such process or no permission.

    `executable_only` skips the other lines before parsing them: a system-wide sampler reads every process's maps
    at every window start, and five lines in six are data."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as stream:
            text = stream.read()
    except (FileNotFoundError, ProcessLookupError):
        raise HwprofError(f"no process with pid {pid}") from None
    except PermissionError:
        raise HwprofError(f"cannot read /proc/{pid}/maps: permission denied") from None
    except OSError as exc:
        raise HwprofError(f"cannot read /proc/{pid}/maps: {exc.strerror}") from None
    return parse_maps(text, executable_only)


def _executable_lines(text: str) -> list[str]:
    """Lines whose permissions (the field after the address range, "r-xp") include x."""
    out = []
    for line in text.splitlines():
        space = line.find(" ")
        if space >= 0 and line[space + 3 : space + 4] == "x":
            out.append(line)
    return out


def find_mapping(maps: list[Mapping], addr: Address) -> Mapping | None:
    for mapping in maps:
        if mapping.start <= addr < mapping.end:
            return mapping
    return None


def mapped_files(maps: list[Mapping]) -> list[str]:
    """Files mapped executable, each once, in map order (the main program first)."""
    return list(dict.fromkeys(m.path for m in maps if m.executable and m.is_file))


# --- processes and threads --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThreadInfo:
    tid: Tid
    pid: Pid
    comm: str


def process_exists(pid: Pid) -> bool:
    return os.path.exists(f"/proc/{pid}")


def all_pids() -> list[Pid]:
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def thread_ids(pid: Pid) -> list[Tid]:
    """Threads of a process, sorted; [] when it is gone."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if t.isdigit())
    except OSError:
        return []


def read_comm(pid: Pid, tid: Tid | None = None) -> str | None:
    """A process's (or one of its threads') command name; None when it is gone."""
    path = f"/proc/{pid}/task/{tid}/comm" if tid is not None else f"/proc/{pid}/comm"
    try:
        with open(path, "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return None


def thread_info(tid: Tid) -> ThreadInfo:
    """The thread's process and name from /proc/TID/status (a tid is found there whichever process owns it)."""
    pid, comm = tid, "?"
    try:
        with open(f"/proc/{tid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Name:"):
                    parts = line.split(None, 1)
                    comm = parts[1].strip() if len(parts) > 1 else ""
                elif line.startswith("Tgid:"):
                    pid = int(line.split()[1])
                    break
    except (OSError, ValueError):
        pass
    return ThreadInfo(tid, pid, comm)


def owning_process(tid: Tid, candidates: tuple[Pid, ...]) -> Pid | None:
    """Which of `candidates` a thread belongs to (None: none of them)."""
    for pid in candidates:
        if os.path.exists(f"/proc/{pid}/task/{tid}"):
            return pid
    return None


def thread_start_ticks(pid: Pid, tid: Tid) -> int | None:
    """starttime (clock ticks after boot) of a thread, field 22 of /proc/PID/task/TID/stat."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            text = f.read()
        fields = text[text.rindex(")") + 2:].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def boot_ticks_now() -> int:
    """Now, in the unit of thread_start_ticks."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def process_start_wall(pid: Pid) -> float | None:
    """When a live process started, in time.time() seconds (from its starttime ticks and the boot clock, not
    /proc/stat's whole-second btime); None when it is gone."""
    ticks = thread_start_ticks(pid, pid)
    if ticks is None:
        return None
    return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))


def parse_id_list(text: str, option: str = "-p", thread: bool = False) -> tuple[int, ...]:
    """A `-p PID[,PID]` / `-t TID[,TID]` argument: positive ids, each once, in the order given; one clear usage
    error otherwise (every command that takes one uses this)."""
    label, kind = ("TID", "thread") if thread else ("PID", "process")
    ids = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) <= 0:
            raise HwprofError(f"{option} expects {kind} ids like 1234 or 12,34: invalid {label} {part!r} in {text!r}",
                              exit_code=2)
        ids.append(int(part))
    return tuple(dict.fromkeys(ids))
