"""What `hwprof report` computes from a Profile, and its text rendering.

Self and total ("children") shares are computed on the stack prefix tree, not per sample: a weight per tree node,
summed up the tree once by depth level, gives each node's subtree weight; a function's total is the sum over the
nodes where it first appears on a path (recursion counted once, as perf does). Self goes to the leaf-most frame
that is a real function (inlined frames are part of their caller's body, as in perf's Self column).

Per-function counter ratios (IPC, miss rates, MPKI, or "member per leader" for software groups) come from the
per-sample group deltas the sampler records with PERF_SAMPLE_READ, attributed to the function the sample was in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hwprof.definitions import (
    GroupRatio,
    StackQuality,
    canonical_event,
    group_ratios,
    ratio_sums,
    ratio_value,
    stack_quality,
)
from hwprof.errors import HwprofError
from hwprof.profile import Profile
from hwprof.terminal import printable

SAMPLE_KEYS = ("pid", "tid", "comm")
FRAME_KEYS = ("symbol", "dso")
SORT_KEYS = SAMPLE_KEYS + FRAME_KEYS

@dataclass(frozen=True)
class ReportOptions:
    sort: tuple[str, ...] = ("symbol",)
    pids: tuple[int, ...] = ()
    tids: tuple[int, ...] = ()
    comms: tuple[str, ...] = ()
    time: str | None = None        # "START,END": seconds from the first sample, or percentages "10%,20%"
    children: bool = True
    weight: str = "samples"        # samples | period | a group member's name
    limit: int = 50
    min_percent: float = 0.0


@dataclass(frozen=True)
class Row:
    keys: tuple[str, ...]
    self_weight: float
    total_weight: float
    self_percent: float
    total_percent: float
    samples: int
    ratios: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    source: str
    event: str
    other_events: list[str]
    samples: int
    total_weight: float
    weight: str
    lost: int
    quality: StackQuality
    sort: tuple[str, ...]
    children: bool
    rows: list[Row]
    ratio_names: list[str]
    notes: list[str]
    meta: dict

    def to_json(self) -> dict:
        out = asdict(self)
        out["quality"].pop("complete_symbolized")  # behind "score"
        out["quality"]["line"] = self.quality.line()
        out["quality"]["complete_share"] = self.quality.complete_share
        out["quality"]["score"] = self.quality.score
        return out


# --- selection ----------------------------------------------------------------------------------------------

def sample_mask(profile: Profile, opts: ReportOptions) -> np.ndarray:
    mask = np.ones(profile.n_samples, dtype=bool)
    if opts.pids:
        mask &= np.isin(profile.sample_pid, np.array(opts.pids))
    if opts.tids:
        mask &= np.isin(profile.sample_tid, np.array(opts.tids))
    if opts.comms:
        wanted = set(opts.comms)
        tids = [t for t, c in profile.threads.items() if c in wanted]
        mask &= np.isin(profile.sample_tid, np.array(tids, dtype=np.int64))
    if opts.time:
        start, end = parse_time_range(opts.time, profile)
        mask &= (profile.sample_time >= start) & (profile.sample_time <= end)
    return mask


def parse_time_range(text: str, profile: Profile) -> tuple[int, int]:
    """'START,END' in seconds from the first sample (either side may be empty), or 'A%,B%' of the duration."""
    parts = text.split(",")
    if len(parts) != 2:
        raise HwprofError(f"--time expects START,END (e.g. 0.5,2 or 10%,50%), got {text!r}")
    first = int(profile.sample_time.min()) if profile.n_samples else 0
    last = int(profile.sample_time.max()) if profile.n_samples else 0
    span = last - first
    bounds = []
    for part, default in zip(parts, (first, last), strict=True):
        part = part.strip()
        try:
            if not part:
                bounds.append(default)
            elif part.endswith("%"):
                bounds.append(first + int(span * float(part[:-1]) / 100.0))
            else:
                bounds.append(first + int(float(part) * 1e9))
        except ValueError:
            raise HwprofError(f"--time: {part!r} is not a number of seconds or a percentage") from None
    if bounds[0] > bounds[1]:
        raise HwprofError(f"--time: start {parts[0]} is after end {parts[1]}")
    return bounds[0], bounds[1]


def sample_weights(profile: Profile, weight: str) -> np.ndarray:
    if weight == "samples":
        return profile.sample_counts()
    if weight == "period":
        return profile.sample_period.astype(np.float64)
    names = profile.meta.weight_names
    for i, name in enumerate(names):
        if weight in (name, canonical_event(name)):
            return profile.counters[:, i]
    choices = ", ".join(["samples", "period", *names])
    raise HwprofError(f"unknown weight {weight!r} (choose from: {choices})")


# --- the tree arithmetic -----------------------------------------------------------------------------------

class StackTree:
    """Helpers over the profile's prefix tree, vectorised and leaf-centric: a capture can hold millions of stack
    nodes, but a report only ever climbs from the (far fewer) leaves its samples end in, so nothing node-sized is
    allocated."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.parent = profile.stack_parent
        self.frame = profile.stack_frame

    def self_owner(self, leaves: np.ndarray) -> np.ndarray:
        """The node that gets "self" for each leaf: the leaf-most non-inlined frame on its path."""
        owner = leaves.astype(np.int64)
        inlined = self.profile.frame_inlined
        if not inlined.any():  # the common case: each leaf owns itself
            return owner
        for _ in range(32):
            up = self.parent[owner].astype(np.int64)
            step = np.where(inlined[self.frame[owner]] & (up >= 0), up, owner)
            if np.array_equal(step, owner):
                break
            owner = step
        return owner

    def path_keys(self, leaves: np.ndarray, frame_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(leaf index, key) for every distinct key on each leaf's path to the root (recursion counted once);
        `frame_key`: the key of each frame."""
        cur = leaves.astype(np.int64)
        cols = []
        while True:
            alive = cur >= 0
            if not alive.any():
                break
            at = np.maximum(cur, 0)
            cols.append(np.where(alive, frame_key[self.frame[at]], -1))
            cur = np.where(alive, self.parent[at], -1)
        if not cols:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        matrix = np.stack(cols, axis=1)
        del cols
        matrix.sort(axis=1)
        distinct = matrix >= 0
        distinct[:, 1:] &= matrix[:, 1:] != matrix[:, :-1]
        rows, _ = np.nonzero(distinct)
        return rows, matrix[distinct]


def _frame_keys(profile: Profile, sort: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """An integer key per frame for the frame-level sort keys (symbol, dso), and the key texts."""
    frame_fields = [k for k in sort if k in FRAME_KEYS]
    interned: dict[tuple[str, ...], int] = {}
    out = np.zeros(len(profile.frame_function), dtype=np.int64)
    for f in range(len(out)):
        parts = []
        for k in frame_fields:
            if k == "symbol":
                parts.append(profile.frame_label(f))
            else:
                mod = profile.string(int(profile.frame_module[f]))
                parts.append(Path(mod).name if mod and mod.startswith("/") else (mod or "[unknown]"))
        key = tuple(parts)
        out[f] = interned.setdefault(key, len(interned))
    return out, list(interned)


def _sample_groups(profile: Profile, sort: tuple[str, ...], mask: np.ndarray) -> tuple[np.ndarray,
                                                                                       list[tuple[str, ...]]]:
    fields = [k for k in sort if k in SAMPLE_KEYS]
    if not fields:
        return np.zeros(profile.n_samples, dtype=np.int64), [()]
    columns = []
    for k in fields:
        if k == "pid":
            columns.append(profile.sample_pid.astype(np.int64))
        elif k == "tid":
            columns.append(profile.sample_tid.astype(np.int64))
        else:
            comms = sorted(set(profile.threads.values()) | {"[unknown]"})
            index = {c: i for i, c in enumerate(comms)}
            tid_comm = {t: index[c] for t, c in profile.threads.items()}
            unknown = index["[unknown]"]
            columns.append(np.array([tid_comm.get(int(t), unknown) for t in profile.sample_tid], dtype=np.int64))
    stacked = np.stack(columns, axis=1) if profile.n_samples else np.zeros((0, len(fields)), dtype=np.int64)
    from hwprof.pipeline.arrays import unique_rows

    uniq, inverse = unique_rows(stacked)
    labels = []
    for row in uniq.tolist():
        parts = []
        for k, v in zip(fields, row, strict=True):
            if k == "comm":
                comms = sorted(set(profile.threads.values()) | {"[unknown]"})
                parts.append(comms[v])
            else:
                parts.append(str(v))
        labels.append(tuple(parts))
    return inverse.reshape(-1), labels


def build_report(profile: Profile, opts: ReportOptions, source: str = "") -> Report:
    for key in opts.sort:
        if key not in SORT_KEYS:
            raise HwprofError(f"unknown sort key {key!r} (choose from: {', '.join(SORT_KEYS)})")
    mask = sample_mask(profile, opts)
    weights = sample_weights(profile, opts.weight)
    quality = stack_quality(profile, mask)
    total = float(weights[mask].sum())
    groups, group_labels = _sample_groups(profile, opts.sort, mask)
    frame_level = any(k in FRAME_KEYS for k in opts.sort)
    ratio_specs = group_ratios(profile.meta.weight_names)
    rows: list[Row] = []
    if frame_level:
        rows = _frame_rows(profile, opts, mask, weights, groups, group_labels, total, ratio_specs)
    else:
        for g, label in enumerate(group_labels):
            sel = mask & (groups == g)
            w = float(weights[sel].sum())
            if w <= 0:
                continue
            rows.append(Row(label, w, w, _pct(w, total), _pct(w, total), int(sel.sum()),
                            _ratios(profile.counters[sel].sum(axis=0), ratio_specs)))
    key = (lambda r: (-r.total_weight, -r.self_weight, r.keys)) if opts.children and frame_level else (
        lambda r: (-r.self_weight, r.keys))
    rows.sort(key=key)
    rows = [r for r in rows if max(r.self_percent, r.total_percent if opts.children else 0) >= opts.min_percent]
    meta = profile.meta
    return Report(
        source=source, event=meta.events[0] if meta.events else "", other_events=list(meta.events[1:]),
        samples=int(profile.sample_counts()[mask].sum()), total_weight=total, weight=opts.weight, lost=meta.lost,
        quality=quality,
        sort=opts.sort, children=opts.children, rows=rows[: opts.limit] if opts.limit else rows,
        ratio_names=[r.name for r in ratio_specs], notes=list(meta.notes),
        meta={"target": meta.target, "command": meta.command, "hostname": meta.hostname,
              "os_release": meta.os_release, "source": meta.source, "duration_ns": meta.duration_ns,
              "weight_names": meta.weight_names},
    )


def _frame_rows(profile: Profile, opts: ReportOptions, mask: np.ndarray, weights: np.ndarray, groups: np.ndarray,
                group_labels: list[tuple[str, ...]], total: float, ratio_specs: list[GroupRatio]) -> list[Row]:
    from hwprof.pipeline.arrays import unique_inverse

    tree = StackTree(profile)
    frame_key, key_labels = _frame_keys(profile, opts.sort)
    frame_key = frame_key.astype(np.int32)
    n_keys = len(key_labels)
    width = profile.counters.shape[1]
    rows = []
    for g, glabel in enumerate(group_labels):
        sel = mask & (groups == g) & (profile.sample_stack >= 0)
        if not sel.any():
            continue
        stacks = profile.sample_stack[sel].astype(np.int64)
        w = weights[sel]
        leaves, leaf_of_sample = unique_inverse(stacks)
        leaf_of_sample = leaf_of_sample.reshape(-1)
        leaf_w = np.bincount(leaf_of_sample, weights=w, minlength=len(leaves))
        leaf_n = np.bincount(leaf_of_sample, weights=profile.sample_counts()[sel], minlength=len(leaves))
        leaf_self = frame_key[profile.stack_frame[tree.self_owner(leaves)]] if len(leaves) else frame_key[:0]
        self_w = np.bincount(leaf_self, weights=leaf_w, minlength=n_keys)
        self_n = np.bincount(leaf_self, weights=leaf_n, minlength=n_keys)
        if opts.children:
            total_w = np.zeros(n_keys)
            for lo in range(0, len(leaves), 4096):  # bounded memory: the paths of 4096 stacks at a time
                part = slice(lo, lo + 4096)
                prow, pkey = tree.path_keys(leaves[part], frame_key)
                total_w += np.bincount(pkey, weights=leaf_w[part][prow], minlength=n_keys)
        else:
            total_w = self_w  # a self table (perf's --no-children): rows are what has self time, no path walk
        counters = np.zeros((n_keys, width))
        if width:
            np.add.at(counters, leaf_self[leaf_of_sample], profile.counters[sel])
        for k in np.nonzero((self_w > 0) | (total_w > 0))[0].tolist():
            label = _merge_labels(opts.sort, glabel, key_labels[k])
            rows.append(Row(label, float(self_w[k]), float(total_w[k]), _pct(self_w[k], total),
                            _pct(total_w[k], total), int(self_n[k]), _ratios(counters[k], ratio_specs)))
    return rows


def _merge_labels(sort: tuple[str, ...], sample_part: tuple[str, ...], frame_part: tuple[str, ...]) -> tuple:
    s, f = iter(sample_part), iter(frame_part)
    return tuple(next(s) if k in SAMPLE_KEYS else next(f) for k in sort)


def _pct(value: float, total: float) -> float:
    return 100.0 * float(value) / total if total else 0.0


def _ratios(sums: np.ndarray, specs: list[GroupRatio]) -> dict[str, float]:
    out = {}
    for r in specs:
        value = ratio_value(*ratio_sums(sums, r), r.factor)
        if value is not None:
            out[r.name] = value
    return out


# --- text rendering ----------------------------------------------------------------------------------------

_HEADINGS = {"symbol": "Symbol", "dso": "Shared Object", "pid": "Pid", "tid": "Tid", "comm": "Command"}


def render_text(report: Report) -> str:
    lines = [f"# hwprof report{(': ' + report.source) if report.source else ''}"]
    meta = report.meta
    if meta.get("target"):
        lines.append(f"# target: {printable(meta['target'])}")
    if meta.get("hostname"):
        captured = f"{meta['hostname']} ({meta.get('os_release', '')}) by {meta.get('source')}"
        lines.append(f"# captured on {printable(captured)}")
    weight = "" if report.weight == "samples" else f", weight {report.weight} total {report.total_weight:,.0f}"
    lines.append(f"# {report.samples:,} samples of event '{report.event}'{weight}")
    lines.append(f"# lost samples: {report.lost:,}")
    lines.append(f"# {report.quality.line()}")
    if report.other_events:
        lines.append(f"# the file also has samples of: {', '.join(report.other_events)} (see --event)")
    for note in report.notes:
        lines.append(f"# note: {printable(note)}")
    lines.append("#")
    frame_level = any(k in FRAME_KEYS for k in report.sort)
    head = []
    if report.children and frame_level:
        head.append(f"{'Children':>8}")
    head.append(f"{'Self':>8}")
    head.append(f"{'Samples':>8}")
    row_keys = [[printable(key) for key in row.keys] for row in report.rows]  # names come from outside
    widths = []
    for k in report.sort[:-1]:
        width = max([len(_HEADINGS[k])] + [len(keys[report.sort.index(k)]) for keys in row_keys]) if report.rows \
            else len(_HEADINGS[k])
        widths.append(min(width, 40))
    for k, w in zip(report.sort[:-1], widths, strict=True):
        head.append(f"{_HEADINGS[k]:<{w}}")
    ratio_names = report.ratio_names
    # Ratio columns stand before the last key (the symbol), whose width varies, so they line up.
    ratio_widths = [max(12, len(n)) for n in ratio_names]
    head.extend(f"{n:>{w}}" for n, w in zip(ratio_names, ratio_widths, strict=True))
    head.append(_HEADINGS[report.sort[-1]])
    lines.append("# " + "  ".join(head))
    for row, keys in zip(report.rows, row_keys, strict=True):
        cells = []
        if report.children and frame_level:
            cells.append(f"{row.total_percent:7.2f}%")
        cells.append(f"{row.self_percent:7.2f}%")
        cells.append(f"{row.samples:>8}")
        for value, w in zip(keys[:-1], widths, strict=True):
            cells.append(f"{value[:w]:<{w}}")
        cells.extend(f"{row.ratios[n]:>{w}.4g}" if n in row.ratios else f"{'-':>{w}}"
                     for n, w in zip(ratio_names, ratio_widths, strict=True))
        cells.append(keys[-1])
        lines.append("  " + "  ".join(cells))
    if not report.rows:
        lines.append("  (no samples match)")
    return "\n".join(lines) + "\n"


def render_call_graph(profile: Profile, mask: np.ndarray, weights: np.ndarray, min_percent: float = 0.5,
                      max_depth: int = 64) -> str:
    """A top-down (caller first) tree of function names with total percentages, branches below min_percent cut."""
    total = float(weights[mask].sum())
    if total <= 0:
        return "(no samples with stacks)\n"
    stacks = profile.sample_stack[mask].astype(np.int64)
    w = weights[mask]
    valid = stacks >= 0
    per_stack = np.bincount(stacks[valid], weights=w[valid], minlength=len(profile.stack_frame))
    labels = [printable(profile.frame_label(i)) for i in range(len(profile.frame_function))]
    tree: dict = {}
    for stack in np.nonzero(per_stack)[0].tolist():
        node = tree
        weight = float(per_stack[stack])
        for frame in profile.stack_frames(stack)[:max_depth]:
            name = labels[frame]
            entry = node.setdefault(name, [0.0, {}])
            entry[0] += weight
            node = entry[1]
    out: list[str] = []

    def walk(node: dict, prefix: str) -> None:
        items = sorted(node.items(), key=lambda kv: -kv[1][0])
        shown = [(k, v) for k, v in items if 100.0 * v[0] / total >= min_percent]
        for i, (name, (weight, children)) in enumerate(shown):
            last = i == len(shown) - 1
            out.append(f"{prefix}{'└─' if last else '├─'} {100.0 * weight / total:6.2f}%  {name}")
            walk(children, prefix + ("   " if last else "│  "))

    walk(tree, "")
    return "\n".join(out) + "\n"
