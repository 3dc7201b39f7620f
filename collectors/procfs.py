"""Synthesize COMM, FORK and MMAP2 records from /proc for processes that existed before the capture (and the other
records the recorder writes itself: LOST_SAMPLES at the stop).

The kernel only reports mappings and names that change while an event is open. A process attached to mid-run (or
every process of a system-wide capture) already has its code mapped, so, as `perf record` does, we read
/proc/PID/{task,comm,maps} and write the records the kernel would have written, so every sample can be resolved.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from hwprof.errors import HwprofError
from hwprof.perf.abi import CpuMode, RecordType
from hwprof.perf.records import Mmap, pack_string
from hwprof.system.procfs import read_comm, read_maps, thread_ids
from hwprof.units import Address, Pid, Tid

Trailer = Callable[[Pid, Tid], bytes]
"""Builds the sample_id trailer (attr.sample_id_all) for a synthesized record of (pid, tid)."""

_PROT = {"r": 1, "w": 2, "x": 4}
MAP_SHARED, MAP_PRIVATE = 1, 2
KERNEL_MAP_NAME = "[kernel.kallsyms]_text"


def _record(rtype: int, misc: int, body: bytes) -> bytes:
    return struct.pack("<IHH", rtype, misc, 8 + len(body)) + body


def comm_record(pid: Pid, tid: Tid, comm: str, trailer: Trailer) -> bytes:
    return _record(RecordType.COMM, 0, struct.pack("<ii", pid, tid) + pack_string(comm[:15]) + trailer(pid, tid))


def lost_samples_record(lost: int, trailer: bytes) -> bytes:
    """The count of drops no LOST record reported (read from the events at the stop), as perf record writes it."""
    return _record(RecordType.LOST_SAMPLES, 0, struct.pack("<Q", lost) + trailer)


def fork_record(pid: Pid, ppid: Pid, tid: Tid, ptid: Tid, trailer: Trailer) -> bytes:
    return _record(RecordType.FORK, 0, struct.pack("<iiiiQ", pid, ppid, tid, ptid, 0) + trailer(pid, tid))


def process_mmaps(pid: Pid, include_data: bool = False) -> list[Mmap]:
    """The executable mappings of a live process (all mappings with include_data) as the MMAP2 records the kernel
    would have written; [] when it exited meanwhile or is not ours to read."""
    try:
        maps = read_maps(pid, executable_only=not include_data)
    except HwprofError:
        return []
    out = []
    for mapping in maps:
        if not mapping.executable and not include_data:
            continue
        path = mapping.kernel_name
        if not path:
            path = "//anon"  # anonymous executable memory: JIT code, named as perf names it
        elif path.startswith("[") and path not in ("[vdso]", "[vsyscall]"):
            continue  # [heap], [stack], [vvar]: never code
        prot = sum(bit for ch, bit in _PROT.items() if ch in mapping.perms)
        out.append(Mmap(pid, pid, mapping.start, mapping.end - mapping.start, mapping.offset, path,
                        maj=mapping.major, min=mapping.minor, ino=mapping.inode, prot=prot,
                        flags=MAP_SHARED if mapping.shared else MAP_PRIVATE))
    return out


def mmap_records(pid: Pid, trailer: Trailer, include_data: bool = False) -> bytes:
    """MMAP2 records for the executable mappings of a process (all mappings with include_data)."""
    out = []
    for m in process_mmaps(pid, include_data):
        body = struct.pack("<iiQQQIIQQII", pid, pid, m.start, m.length, m.pgoff, m.maj, m.min, m.ino, 0, m.prot,
                           m.flags)
        out.append(_record(RecordType.MMAP2, CpuMode.USER, body + pack_string(m.filename) + trailer(pid, pid)))
    return b"".join(out)


def synthesize_process(pid: Pid, trailer: Trailer, include_data: bool = False) -> bytes:
    """COMM for every thread, FORK for every thread but the main one, MMAP2 for the code: what perf writes."""
    tids = thread_ids(pid)
    if not tids:
        return b""
    out = []
    for tid in tids:
        comm = read_comm(pid, tid)
        if comm is None:
            continue  # the thread exited meanwhile
        if tid != pid:
            out.append(fork_record(pid, pid, tid, pid, trailer))
        out.append(comm_record(pid, tid, comm, trailer))
    out.append(mmap_records(pid, trailer, include_data))
    return b"".join(out)


def synthesize_processes(pids: Iterable[Pid], trailer: Trailer, include_data: bool = False) -> bytes:
    return b"".join(synthesize_process(pid, trailer, include_data) for pid in pids)


def kernel_text_start() -> Address:
    """Address of _text (or _stext) from /proc/kallsyms; 0 when kptr_restrict hides addresses."""
    found = 0
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] in ("_text", "_stext"):
                    found = int(parts[0], 16)
                    if parts[2] == "_text":
                        break
    except (OSError, ValueError):
        return 0
    return found


def kernel_mmap_record(trailer: Trailer) -> bytes:
    """The MMAP perf writes for the kernel image (pid -1), so `perf report` maps kernel addresses to kallsyms."""
    start = kernel_text_start()
    if not start:
        return b""
    body = struct.pack("<iiQQQ", -1, 0, start, (1 << 64) - 1 - start, start)
    return _record(RecordType.MMAP, CpuMode.KERNEL, body + pack_string(KERNEL_MAP_NAME) + trailer(-1, 0))
