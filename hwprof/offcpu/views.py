"""Off-CPU and wall-clock views of a Profile whose samples carry a state (Profile.sample_state).

A profile of `hwprof record --off-cpu` holds on-CPU samples (state 0, weight = the sampling clock's period in ns)
and one sample per blocked interval (state = hwprof.offcpu.pairing.OffCpuState, weight = ns blocked). So:
- the on-CPU view is the state-0 samples, the off-CPU view the others, weighted by their ns;
- the wall view is all of them weighted by ns: per thread, on-CPU + off-CPU time is the thread's wall time over
  the capture (within the sampling error of the on-CPU part), which is why it needs a time-based sampling clock.

`fold_states` runs once after decoding: each off-CPU stack gets a leaf frame naming its state ("[off-cpu:
sleeping (S)]"), so the split shows in every flame graph, folded line and table; and each waker companion sample
(stage.WAKER) is folded into its blocked sample's stack the way bcc's offwaketime draws it: blocked stack
root to leaf, the state, a "--" separator, then the waker's stack from its leaf back to its root and the waker's
process name. The companions are then removed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwprof.errors import HwprofError
from hwprof.offcpu.pairing import STATE_LABELS, WAKER, OffCpuState
from hwprof.profile import FrameKind, Profile

OFFCPU_KIND = FrameKind.OFFCPU
VIEWS = ("on-cpu", "off-cpu", "wall")
TIME_CLOCKS = ("cpu-clock", "task-clock")


def state_frame_label(state: int) -> str:
    try:
        return f"[off-cpu: {STATE_LABELS[OffCpuState(state)]}]"
    except (ValueError, KeyError):
        return "[off-cpu]"


def has_offcpu(profile: Profile) -> bool:
    state = getattr(profile, "sample_state", None)
    return state is not None and bool(np.any((state > 0) & (state != WAKER)))


def fold_states(profile: Profile) -> Profile:
    """State leaf frames on off-CPU stacks and waker chains folded in (see the module docstring)."""
    state = getattr(profile, "sample_state", None)
    if state is None or not np.any(state):
        return profile
    strings = list(profile.strings)
    string_index = {s: i for i, s in enumerate(strings)}
    frames = {name: list(getattr(profile, name)) for name in (
        "frame_function", "frame_module", "frame_address", "frame_file", "frame_line", "frame_kind",
        "frame_inlined")}
    stack_frame = profile.stack_frame.tolist()
    stack_parent = profile.stack_parent.tolist()
    new_frames: dict[str, int] = {}
    new_nodes: dict[tuple[int, int], int] = {}

    def frame(label: str) -> int:
        if label not in new_frames:
            if label not in string_index:
                string_index[label] = len(strings)
                strings.append(label)
            new_frames[label] = len(frames["frame_function"])
            for name, value in (("frame_function", string_index[label]), ("frame_module", -1), ("frame_address", 0),
                                ("frame_file", -1), ("frame_line", 0), ("frame_kind", int(OFFCPU_KIND)),
                                ("frame_inlined", False)):
                frames[name].append(value)
        return new_frames[label]

    def child(parent: int, frame_id: int) -> int:
        key = (parent, frame_id)
        node = new_nodes.get(key)
        if node is None:
            node = new_nodes[key] = len(stack_frame)
            stack_frame.append(frame_id)
            stack_parent.append(parent)
        return node

    def frames_root_first(stack: int) -> list[int]:
        out = []
        while stack >= 0:
            out.append(stack_frame[stack])
            stack = stack_parent[stack]
        return out[::-1]

    sample_stack = profile.sample_stack.copy()
    blocked = np.nonzero((state > 0) & (state != WAKER))[0]
    for i, (stack, st) in enumerate(zip(profile.sample_stack[blocked].tolist(), state[blocked].tolist(),
                                        strict=True)):
        sample_stack[blocked[i]] = child(int(stack), frame(state_frame_label(int(st))))
    wakers = np.nonzero(state == WAKER)[0]
    if len(wakers):
        # A companion shares its blocked sample's time and thread.
        key_blocked = {(int(t), int(d)): int(i) for i, t, d in zip(
            blocked.tolist(), profile.sample_time[blocked].tolist(), profile.sample_tid[blocked].tolist(),
            strict=True)}
        separator = frame("--")
        for w in wakers.tolist():
            target = key_blocked.get((int(profile.sample_time[w]), int(profile.sample_tid[w])))
            if target is None:
                continue
            node = child(int(sample_stack[target]), separator)
            for f in frames_root_first(int(profile.sample_stack[w]))[::-1]:
                node = child(node, f)
            pid = int(profile.sample_pid[w])
            comm = profile.threads.get(pid, "?")
            sample_stack[target] = child(node, frame(f"[waker: {comm} {pid}]"))
    keep = state != WAKER
    out = replace(
        profile, strings=strings,
        frame_function=np.array(frames["frame_function"], dtype=np.int32),
        frame_module=np.array(frames["frame_module"], dtype=np.int32),
        frame_address=np.array(frames["frame_address"], dtype=np.uint64),
        frame_file=np.array(frames["frame_file"], dtype=np.int32),
        frame_line=np.array(frames["frame_line"], dtype=np.int32),
        frame_kind=np.array(frames["frame_kind"], dtype=np.uint8),
        frame_inlined=np.array(frames["frame_inlined"], dtype=bool),
        stack_frame=np.array(stack_frame, dtype=np.int32), stack_parent=np.array(stack_parent, dtype=np.int32),
        sample_stack=sample_stack.astype(np.int32))
    return select_samples(out, keep)


def select_samples(profile: Profile, keep: np.ndarray) -> Profile:
    """The profile with only the samples where keep is True (Profile.select, a no-op when all are kept)."""
    return profile if bool(np.all(keep)) else profile.select(keep)


# --- views ------------------------------------------------------------------------------------------------

def view_selection(profile: Profile, view: str, min_block_us: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(mask, weights in ns) of a view. `min_block_us` drops off-CPU samples (blocks) shorter than that."""
    if view not in VIEWS:
        raise HwprofError(f"unknown view {view!r} (choose from {', '.join(VIEWS)})")
    state = getattr(profile, "sample_state", None)
    if state is None:
        state = np.zeros(profile.n_samples, dtype=np.uint8)
    if view != "on-cpu" and not has_offcpu(profile):
        raise HwprofError("this recording has no off-CPU data: record it with 'hwprof record --off-cpu'")
    if view == "wall":
        clock = (profile.meta.events or [""])[0].split(":")[0]
        if clock not in TIME_CLOCKS:
            raise HwprofError(f"--wall needs a time-based sampling clock ({', '.join(TIME_CLOCKS)}), this recording "
                              f"samples {clock or 'nothing'}: on-CPU samples cannot be turned into time")
    off = (state > 0) & (state != WAKER)
    mask = {"on-cpu": state == 0, "off-cpu": off, "wall": (state == 0) | off}[view]
    if min_block_us > 0:
        mask = mask & ~(off & (profile.sample_period < min_block_us * 1000.0))
    return mask, profile.sample_period.astype(np.float64)


@dataclass(frozen=True)
class ThreadTime:
    """Where one thread's wall time went, in ns."""

    tid: int
    pid: int
    comm: str
    on_cpu_ns: float
    off_cpu_ns: dict[str, float]  # state label -> ns
    first_ns: int                 # first on-CPU sample or block start
    last_ns: int                  # last sample or block end

    @property
    def wall_ns(self) -> float:
        return self.on_cpu_ns + sum(self.off_cpu_ns.values())


def thread_times(profile: Profile, mask: np.ndarray | None = None) -> list[ThreadTime]:
    """Per thread: on-CPU time (samples x period), off-CPU time by state, and the span they cover; busiest first."""
    state = getattr(profile, "sample_state", np.zeros(profile.n_samples, dtype=np.uint8))
    sel = (state != WAKER) if mask is None else (mask & (state != WAKER))
    tid, pid = profile.sample_tid[sel], profile.sample_pid[sel]
    st, w, t = state[sel], profile.sample_period[sel], profile.sample_time[sel].astype(np.int64)
    out = []
    for thread in np.unique(tid).tolist():
        m = tid == thread
        off = {STATE_LABELS[OffCpuState(s)]: float(w[m & (st == s)].sum()) for s in np.unique(st[m]).tolist()
               if s != 0}
        ends = t[m] + np.where(st[m] > 0, w[m], 0).astype(np.int64)
        out.append(ThreadTime(int(thread), int(pid[m][0]), profile.threads.get(int(thread), "?"),
                              float(w[m & (st == 0)].sum()), off, int(t[m].min()), int(ends.max())))
    out.sort(key=lambda x: -x.wall_ns)
    return out


def render_thread_times(rows: list[ThreadTime], limit: int = 50) -> str:
    """The per-thread wall table of `hwprof report --wall`."""
    states = sorted({s for r in rows for s in r.off_cpu_ns})
    head = f"# {'tid':>8} {'comm':<16} {'wall ms':>10} {'on-CPU ms':>10} " + " ".join(f"{s:>24}" for s in states)
    lines = ["# wall time per thread (on-CPU samples x period + off-CPU time by state at switch-out)", head]
    for r in rows[:limit or None]:
        cells = " ".join(f"{r.off_cpu_ns.get(s, 0.0) / 1e6:>24.3f}" for s in states)
        lines.append(f"  {r.tid:>8} {r.comm[:16]:<16} {r.wall_ns / 1e6:>10.3f} {r.on_cpu_ns / 1e6:>10.3f} {cells}")
    return "\n".join(lines) + "\n"


def state_split(profile: Profile, mask: np.ndarray) -> dict[str, float]:
    """Off-CPU ns per state label among the masked samples."""
    state = getattr(profile, "sample_state", np.zeros(profile.n_samples, dtype=np.uint8))
    out = {}
    for s in np.unique(state[mask]).tolist():
        if s == 0 or s == WAKER:
            continue
        out[STATE_LABELS[OffCpuState(s)]] = float(profile.sample_period[mask & (state == s)].sum())
    return out


def offcpu_summary(profile: Profile, view: str, mask: np.ndarray) -> tuple[list[str], dict]:
    """The lines a report prints before its table for an off-CPU recording, and the same as JSON."""
    state = getattr(profile, "sample_state", np.zeros(profile.n_samples, dtype=np.uint8))
    off = mask & (state > 0) & (state != WAKER)
    blocked = float(profile.sample_period[off].sum())
    split = state_split(profile, off)
    parts = ", ".join(f"{label} {ns / 1e6:,.3f} ms ({100.0 * ns / blocked if blocked else 0.0:.1f}%)"
                      for label, ns in sorted(split.items(), key=lambda kv: -kv[1]))
    lines = [f"# off-CPU: {blocked / 1e6:,.3f} ms blocked in {int(off.sum()):,} blocks"
             + (f"; by state at switch-out: {parts}" if parts else "")]
    threads = thread_times(profile, mask) if view == "wall" else []
    if view == "wall":
        lines.append(render_thread_times(threads).rstrip("\n"))
    lines.append(f"# view: {view}" + (" (weights in ns; folded output in microseconds)" if view != "on-cpu" else
                                      " (samples; --off-cpu or --wall for time)"))
    document = {
        "view": view, "blocked_ns": blocked, "blocks": int(off.sum()), "states_ns": split,
        "threads": [{"tid": t.tid, "pid": t.pid, "comm": t.comm, "wall_ns": t.wall_ns, "on_cpu_ns": t.on_cpu_ns,
                     "off_cpu_ns": t.off_cpu_ns, "first_ns": t.first_ns, "last_ns": t.last_ns} for t in threads],
    }
    return lines, document
