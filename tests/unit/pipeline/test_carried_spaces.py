"""Address spaces carried from window to window (hwprof agent): what a later window's samples resolve against."""

from __future__ import annotations

import numpy as np

from hwprof.perf.abi import RecordType
from hwprof.perf.records import Comm, Mmap, TaskEvent
from hwprof.pipeline.spaces import AddressSpaces


def code(pid: int, start: int, length: int, name: str) -> Mmap:
    return Mmap(pid, pid, start, length, 0, name, prot=5)


def fork(pid: int, parent: int) -> TaskEvent:
    return TaskEvent(int(RecordType.FORK), pid, parent, pid, parent, 0)


def exit_(pid: int, tid: int | None = None) -> TaskEvent:
    return TaskEvent(int(RecordType.EXIT), pid, pid, pid if tid is None else tid, pid, 0)


def names(spaces: AddressSpaces, pid: int, when: int) -> list[str]:
    return [m.filename for m in spaces.at(pid, when).maps]


def test_a_live_process_keeps_its_latest_space_from_the_start_of_the_next_window():
    spaces = AddressSpaces()
    spaces.mmap(0, code(10, 0x1000, 0x1000, "/bin/prog"))
    spaces.mmap(5, code(10, 0x7000, 0x1000, "/lib/libc.so"))
    spaces.mmap(9, code(10, 0x7000, 0x800, "/lib/libnew.so"))  # replaces the first half of libc's mapping
    spaces.carry_over()
    assert len(spaces.changes[10]) == 1
    # The next window's first sample (any time) sees what the last one ended with.
    assert names(spaces, 10, 10) == ["/bin/prog", "/lib/libnew.so"]
    assert spaces.at(10, 11).lookup(np.array([0x1010, 0x7010, 0x7900], dtype=np.uint64)).tolist() == [0, 1, -1]
    # ... and the kernel's records of the next window change it as before.
    spaces.mmap(20, code(10, 0x9000, 0x1000, "/lib/libz.so"))
    assert names(spaces, 10, 15) == ["/bin/prog", "/lib/libnew.so"]
    assert names(spaces, 10, 25) == ["/bin/prog", "/lib/libnew.so", "/lib/libz.so"]


def test_exited_processes_and_threads_are_forgotten_and_a_recycled_pid_starts_clean():
    spaces = AddressSpaces()
    spaces.comm(0, Comm(10, 10, "prog"))
    spaces.comm(0, Comm(10, 11, "worker"))
    spaces.mmap(1, code(10, 0x1000, 0x1000, "/bin/prog"))
    spaces.mmap(1, code(20, 0x1000, 0x1000, "/bin/other"))
    spaces.task(2, exit_(10, 11))   # a thread of 10 ends
    spaces.task(3, exit_(20))       # process 20 ends
    spaces.carry_over()
    assert set(spaces.changes) == {10}
    assert spaces.comms == {10: "prog"} and 11 not in spaces.pid_of_tid
    # pid 20 comes back as a child of 10: it starts from its parent's space, not from the old 20's.
    spaces.task(30, fork(20, 10))
    assert names(spaces, 20, 31) == ["/bin/prog"]


def test_a_pid_that_exits_and_is_forked_again_in_one_window_is_kept():
    spaces = AddressSpaces()
    spaces.mmap(1, code(10, 0x1000, 0x1000, "/bin/prog"))
    spaces.task(2, exit_(20))
    spaces.task(3, fork(20, 10))
    spaces.carry_over()
    assert names(spaces, 20, 100) == ["/bin/prog"]


def test_an_exec_in_the_next_window_replaces_the_carried_space():
    spaces = AddressSpaces()
    spaces.mmap(1, code(10, 0x1000, 0x1000, "/bin/sh"))
    spaces.carry_over()
    spaces.comm(50, Comm(10, 10, "expr", exec=True))
    spaces.mmap(51, code(10, 0x2000, 0x1000, "/usr/bin/expr"))
    assert names(spaces, 10, 49) == ["/bin/sh"]
    assert names(spaces, 10, 52) == ["/usr/bin/expr"]
    spaces.carry_over()
    assert names(spaces, 10, 0) == ["/usr/bin/expr"]
