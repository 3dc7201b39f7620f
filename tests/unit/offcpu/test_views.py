"""Off-CPU views of a profile: state frames, waker folding, on-CPU/off-CPU/wall selection, per-thread wall time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hwprof.errors import HwprofError
from hwprof.folded import profile_folded
from hwprof.offcpu.pairing import WAKER, OffCpuState
from hwprof.offcpu.views import fold_states, select_samples, thread_times, view_selection
from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta

S, R = int(OffCpuState.SLEEPING), int(OffCpuState.RUNNABLE)


def make_profile(rows, clock="cpu-clock"):
    """rows: (time, pid, tid, frames root first, period ns, state)."""
    b = ProfileBuilder(ProfileMeta(events=[clock]))
    for time, pid, tid, names, period, _state in rows:
        stack = b.stack([b.frame(function=n, module="m", address=i, kind=FrameKind.USER) for i, n in enumerate(names)])
        b.sample(time=time, pid=pid, tid=tid, cpu=0, stack=stack, period=period)
    b.threads.update({1: "app", 2: "worker", 9: "waker"})
    return replace(b.build(), sample_state=np.array([r[5] for r in rows], dtype=np.uint8))


ROWS = [
    (100, 1, 1, ["main", "work"], 250_000.0, 0),
    (200, 1, 1, ["main", "wait"], 30_000_000.0, S),
    (300, 1, 2, ["thread", "lock"], 5_000_000.0, S),
    (300, 9, 2, ["unlocker", "wake"], 0.0, WAKER),   # woke tid 2's block at t=300
    (400, 1, 2, ["thread", "spin"], 1_000_000.0, R),
]


def folded(profile, mask=None, weights=None):
    return list(profile_folded(profile, weights if weights is not None else profile.sample_period, mask))


def test_off_cpu_stacks_end_in_their_state_and_a_waker_is_folded_above_the_blocked_stack():
    lines = folded(fold_states(make_profile(ROWS)))
    assert lines == [
        "main;wait;[off-cpu: sleeping (S)] 30000000",
        "main;work 250000",
        "thread;lock;[off-cpu: sleeping (S)];--;wake;unlocker;[waker: waker 9] 5000000",
        "thread;spin;[off-cpu: runnable (R, preempted)] 1000000",
    ]


def test_marker_frames_have_their_own_kind_for_the_colour():
    profile = fold_states(make_profile(ROWS))
    kinds = {profile.frame_label(f): int(profile.frame_kind[f]) for f in range(len(profile.frame_kind))}
    assert kinds["[off-cpu: sleeping (S)]"] == kinds["--"] == int(FrameKind.OFFCPU)
    assert kinds["main"] == int(FrameKind.USER)


def test_views_select_on_cpu_off_cpu_or_both_and_min_block_drops_short_blocks():
    profile = fold_states(make_profile(ROWS))
    on, _ = view_selection(profile, "on-cpu")
    off, _ = view_selection(profile, "off-cpu")
    wall, _ = view_selection(profile, "wall")
    short_gone, _ = view_selection(profile, "off-cpu", min_block_us=2000)
    assert (int(on.sum()), int(off.sum()), int(wall.sum()), int(short_gone.sum())) == (1, 3, 4, 2)
    assert select_samples(profile, short_gone).sample_period.tolist() == [30_000_000.0, 5_000_000.0]


def test_wall_needs_a_time_clock_and_off_cpu_views_need_off_cpu_data():
    with pytest.raises(HwprofError, match="time-based"):
        view_selection(fold_states(make_profile(ROWS, clock="page-faults")), "wall")
    plain = make_profile([(100, 1, 1, ["main"], 1.0, 0)])
    with pytest.raises(HwprofError, match="--off-cpu"):
        view_selection(plain, "off-cpu")


def test_wall_time_per_thread_is_on_cpu_plus_off_cpu_by_state():
    times = {t.tid: t for t in thread_times(fold_states(make_profile(ROWS)))}
    assert times[1].on_cpu_ns == 250_000.0 and times[1].wall_ns == 30_250_000.0
    assert times[2].off_cpu_ns == {"sleeping (S)": 5_000_000.0, "runnable (R, preempted)": 1_000_000.0}
    assert times[2].comm == "worker" and times[2].last_ns == 300 + 5_000_000  # the end of its longest-reaching block
