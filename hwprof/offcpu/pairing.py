"""Off-CPU pairing: from switch-outs and switch-ins to blocked intervals weighted in nanoseconds.

Why it is a separate, pure module: pairing is where off-CPU numbers go right or wrong (a lost switch-in must not
stretch a block over the time the thread ran; a thread still blocked at the stop must get its time up to the
stop; a wakeup must belong to the block it ended), so it is tested on hand-made switch sequences, independent of
how the records were captured (sched_switch samples, PERF_RECORD_SWITCH, or another tool's trace).

Per thread, in time order: a switch-out at t0 (with the sample that carries its stack, and the task state at
that moment) is paired with the thread's next event. A switch-in at t1 makes a block [t0, t1). Another switch-out
first means the switch-in was lost: the block is dropped and counted, never guessed. No further event means the
thread was still blocked at the stop: the block runs to the capture's end. A switch-in with no switch-out before
it is a thread that was blocked (or, after a FORK, waiting to run for the first time) since before we could see
it: its block starts at the capture's start (or the fork), with no stack. The last wakeup of the thread inside a
block names the waker (bcc offwaketime's pairing). --min-block is applied when a view is chosen
(hwprof.offcpu.views.view_selection), so the decoded profile keeps every block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class OffCpuState(IntEnum):
    """The task state a block started in. ON_CPU marks on-CPU samples in a profile that holds both."""

    ON_CPU = 0
    SLEEPING = 1        # S: interruptible sleep (waiting for an event: a lock, a timer, a socket)
    UNINTERRUPTIBLE = 2  # D: uninterruptible sleep, usually I/O
    RUNNABLE = 3        # R: preempted or yielded, waiting for a CPU
    STOPPED = 4         # T/t: stopped by a signal or a tracer
    IDLE = 5            # I/P: idle or parked kernel thread
    BLOCKED = 6         # S or D (switch records alone cannot tell them apart)
    UNKNOWN = 7         # blocked since before the capture started: state and stack unknown


STATE_LABELS = {
    OffCpuState.ON_CPU: "on-CPU",
    OffCpuState.SLEEPING: "sleeping (S)",
    OffCpuState.UNINTERRUPTIBLE: "uninterruptible (D)",
    OffCpuState.RUNNABLE: "runnable (R, preempted)",
    OffCpuState.STOPPED: "stopped (T)",
    OffCpuState.IDLE: "idle (I)",
    OffCpuState.BLOCKED: "blocked (S or D)",
    OffCpuState.UNKNOWN: "blocked since before the capture",
}

DEAD = 255  # a switch-out of an exiting task (X, Z): not a block
WAKER = 254  # Profile.sample_state of a waker's companion sample (hwprof.offcpu.stage, folded by hwprof.offcpu.views)

# prev_state as the sched_switch tracepoint reports it (Linux 4.14+): 0 or TASK_REPORT_MAX (0x100, preempted)
# for a runnable task, else one bit of TASK_REPORT: S 0x1, D 0x2, T 0x4, t 0x8, X 0x10, Z 0x20, P 0x40, I 0x80.
_REPORT_BITS = ((0x1, OffCpuState.SLEEPING), (0x2, OffCpuState.UNINTERRUPTIBLE), (0x4, OffCpuState.STOPPED),
                (0x8, OffCpuState.STOPPED), (0x10, DEAD), (0x20, DEAD), (0x40, OffCpuState.IDLE),
                (0x80, OffCpuState.IDLE))
_TASK_REPORT_MAX = 0x100


def state_from_prev_state(prev_state: np.ndarray) -> np.ndarray:
    """OffCpuState (or DEAD) codes for sched_switch prev_state values."""
    values = np.asarray(prev_state, dtype=np.int64)
    out = np.full(len(values), int(OffCpuState.RUNNABLE), dtype=np.uint8)
    low = values & (_TASK_REPORT_MAX - 1)
    decided = (values & _TASK_REPORT_MAX) != 0  # preempted: runnable whatever the state bits say
    for bit, state in _REPORT_BITS:
        hit = ((low & bit) != 0) & ~decided
        out[hit] = int(state)
        decided |= hit
    return out


def _i64(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass
class SwitchTrace:
    """Everything pairing needs, as columns. `*_ref` are the caller's indexes of the samples that carry stacks
    (the switch-out's blocked stack, the wakeup's waker stack); -1 for none."""

    out_time: np.ndarray
    out_tid: np.ndarray
    out_pid: np.ndarray
    out_state: np.ndarray          # OffCpuState or DEAD
    out_ref: np.ndarray
    in_time: np.ndarray
    in_tid: np.ndarray
    in_pid: np.ndarray
    start_ns: int                  # the capture's span, in the same clock
    end_ns: int
    fork_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fork_tid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    exit_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    exit_tid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    wake_time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    wake_tid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # the thread woken
    wake_ref: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class OffCpuBlocks:
    """One row per blocked interval."""

    tid: np.ndarray
    pid: np.ndarray
    start: np.ndarray       # int64 ns: switch-out (or capture start / fork)
    duration: np.ndarray    # int64 ns blocked
    state: np.ndarray       # uint8 OffCpuState
    out_ref: np.ndarray     # sample with the blocked stack, -1 for none
    wake_ref: np.ndarray    # sample with the waker's stack, -1 for none
    lost_switch_ins: int = 0     # switch-outs followed by another switch-out: dropped, not guessed

    def __len__(self) -> int:
        return len(self.tid)


_OUT, _IN, _WAKE, _FORK, _EXIT = 0, 1, 2, 3, 4


def pair_switches(trace: SwitchTrace) -> OffCpuBlocks:
    """Blocked intervals of every thread (see the module docstring for the rules)."""
    kinds = [(_OUT, trace.out_time, trace.out_tid), (_IN, trace.in_time, trace.in_tid),
             (_WAKE, trace.wake_time, trace.wake_tid), (_FORK, trace.fork_time, trace.fork_tid),
             (_EXIT, trace.exit_time, trace.exit_tid)]
    time = np.concatenate([_i64(t) for _, t, _ in kinds])
    tid = np.concatenate([_i64(d) for _, _, d in kinds])
    kind = np.concatenate([np.full(len(_i64(t)), k, dtype=np.int64) for k, t, _ in kinds])
    index = np.concatenate([np.arange(len(_i64(t)), dtype=np.int64) for _, t, _ in kinds])
    # Equal times: a fork first, then wakeups, switch-ins, switch-outs, exit (the order they happen in).
    rank = np.array([3, 2, 1, 0, 4], dtype=np.int64)[kind]
    order = np.lexsort((rank, time, tid))
    time, tid, kind, index = time[order], tid[order], kind[order], index[order]
    n = len(time)
    pos = np.arange(n, dtype=np.int64)

    # The next switch event (out, in, exit: not wakeups or forks) of the same thread, for each position.
    switchy = (kind == _OUT) | (kind == _IN) | (kind == _EXIT)
    nxt = np.where(switchy, pos, n)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]  # first switch event at or after each position
    following = np.full(n, n, dtype=np.int64)
    following[:-1] = nxt[1:]
    thread_end = _thread_last(tid)  # last position of each row's thread
    following = np.where(following <= thread_end, following, n)

    # The previous switch event of the same thread.
    prv = np.where(switchy, pos, -1)
    prv = np.maximum.accumulate(prv)
    preceding = np.full(n, -1, dtype=np.int64)
    preceding[1:] = prv[:-1]
    thread_start = _thread_first(tid)
    preceding = np.where(preceding >= thread_start, preceding, -1)

    out_state = np.asarray(trace.out_state, dtype=np.int64).reshape(-1)
    out_pid = _i64(trace.out_pid)
    in_pid = _i64(trace.in_pid)

    # 1. Switch-outs (not of dying tasks) and what ends them.
    outs = np.nonzero(kind == _OUT)[0]
    outs = outs[out_state[index[outs]] != DEAD]
    nk = np.where(following[outs] < n, kind[np.minimum(following[outs], n - 1)], -1)
    lost = int(np.count_nonzero((nk == _OUT) | (nk == _EXIT)))
    closed = nk == _IN
    open_ = nk == -1
    keep = closed | open_
    o = outs[keep]
    end = np.where(closed[keep], time[np.minimum(following[o], n - 1)], max(int(trace.end_ns), 0))
    o_start = time[o]
    o_dur = np.maximum(end - o_start, 0)
    o_ref = _i64(trace.out_ref)[index[o]]
    o_state = out_state[index[o]]
    o_pid = out_pid[index[o]]
    # The waker: the last wakeup of this thread between the switch-out and the switch-in.
    o_wake = np.full(len(o), -1, dtype=np.int64)
    w_pos = np.nonzero(kind == _WAKE)[0]
    if len(w_pos) and len(o):
        last_wake = np.where(kind == _WAKE, pos, -1)
        last_wake = np.maximum.accumulate(last_wake)
        stop = np.where(closed[keep], following[o], thread_end[o] + 1) - 1
        cand = last_wake[stop]
        ok = cand > o
        o_wake[ok] = _i64(trace.wake_ref)[index[cand[ok]]]

    # 2. Switch-ins with no switch-out before them: blocked since the capture's start (or the thread's fork).
    ins = np.nonzero(kind == _IN)[0]
    first = ins[preceding[ins] < 0]
    fork_before = np.full(len(first), -1, dtype=np.int64)
    forks = np.nonzero(kind == _FORK)[0]
    if len(forks) and len(first):
        last_fork = np.maximum.accumulate(np.where(kind == _FORK, pos, -1))
        cand = last_fork[first]
        ok = (cand >= thread_start[first])
        fork_before[ok] = cand[ok]
    f_start = np.where(fork_before >= 0, time[np.maximum(fork_before, 0)], int(trace.start_ns))
    f_dur = np.maximum(time[first] - f_start, 0)
    f_state = np.where(fork_before >= 0, int(OffCpuState.RUNNABLE), int(OffCpuState.UNKNOWN))
    lost += int(np.count_nonzero(kind[np.maximum(preceding[ins], 0)][preceding[ins] >= 0] == _IN))

    blocks = OffCpuBlocks(
        tid=np.concatenate([tid[o], tid[first]]),
        pid=np.concatenate([o_pid, in_pid[index[first]]]),
        start=np.concatenate([o_start, f_start]),
        duration=np.concatenate([o_dur, f_dur]),
        state=np.concatenate([o_state, f_state]).astype(np.uint8),
        out_ref=np.concatenate([o_ref, np.full(len(first), -1, dtype=np.int64)]),
        wake_ref=np.concatenate([o_wake, np.full(len(first), -1, dtype=np.int64)]),
        lost_switch_ins=lost,
    )
    return _nonempty_by_start(blocks)


def _nonempty_by_start(blocks: OffCpuBlocks) -> OffCpuBlocks:
    """Blocks in time order, without empty ones (a switch-in at the switch-out's own timestamp)."""
    order = np.argsort(blocks.start, kind="stable")
    chosen = order[blocks.duration[order] > 0]
    return OffCpuBlocks(
        tid=blocks.tid[chosen], pid=blocks.pid[chosen], start=blocks.start[chosen],
        duration=blocks.duration[chosen], state=blocks.state[chosen], out_ref=blocks.out_ref[chosen],
        wake_ref=blocks.wake_ref[chosen], lost_switch_ins=blocks.lost_switch_ins)


def _thread_last(tid: np.ndarray) -> np.ndarray:
    """For sorted-by-thread rows: the position of the last row of each row's thread."""
    n = len(tid)
    if not n:
        return np.zeros(0, dtype=np.int64)
    change = np.nonzero(tid[1:] != tid[:-1])[0]
    ends = np.append(change, n - 1)
    group = np.zeros(n, dtype=np.int64)
    group[change + 1] = 1
    group = np.cumsum(group)
    return ends[group]


def _thread_first(tid: np.ndarray) -> np.ndarray:
    n = len(tid)
    if not n:
        return np.zeros(0, dtype=np.int64)
    change = np.nonzero(tid[1:] != tid[:-1])[0]
    starts = np.concatenate([[0], change + 1])
    group = np.zeros(n, dtype=np.int64)
    group[change + 1] = 1
    group = np.cumsum(group)
    return starts[group]
