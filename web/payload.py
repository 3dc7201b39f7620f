"""The JSON payload the browser draws from: a Profile re-shaped into columns the page can aggregate fast.

Why this shape (it is the whole speed story of the web view):
- Frames of one function differ by address/line, but a flame graph merges them. The server merges the stack
  prefix tree by *function* once (numpy, level by level), so the page receives a call tree (`nodes`) whose size
  is the number of distinct call paths, not samples.
- Samples are binned by time on the server. Each (time bin, leaf node) pair becomes one `cell` carrying the
  summed weights (sample count, period of the sampling event, each counter delta). Selecting a time range on the
  page sums the cells of those bins; nothing per-sample ever crosses the wire, so 1M samples cost what their
  distinct (bin, path) pairs cost.
- Every string lives once in `strings`; numeric columns are little-endian typed arrays in base64
  (`{"dtype": "i4", "data": "..."}`), which `JSON.parse` + `atob` turn into typed arrays without a per-number parse.
Samples without any frame keep their weight under a pseudo-frame "[no stack]" so totals never shrink.
- Cells are already summed over threads, so a per-process or per-thread view is a payload of its own, built from
  the masked samples (SampleFilter) on the whole capture's time axis and call tree.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass

import numpy as np

from hwprof import definitions
from hwprof.definitions import group_ratios
from hwprof.offcpu.pairing import STATE_LABELS
from hwprof.profile import FrameKind, Profile
from hwprof.units import Pid, Tid

PAYLOAD_VERSION = 2  # 2: ratios are hwprof.definitions.group_ratios (names and columns changed)
MAX_TIME_BINS = 200
MAX_LINES = 20_000
NO_STACK_LABEL = "[no stack]"

def column(values: np.ndarray, dtype: str) -> dict:
    """A numeric column as base64 of its little-endian bytes; dtype is numpy's short code ('i4', 'f8', 'u1')."""
    array = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "data": base64.b64encode(array.tobytes()).decode("ascii")}


def int_column(values: np.ndarray) -> dict:
    """An integer column in the narrowest little-endian type that holds its range (most ids fit 1 or 2 bytes)."""
    values = np.asarray(values)
    lo = int(values.min()) if values.size else 0
    hi = int(values.max()) if values.size else 0
    for dtype in ("u1", "i1", "u2", "i2", "u4", "i4"):
        info = np.iinfo(np.dtype(dtype))
        if info.min <= lo and hi <= info.max:
            return column(values, dtype)
    raise ValueError(f"integer column out of 32-bit range: {lo}..{hi}")


def decode_column(col: dict) -> np.ndarray:
    """The inverse of column(), for tests and Python consumers of the API."""
    return np.frombuffer(base64.b64decode(col["data"]), dtype=np.dtype(col["dtype"]).newbyteorder("<"))


COUNTER_COLUMNS = 2  # the page's weight columns: samples, the sampling event's period, then each group member


def ratio_specs(member_names: list[str]) -> list[dict]:
    """The per-frame ratios the page offers: hwprof.definitions.group_ratios (what `hwprof report` shows, under
    the same names), as indices into the page's weight columns. The page computes each as the ratio of the
    summed deltas over the frame's samples; `den2` (>= 0) is a second column added to the denominator."""
    return [{"name": r.name, "num": COUNTER_COLUMNS + r.numerator, "den": COUNTER_COLUMNS + r.denominator,
             "den2": -1 if r.denominator_plus is None else COUNTER_COLUMNS + r.denominator_plus,
             "scale": r.factor, "unit": r.unit} for r in group_ratios(member_names)]


def function_keys(profile: Profile) -> tuple[np.ndarray, list[str], dict]:
    """Map every frame to a function id; return (frame->func, the extra strings needed, func columns).

    A function is (name, module): two frames of memcpy at different addresses merge, memcpy of two libraries
    does not. Frames without a symbol keep their module+offset label, like `perf report` keeps the address.
    """
    strings = profile.strings
    extra: list[str] = []
    extra_index: dict[str, int] = {}

    def intern(text: str) -> int:
        idx = extra_index.get(text)
        if idx is None:
            idx = extra_index[text] = len(strings) + len(extra)
            extra.append(text)
        return idx

    n_frames = len(profile.frame_function)
    name_idx = profile.frame_function.astype(np.int64).copy()
    for frame in np.nonzero(name_idx < 0)[0]:
        name_idx[frame] = intern(profile.frame_label(int(frame)))
    keys = name_idx * (len(strings) + len(extra) + 2) + (profile.frame_module.astype(np.int64) + 1)
    _, first, frame_func = np.unique(keys, return_index=True, return_inverse=True)
    funcs = {
        "name": name_idx[first],
        "module": profile.frame_module[first].astype(np.int64),
        "file": profile.frame_file[first].astype(np.int64),
        "kind": profile.frame_kind[first].astype(np.int64),
        "unknown": profile.frame_function[first] < 0,
    }
    # The "[no stack]" pseudo-function is appended last so sample totals keep stackless samples.
    nostack = intern(NO_STACK_LABEL)
    funcs = {
        "name": np.append(funcs["name"], nostack),
        "module": np.append(funcs["module"], -1),
        "file": np.append(funcs["file"], -1),
        "kind": np.append(funcs["kind"], int(FrameKind.UNKNOWN)),
        "unknown": np.append(funcs["unknown"], False),
    }
    assert len(frame_func) == n_frames
    return frame_func.astype(np.int64), extra, funcs


def stack_depths(parent: np.ndarray) -> np.ndarray:
    """Depth of every stack node (root = 0) by pointer jumping: each round doubles how far every node has looked
    up, so the cost is nodes x log2(depth) (chasing one level at a time cost the sum of all depths: 200 million
    steps on a deep 136k-sample capture)."""
    levels = _level_runs(parent) if len(parent) else None
    if levels is not None:
        return np.repeat(np.arange(len(levels) - 1, dtype=np.int64), np.diff(levels))
    jump = parent.astype(np.int64)
    depth = (jump >= 0).astype(np.int64)
    live = np.nonzero(jump >= 0)[0]
    while live.size:
        up = jump[live]
        depth[live] += depth[up]  # depth[up] is the distance from up to jump[up], read before this round's writes
        jump[live] = jump[up]
        live = live[jump[live] >= 0]
    return depth


def merge_call_tree(profile: Profile, frame_func: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge the stack prefix tree by function: returns (node_func, node_parent, stack->node).

    Nodes come out ordered by depth, so every parent precedes its children (the page relies on it).
    """
    n_stacks = len(profile.stack_parent)
    if n_stacks == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.full(0, -1, dtype=np.int64)
    levels = _level_runs(profile.stack_parent)
    if levels is not None:
        return _merge_levels(profile, frame_func, levels)
    parent = profile.stack_parent.astype(np.int64)
    stack_node = np.full(n_stacks, -1, dtype=np.int64)
    depth = stack_depths(parent)
    func_of_stack = frame_func[profile.stack_frame.astype(np.int64)]
    n_funcs = int(frame_func.max(initial=0)) + 2
    node_func_parts, node_parent_parts = [], []
    next_node = 0
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    for level in range(len(bounds) - 1):
        members = order[bounds[level]:bounds[level + 1]]
        if len(members) == 0:
            continue
        parent_node = np.where(parent[members] >= 0, stack_node[np.maximum(parent[members], 0)], -1)
        key = (parent_node + 1) * n_funcs + func_of_stack[members]
        unique_keys, inverse = np.unique(key, return_inverse=True)
        stack_node[members] = next_node + inverse
        node_parent_parts.append(unique_keys // n_funcs - 1)
        node_func_parts.append(unique_keys % n_funcs)
        next_node += len(unique_keys)
    return np.concatenate(node_func_parts), np.concatenate(node_parent_parts), stack_node


def _level_runs(parent: np.ndarray) -> list[int] | None:
    """Where each depth level starts and ends, for a table numbered level by level with parents in order (the
    decoder's, hwprof.pipeline.arrays.prefix_tree): each level is the run of nodes whose parents lie in the
    previous one, found by one binary search. None for a table numbered otherwise."""
    if np.any(parent[1:] < parent[:-1]):
        return None
    def first_at_least(value: int) -> int:  # in the table's own dtype: a Python int would cast the whole table
        return int(np.searchsorted(parent, np.asarray(value, dtype=parent.dtype), side="left"))

    bounds = [0, first_at_least(0)]
    while bounds[-1] < len(parent):
        bounds.append(first_at_least(bounds[-1]))
        if bounds[-1] <= bounds[-2]:
            return None  # a parent that does not precede its node: not level-numbered
    return bounds


def _merge_levels(profile: Profile, frame_func: np.ndarray,
                  bounds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """merge_call_tree for a level-numbered table: each level is a contiguous run of nodes, so the work goes level
    by level on slices, and nothing but the stack -> node map is as long as the table (deep captures have
    millions of nodes); ids are int32 (int64 only when nodes do not fit)."""
    parent, frame = profile.stack_parent, profile.stack_frame
    n_funcs = int(frame_func.max(initial=0)) + 2
    stack_node = np.empty(len(parent), dtype=np.int32 if len(parent) < 2**31 else np.int64)
    node_func_parts, node_parent_parts = [], []
    next_node = 0
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi == lo:
            continue
        up = parent[lo:hi]
        parent_node = np.where(up >= 0, stack_node[np.maximum(up, 0)], -1).astype(np.int64)
        key = (parent_node + 1) * n_funcs + frame_func[frame[lo:hi]]
        # np.unique(key, return_inverse=True), by a stable sort: a level's keys come nearly sorted (its nodes are
        # numbered in parent order), which a run-detecting sort takes in close to one pass.
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        new = np.empty(len(ordered), dtype=bool)
        new[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        unique_keys = ordered[new]
        stack_node[lo + order] = next_node + np.cumsum(new) - 1
        node_parent_parts.append((unique_keys // n_funcs - 1).astype(np.int32))
        node_func_parts.append((unique_keys % n_funcs).astype(np.int32))
        next_node += len(unique_keys)
    return np.concatenate(node_func_parts), np.concatenate(node_parent_parts), stack_node


OFFCPU_WEIGHTS = ("on-CPU ns", "off-CPU ns", "wall ns")


TIMELINE_THREADS = 12
TIMELINE_BLOCKS = 20_000


def offcpu_timeline(profile: Profile, start_ns: int) -> dict | None:
    """Each busiest thread's blocked intervals over the capture, for the page's thread timeline (off-CPU recordings).

    Per thread (the TIMELINE_THREADS with the most wall time): its span (first sample or block to the end of its
    last), and per block its start and length in ns from `start_ns` and its state (hwprof.offcpu.pairing.OffCpuState);
    the time between blocks is on-CPU. Beyond TIMELINE_BLOCKS the shortest blocks are left out, and counted.
    """
    state = profile.sample_state
    if state is None or not np.any(state):
        return None
    tid = profile.sample_tid.astype(np.int64)
    period = profile.sample_period.astype(np.float64)
    threads, inverse = np.unique(tid, return_inverse=True)
    wall = np.bincount(inverse, weights=period, minlength=len(threads))
    top = threads[np.argsort(-wall, kind="stable")[:TIMELINE_THREADS]]
    row_of = {int(t): i for i, t in enumerate(top.tolist())}
    time = profile.sample_time.astype(np.int64) - int(start_ns)
    end = time + np.where(state > 0, period, 0).astype(np.int64)
    rows = []
    for t in top.tolist():
        m = tid == t
        rows.append({"tid": int(t), "comm": profile.threads.get(int(t), ""), "first_ns": int(time[m].min()),
                     "last_ns": int(end[m].max()), "wall_ns": float(period[m].sum())})
    blocked = np.nonzero((state > 0) & np.isin(tid, top))[0]
    dropped = 0
    if len(blocked) > TIMELINE_BLOCKS:
        keep = np.sort(blocked[np.argsort(-period[blocked], kind="stable")[:TIMELINE_BLOCKS]])
        dropped = int(len(blocked) - len(keep))
        blocked = keep
    return {
        "threads": rows,
        "states": [label for _, label in sorted(STATE_LABELS.items())],
        "row": int_column(np.array([row_of[int(t)] for t in tid[blocked].tolist()], dtype=np.int64)),
        "start_ns": column(time[blocked].astype(np.float64), "f8"),
        "duration_ns": column(period[blocked], "f8"),
        "state": int_column(state[blocked].astype(np.int64)),
        "dropped": dropped,
    }


def weight_matrix(profile: Profile) -> tuple[list[str], np.ndarray]:
    """Columns the page can weigh by: samples, the sampling event's period, then each counter delta."""
    event = profile.meta.events[0] if profile.meta.events else "period"
    names = ["samples", event]
    cols = [profile.sample_counts(), profile.sample_period.astype(np.float64)]
    counters = profile.counters.reshape(profile.n_samples, -1) if profile.n_samples else profile.counters
    for i, name in enumerate(profile.meta.weight_names):
        names.append(name)
        cols.append(counters[:, i].astype(np.float64) if profile.n_samples else np.zeros(0))
    state = profile.sample_state
    if state is not None and np.any(state):
        # An off-CPU recording: a sample is an on-CPU sample or a blocked interval weighted in ns, so "samples"
        # counts on-CPU samples only, and on-CPU / off-CPU / wall time are extra weight choices, last (no ratios).
        period = profile.sample_period.astype(np.float64)
        on = state == 0
        cols[0] = on.astype(np.float64)
        names += list(OFFCPU_WEIGHTS)
        cols += [np.where(on, period, 0.0), np.where(on, 0.0, period), period]
    return names, np.vstack(cols) if cols else np.zeros((0, profile.n_samples))


def stack_quality(profile: Profile) -> dict:
    """Counts behind the stack-quality meter (hwprof.definitions.stack_quality), with the reasons a user can act
    on."""
    q = definitions.stack_quality(profile)
    out = {"samples": q.samples, "complete": q.complete, "truncated": q.truncated, "unknown_frame": q.unknown,
           "no_stack": q.no_stack, "unsymbolized_leaf": q.unsymbolized_leaf, "lost": int(profile.meta.lost),
           "stopped": q.stopped + sum(n for _, n in q.reasons)}
    reasons = []
    if out["truncated"]:
        reasons.append("stacks hit the maximum depth (raise --max-stack / kernel.perf_event_max_stack)")
    if out["unknown_frame"]:
        reasons.append("the unwinder stopped at a frame it could not map (code without frame pointers: "
                       "try --call-graph dwarf, or build with -fno-omit-frame-pointer)")
    if q.stopped:
        reasons.append("stacks that stopped before a real bottom (_start, start_thread, clone): frame-pointer chains "
                       "end early in code without frame pointers: try --call-graph dwarf")
    reasons += [f"dwarf unwinding stopped: {label} ({n} samples)" for label, n in q.reasons if n]
    if out["no_stack"]:
        reasons.append("samples without a callchain (recorded without -g, or taken in a context without one)")
    if out["unsymbolized_leaf"]:
        reasons.append("leaf frames without a symbol (stripped binary: install debug info or enable debuginfod)")
    if out["lost"]:
        reasons.append(f"{out['lost']} records were lost (ring buffer overflow: raise --mmap-pages or lower -F)")
    out["reasons"] = reasons
    out["score"] = q.score
    return out


def time_bins(times: np.ndarray, max_bins: int = MAX_TIME_BINS,
              axis: np.ndarray | None = None) -> tuple[int, int, int, np.ndarray]:
    """(start, bin width, bin count, bin per sample): equal-width bins over the capture, at most max_bins.

    `axis` (all the capture's sample times) fixes the bins when `times` are a subset, so a filtered view's time
    strip lines up with the whole capture's.
    """
    axis = times if axis is None else axis
    if len(axis) == 0:
        return 0, 1, 1, np.zeros(0, dtype=np.int64)
    start = int(axis.min())
    span = int(axis.max()) - start + 1
    n_bins = int(min(max_bins, max(1, span // 1000)))  # never below 1 us per bin
    width = -(-span // n_bins)
    bins = ((times.astype(np.int64) - start) // width).astype(np.int64)
    return start, width, n_bins, np.clip(bins, 0, n_bins - 1)


@dataclass(frozen=True)
class SampleFilter:
    """Which samples a view keeps: one process, one thread, or both (None = any)."""

    pid: Pid | None = None
    tid: Tid | None = None

    def __bool__(self) -> bool:
        return self.pid is not None or self.tid is not None

    def mask(self, profile: Profile) -> np.ndarray:
        keep = np.ones(profile.n_samples, dtype=bool)
        if self.pid is not None:
            keep &= profile.sample_pid == self.pid
        if self.tid is not None:
            keep &= profile.sample_tid == self.tid
        return keep

    def describe(self) -> str:
        return " ".join(f"{k} {v}" for k, v in (("pid", self.pid), ("tid", self.tid)) if v is not None)


def select_samples(profile: Profile, keep: np.ndarray) -> Profile:
    """The profile restricted to the samples in `keep` (Profile.select)."""
    return profile.select(keep)


def thread_list(profile: Profile) -> list[dict]:
    """Every (pid, tid) with samples, busiest first: what the page's thread selector offers."""
    if not profile.n_samples:
        return []
    key = profile.sample_pid.astype(np.int64) << 32 | (profile.sample_tid.astype(np.int64) & 0xFFFFFFFF)
    uniq, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=profile.sample_counts(), minlength=len(uniq)).astype(np.int64)
    order = np.lexsort((uniq, -counts))
    out = []
    for k, n in zip(uniq[order], counts[order], strict=True):
        pid, tid = int(np.int32(k >> 32)), int(np.int32(k & 0xFFFFFFFF))
        out.append({"pid": pid, "tid": tid, "comm": profile.threads.get(tid, ""), "samples": int(n)})
    return out


def build_payload(profile: Profile, *, title: str = "", entry: dict | None = None,
                  max_bins: int = MAX_TIME_BINS, sample_filter: SampleFilter | None = None) -> dict:
    """The page's view of one profile (or of the samples `sample_filter` keeps), as a JSON-ready dict.

    A filtered payload keeps the whole capture's time bins and thread list, so the page can switch between
    threads without its time strip or selector changing shape.
    """
    sample_filter = sample_filter or SampleFilter()
    threads_seen = thread_list(profile)
    axis = profile.sample_time
    if sample_filter:
        profile = select_samples(profile, sample_filter.mask(profile))
    frame_func, extra_strings, funcs = function_keys(profile)
    strings = list(profile.strings) + extra_strings
    n_funcs = len(funcs["name"])
    nostack_func = n_funcs - 1
    node_func, node_parent, stack_node = merge_call_tree(profile, frame_func)
    # The "[no stack]" root is node 0, so parents stay sorted (the page rebuilds them from child counts).
    nostack_node = 0
    node_func = np.concatenate([np.array([nostack_func], dtype=node_func.dtype), node_func])
    node_parent = np.concatenate([np.array([-1], dtype=node_parent.dtype), node_parent])
    node_parent[1:][node_parent[1:] >= 0] += 1
    stack_node = stack_node + 1
    sample_stack = profile.sample_stack.astype(np.int64)
    if len(stack_node):
        sample_node = np.where(sample_stack >= 0, stack_node[np.maximum(sample_stack, 0)], nostack_node)
    else:
        sample_node = np.full(profile.n_samples, nostack_node, dtype=np.int64)
    n_roots = int(np.count_nonzero(node_parent < 0))
    if np.any(node_parent[n_roots:] < 0) or np.any(np.diff(node_parent[n_roots:]) < 0):
        raise AssertionError("merged call tree is not in breadth-first, parent-grouped order")
    child_count = np.bincount(node_parent[node_parent >= 0], minlength=len(node_func))
    weight_names, weights = weight_matrix(profile)

    start, width, n_bins, sample_bin = time_bins(profile.sample_time, max_bins, axis)
    n_nodes = len(node_func)
    cell_key = sample_bin * n_nodes + sample_node
    cell_keys, cell_of_sample = np.unique(cell_key, return_inverse=True)
    cell_bin = cell_keys // n_nodes
    cell_node = cell_keys % n_nodes
    cell_weights = [np.bincount(cell_of_sample, weights=w, minlength=len(cell_keys)) for w in weights]
    bin_offsets = np.searchsorted(cell_bin, np.arange(n_bins + 1))

    # Source lines: self weight of each (function, file, line) at the leaf, for the "where in the source" table.
    lines = {"func": [], "file": [], "line": [], "samples": []}
    has_stack = sample_stack >= 0
    if has_stack.any():
        leaf_frame = profile.stack_frame[sample_stack[has_stack]].astype(np.int64)
        with_line = profile.frame_file[leaf_frame] >= 0
        if with_line.any():
            lf = leaf_frame[with_line]
            func = frame_func[lf]
            file = profile.frame_file[lf].astype(np.int64)
            line = np.maximum(profile.frame_line[lf].astype(np.int64), 0)
            # One int64 key per (function, file, line): a flat sort is an order of magnitude faster than axis=0.
            n_file, n_line = int(file.max()) + 1, int(line.max()) + 1
            key = (func * n_file + file) * n_line + line
            if profile.sample_count is None:
                uniq, counts = np.unique(key, return_counts=True)
            else:  # an aggregated profile: each row stands for sample_count samples
                uniq, inverse = np.unique(key, return_inverse=True)
                row_counts = profile.sample_count[has_stack][with_line]
                counts = np.bincount(inverse.reshape(-1), weights=row_counts, minlength=len(uniq)).astype(np.int64)
            if len(uniq) > MAX_LINES:  # the hottest lines; a function's own file stays in `funcs`
                keep = np.sort(np.argsort(counts, kind="stable")[-MAX_LINES:])
                uniq, counts = uniq[keep], counts[keep]
            lines = {"func": int_column(uniq // (n_file * n_line)), "file": int_column(uniq // n_line % n_file),
                     "line": int_column(uniq % n_line), "samples": int_column(counts)}
    if isinstance(lines["func"], list):
        lines = {k: column(np.zeros(0), "i4") for k in lines}

    meta = asdict(profile.meta)
    meta["n_samples"] = profile.total_samples
    threads = {str(k): v for k, v in sorted(profile.threads.items())}
    return {
        "version": PAYLOAD_VERSION,
        "title": title or profile.meta.target or "profile",
        "entry": entry or {},
        "meta": meta,
        "threads": threads,
        "thread_list": threads_seen,
        "filter": {"pid": sample_filter.pid, "tid": sample_filter.tid},
        "strings": strings,
        "funcs": {
            "name": int_column(funcs["name"]),
            "module": int_column(funcs["module"]),
            "file": int_column(funcs["file"]),
            "kind": int_column(funcs["kind"]),
        },
        "kinds": [k.name.lower() for k in FrameKind],
        # Nodes are in breadth-first order grouped by parent: roots first (parent -1), then each node's children
        # contiguous and in parent order, so the child counts alone rebuild every parent (see node_parents()).
        "nodes": {"func": int_column(node_func), "roots": n_roots,
                  "children": int_column(child_count)},
        "weights": weight_names,
        "ratios": ratio_specs(list(profile.meta.weight_names)),
        "time": {"start_ns": start, "bin_ns": width, "n_bins": n_bins},
        "timeline": offcpu_timeline(profile, start),
        "cells": {
            "bin_offsets": column(bin_offsets, "i4"),
            "node": int_column(cell_node),
            # float32: 7 significant digits per cell, the page shows 3-4; sums are taken in float64 in the page.
            "weights": [int_column(cell_weights[0])] + [column(w, "f4") for w in cell_weights[1:]],
        },
        "lines": lines,
        "quality": stack_quality(profile),
    }


def build_preview(payload: dict, min_share: float = 1 / 4096) -> dict:
    """A few-kilobyte first picture of a big profile: the call paths of at least `min_share` of the samples
    (one pixel of a 4096-pixel-wide graph), with exact totals; everything thinner is left to the merged blocks.

    The page draws it while the full payload is still on its way, then replaces it.
    """
    func = decode_column(payload["nodes"]["func"]).astype(np.int64)
    parent = node_parents(payload["nodes"])
    n = len(func)
    cell_node = decode_column(payload["cells"]["node"]).astype(np.int64)
    selfs = [np.bincount(cell_node, weights=decode_column(w).astype(np.float64), minlength=n)
             for w in payload["cells"]["weights"]]
    totals = [s.copy() for s in selfs]
    depth = stack_depths(parent)
    for level in range(int(depth.max(initial=0)), 0, -1):
        members = np.nonzero(depth == level)[0]
        for t in totals:
            np.add.at(t, parent[members], t[members])
    root_total = float(totals[0][parent < 0].sum())
    keep = np.nonzero(totals[0] >= max(root_total * min_share, 1e-12))[0]  # ancestors are at least as heavy
    remap = np.full(n, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    strings = payload["strings"]
    names = decode_column(payload["funcs"]["name"])
    modules = decode_column(payload["funcs"]["module"])
    kinds = decode_column(payload["funcs"]["kind"])
    return {
        "version": PAYLOAD_VERSION,
        "preview": True,
        "weights": payload["weights"],
        "kinds": payload["kinds"],
        "labels": [strings[names[f]] for f in func[keep]],
        "modules": [strings[modules[f]] if modules[f] >= 0 else "" for f in func[keep]],
        "kind": [int(kinds[f]) for f in func[keep]],
        "parent": [int(remap[p]) if p >= 0 else -1 for p in parent[keep]],
        "total": [[round(float(x)) for x in t[keep]] for t in totals],  # self = total - children's totals
    }


def node_parents(nodes: dict) -> np.ndarray:
    """Rebuild the parent of every node from a payload's `nodes` (the page does the same in model.js)."""
    children = decode_column(nodes["children"]).astype(np.int64)
    parent = np.full(len(children), -1, dtype=np.int64)
    parent[nodes["roots"]:] = np.repeat(np.arange(len(children)), children)
    return parent


def dumps_payload(payload: dict) -> str:
    """JSON text safe to embed in HTML: '<', '>' and '&' are escaped so no name can close a <script> element."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")

