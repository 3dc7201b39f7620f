"""Off-CPU pairing rules, on hand-made switch sequences (times in ns)."""

from __future__ import annotations

import numpy as np

from hwprof.offcpu.pairing import DEAD, OffCpuState, SwitchTrace, pair_switches, state_from_prev_state

S, D, R = int(OffCpuState.SLEEPING), int(OffCpuState.UNINTERRUPTIBLE), int(OffCpuState.RUNNABLE)


def trace(outs, ins, start=0, end=1000, forks=(), exits=(), wakes=()) -> SwitchTrace:
    """outs: (time, tid, state, ref); ins: (time, tid); wakes: (time, wakee tid, ref)."""
    def col(rows, i):
        return np.array([r[i] for r in rows], dtype=np.int64)

    return SwitchTrace(
        out_time=col(outs, 0), out_tid=col(outs, 1), out_pid=col(outs, 1), out_state=col(outs, 2),
        out_ref=col(outs, 3), in_time=col(ins, 0), in_tid=col(ins, 1), in_pid=col(ins, 1),
        start_ns=start, end_ns=end, fork_time=col(forks, 0), fork_tid=col(forks, 1),
        exit_time=col(exits, 0), exit_tid=col(exits, 1),
        wake_time=col(wakes, 0), wake_tid=col(wakes, 1), wake_ref=col(wakes, 2))


def rows(blocks):
    return sorted(zip(blocks.tid.tolist(), blocks.start.tolist(), blocks.duration.tolist(), blocks.state.tolist(),
                      blocks.out_ref.tolist(), blocks.wake_ref.tolist(), strict=True))


def test_a_switch_out_is_weighed_by_the_time_until_the_same_thread_runs_again():
    # Thread 1 sleeps 100..130, thread 2 (interleaved) 110..200 in D, thread 1 again 150..160 preempted.
    t = trace(outs=[(100, 1, S, 0), (110, 2, D, 1), (150, 1, R, 2)], ins=[(130, 1), (200, 2), (160, 1)])
    assert rows(pair_switches(t)) == [(1, 100, 30, S, 0, -1), (1, 150, 10, R, 2, -1), (2, 110, 90, D, 1, -1)]


def test_a_thread_still_blocked_at_the_stop_is_blocked_until_the_end_of_the_capture():
    t = trace(outs=[(100, 1, S, 0), (300, 1, S, 1)], ins=[(200, 1)], end=1000)
    assert rows(pair_switches(t)) == [(1, 100, 100, S, 0, -1), (1, 300, 700, S, 1, -1)]


def test_a_lost_switch_in_drops_the_block_and_is_counted_never_guessed():
    t = trace(outs=[(100, 1, S, 0), (300, 1, S, 1)], ins=[(400, 1)])
    blocks = pair_switches(t)
    assert rows(blocks) == [(1, 300, 100, S, 1, -1)]
    assert blocks.lost_switch_ins == 1


def test_a_thread_blocked_before_the_capture_gets_an_unknown_block_from_the_start_and_after_fork_a_runnable_one():
    t = trace(outs=[], ins=[(250, 1), (40, 2)], start=200, forks=[(10, 2)])
    assert rows(pair_switches(t)) == [(1, 200, 50, int(OffCpuState.UNKNOWN), -1, -1), (2, 10, 30, R, -1, -1)]


def test_the_final_switch_out_of_a_dying_thread_is_not_a_block():
    t = trace(outs=[(100, 1, S, 0), (500, 1, DEAD, 1)], ins=[(150, 1)], exits=[(499, 1)], end=1000)
    assert rows(pair_switches(t)) == [(1, 100, 50, S, 0, -1)]


def test_the_last_wakeup_inside_a_block_names_the_waker_and_wakeups_outside_do_not():
    t = trace(outs=[(100, 1, S, 0), (300, 1, S, 1)], ins=[(200, 1), (400, 1)],
              wakes=[(90, 1, 7), (150, 1, 8), (190, 1, 9), (210, 2, 10)])
    assert rows(pair_switches(t)) == [(1, 100, 100, S, 0, 9), (1, 300, 100, S, 1, -1)]


def test_prev_state_follows_the_kernels_task_report_encoding():
    values = np.array([0, 0x100, 0x101, 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80])
    assert state_from_prev_state(values).tolist() == [R, R, R, S, D, 4, 4, DEAD, DEAD, 5, 5]


def test_many_threads_pair_the_same_as_one_at_a_time():
    rng = np.random.default_rng(1)
    outs, ins, expected = [], [], []
    for tid in range(1, 60):
        t = int(rng.integers(0, 50))
        for _ in range(int(rng.integers(1, 20))):
            run, block = int(rng.integers(1, 30)), int(rng.integers(1, 30))
            t += run
            outs.append((t, tid, S, len(outs)))
            expected.append((tid, t, block, S, len(outs) - 1, -1))
            t += block
            ins.append((t, tid))
    rng.shuffle(outs)
    assert rows(pair_switches(trace(outs=outs, ins=ins, end=10**6))) == sorted(expected)
