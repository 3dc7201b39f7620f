"""One capture window of one host, as the rows the fleet store keeps.

A decoded Profile has per-sample rows; a window ships per-(process, stack, stack end) rows with the sample count,
the summed period and the summed group-member deltas, plus the functions, frames and stacks they reference under
content hashes (the same stack gets the same id on every host, so the store keeps it once). Labels that describe a
process (executable, build-id, cgroup) come from a `ProcessLabeler` the caller injects: the agent reads /proc,
`hwprof record --store` the same, tests a dict.

A window is plain data (lists of ints and strings) so the spool can write it as JSON and send it unchanged later.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from hwprof.profile import Profile, StackEnd


@dataclass(frozen=True)
class ProcessLabels:
    executable: str = ""
    build_id: str = ""
    cgroup: str = ""


ProcessLabeler = Callable[[int, str], ProcessLabels]  # (pid, comm) -> labels


def stable_id(*parts: object) -> int:
    """A 64-bit content hash that every host computes the same way (Python's hash() is salted per process)."""
    digest = hashlib.blake2b("\0".join(map(str, parts)).encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return struct.unpack("<Q", digest)[0]


def stack_id_of(frame_ids: list[int]) -> int:
    return struct.unpack("<Q", hashlib.blake2b(np.asarray(frame_ids, dtype="<u8").tobytes(),
                                               digest_size=8).digest())[0]


@dataclass
class WindowBatch:
    """Everything one window adds to the store. Columns of `rows` are parallel lists."""

    window_id: int
    host: str
    start_ns: int                   # wall clock (unix ns) of the window's start
    duration_ns: int
    target: str
    event: str
    labels: dict[str, str]
    lost: int
    filtered: int                   # samples outside --comm/--cgroup, counted, not stored
    counter_names: list[str]
    functions: list[tuple[int, str, str, int]] = field(default_factory=list)     # id, name, module, kind
    frames: list[tuple[int, int, str, int, int]] = field(default_factory=list)   # id, function, file, line, inl
    stacks: list[tuple[int, list[int]]] = field(default_factory=list)            # id, frame ids root first
    rows: dict[str, list] = field(default_factory=dict)
    agent_cpu_ns: int = 0
    agent_rss_bytes: int = 0
    hwprof: str = ""

    @property
    def samples(self) -> int:
        return int(sum(self.rows.get("samples", ())))

    @property
    def n_rows(self) -> int:
        return len(self.rows.get("samples", ()))

    def to_json(self) -> str:
        # The fields as they are (json writes tuples as lists): dataclasses.asdict copies every row and tuple of
        # the window first, ~20 ms of a 10 s window's ~100 KB.
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WindowBatch:
        data = json.loads(text)
        data["functions"] = [tuple(f) for f in data["functions"]]
        data["frames"] = [tuple(f) for f in data["frames"]]
        data["stacks"] = [(s[0], list(s[1])) for s in data["stacks"]]
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> WindowBatch:
        return cls.from_json(Path(path).read_text())


ROW_COLUMNS = ("pid", "comm", "executable", "build_id", "cgroup", "stack_id", "stack_end", "samples", "period",
               "counter_values")


def window_from_profile(profile: Profile, *, host: str, start_ns: int, duration_ns: int, labels: dict[str, str],
                        labeler: ProcessLabeler, window_id: int | None = None,
                        keep: Callable[[int, str, ProcessLabels], bool] | None = None,
                        hwprof_version: str = "") -> WindowBatch:
    """Aggregate a decoded window into store rows. `keep(pid, comm, labels)` selects processes (--comm, --cgroup);
    samples it rejects are counted in `filtered`."""
    event = profile.meta.events[0] if profile.meta.events else ""
    if window_id is None:
        window_id = stable_id("window", host, start_ns, *sorted(labels.items()))
    batch = WindowBatch(window_id=window_id, host=host, start_ns=start_ns, duration_ns=duration_ns,
                        target=profile.meta.target, event=event, labels=dict(labels), lost=int(profile.meta.lost),
                        filtered=0, counter_names=list(profile.meta.weight_names), hwprof=hwprof_version)
    batch.rows = {name: [] for name in ROW_COLUMNS}
    n = profile.n_samples
    if n == 0:
        return batch
    comm_of = {pid: _process_comm(profile, pid) for pid in np.unique(profile.sample_pid).tolist()}
    pid_labels = {pid: labeler(pid, comm) for pid, comm in comm_of.items()}
    if keep is not None:
        kept_pids = [pid for pid in comm_of if keep(pid, comm_of[pid], pid_labels[pid])]
        mask = np.isin(profile.sample_pid, np.asarray(kept_pids, dtype=profile.sample_pid.dtype))
        batch.filtered = int(n - np.count_nonzero(mask))
    else:
        mask = np.ones(n, dtype=bool)
    pids = profile.sample_pid[mask].astype(np.int64)
    stacks = profile.sample_stack[mask].astype(np.int64)
    ends = profile.sample_end[mask].astype(np.int64)
    periods = profile.sample_period[mask].astype(np.float64)
    width = len(profile.meta.weight_names)
    counters = profile.counters.reshape(n, -1)[mask] if width else None
    key = np.stack([pids, stacks, ends], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse, minlength=len(uniq))
    period_sums = np.bincount(inverse, weights=periods, minlength=len(uniq))
    counter_sums = [np.bincount(inverse, weights=counters[:, i], minlength=len(uniq)) for i in range(width)]
    stack_ids = _intern_stacks(profile, np.unique(uniq[:, 1]), batch)
    rows = batch.rows
    for i, (pid, stack, end) in enumerate(uniq.tolist()):
        comm = comm_of[pid]
        plabels = pid_labels[pid]
        # The kernel reports pid -1 for a task caught while it exits (perf_event_pid: !pid_alive); the column is
        # the kernel's u32, so it is stored as the kernel wrote it (4294967295), never rejected or merged into 0.
        rows["pid"].append(int(pid) & 0xFFFFFFFF)
        rows["comm"].append(comm)
        rows["executable"].append(plabels.executable)
        rows["build_id"].append(plabels.build_id)
        rows["cgroup"].append(plabels.cgroup)
        rows["stack_id"].append(stack_ids.get(int(stack), 0))
        rows["stack_end"].append(int(end) if stack >= 0 else int(StackEnd.NO_STACK))
        rows["samples"].append(int(counts[i]))
        rows["period"].append(float(period_sums[i]))
        rows["counter_values"].append([float(c[i]) for c in counter_sums])
    return batch


def _process_comm(profile: Profile, pid: int) -> str:
    comm = profile.threads.get(pid)
    if comm:
        return comm
    tids = np.unique(profile.sample_tid[profile.sample_pid == pid]).tolist()
    for tid in tids:
        if profile.threads.get(tid):
            return profile.threads[tid]
    return f"[pid {pid}]"


def _intern_stacks(profile: Profile, stack_indexes: np.ndarray, batch: WindowBatch) -> dict[int, int]:
    """Hash every frame and stack that the window's rows reference; fill the batch's id tables."""
    frame_ids: dict[int, int] = {}
    function_seen: set[int] = set()
    frame_seen: set[int] = set()
    stack_seen: set[int] = set()
    out: dict[int, int] = {}
    for stack in stack_indexes.tolist():
        if stack < 0:
            continue
        ids = []
        for frame in profile.stack_frames(stack):
            fid = frame_ids.get(frame)
            if fid is None:
                name = profile.frame_label(frame)
                module = profile.string(int(profile.frame_module[frame])) or ""
                kind = int(profile.frame_kind[frame])
                function_id = stable_id("fn", name, module, kind)
                if function_id not in function_seen:
                    function_seen.add(function_id)
                    batch.functions.append((function_id, name, module, kind))
                file = profile.string(int(profile.frame_file[frame])) or ""
                line = max(int(profile.frame_line[frame]), 0)
                inlined = int(bool(profile.frame_inlined[frame]))
                fid = frame_ids[frame] = stable_id("frame", function_id, file, line, inlined)
                if fid not in frame_seen:
                    frame_seen.add(fid)
                    batch.frames.append((fid, function_id, file, line, inlined))
            ids.append(fid)
        sid = stack_id_of(ids)
        out[stack] = sid
        if sid not in stack_seen:  # two address-level stacks of the same functions and lines are one stack here
            stack_seen.add(sid)
            batch.stacks.append((sid, ids))
    return out
