"""The one exporter registry: every format a profile (or a selection in it) can be exported to, for the CLI
(`hwprof report --format NAME`, `--folded`, `--html FILE`) and the web view (`/api/profile/ID/export/NAME`, the
page's export links, the exports embedded in a self-contained page). Adding a format is one `register()` call.

A selection is what the page shows: a time range (ns on the perf clock, as in the time strip), optionally one
thread, optionally the subtree under a zoomed call path (function names root first). Exports carry full stacks
from the root, so a zoomed export opens in another tool at the same place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hwprof.web.payload import function_keys, merge_call_tree

from hwprof.errors import HwprofError
from hwprof.folded import clean_frame, profile_folded
from hwprof.profile import Profile


@dataclass(frozen=True)
class ExportView:
    """What to export: the samples kept, what each weighs (None: one per sample), a title."""

    mask: np.ndarray
    weights: np.ndarray | None = None
    title: str = ""


@dataclass(frozen=True)
class Exporter:
    name: str                                        # the CLI's --format value and the URL's last part
    media_type: str
    suffix: str                                      # file name suffix, after the profile's id
    render: Callable[[Profile, ExportView], bytes]
    description: str
    embeddable: bool = True                          # also carried inside a self-contained page (offline)


EXPORTERS: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    EXPORTERS[exporter.name] = exporter
    return exporter


def exporter(name: str) -> Exporter:
    found = EXPORTERS.get(name)
    if found is None:
        raise HwprofError(f"unknown export format {name!r} (choose from: {', '.join(EXPORTERS)})")
    return found


@dataclass(frozen=True)
class Selection:
    start_ns: int | None = None        # inclusive, absolute perf-clock time
    end_ns: int | None = None          # exclusive
    tid: int | None = None
    focus: tuple[str, ...] = ()        # call path root first; empty = the whole tree
    pid: int | None = None

    @classmethod
    def from_query(cls, args) -> Selection:
        """Parse ?start=&end=&tid=&pid=&focus= (focus: names joined by ';'); bad values are a clear error."""
        def number(name: str) -> int | None:
            raw = args.get(name)
            if raw in (None, ""):
                return None
            try:
                return int(raw)
            except ValueError:
                raise HwprofError(f"{name} must be an integer, got {raw[:40]!r}") from None

        focus = args.get("focus") or ""
        return cls(number("start"), number("end"), number("tid"), tuple(focus.split(";")) if focus else (),
                   number("pid"))


def selection_mask(profile: Profile, selection: Selection) -> np.ndarray:
    mask = np.ones(profile.n_samples, dtype=bool)
    times = profile.sample_time.astype(np.int64)
    if selection.start_ns is not None:
        mask &= times >= selection.start_ns
    if selection.end_ns is not None:
        mask &= times < selection.end_ns
    if selection.tid is not None:
        mask &= profile.sample_tid == selection.tid
    if selection.pid is not None:
        mask &= profile.sample_pid == selection.pid
    if selection.focus:
        mask &= _under_path(profile, selection.focus)
    return mask


def _under_path(profile: Profile, path: tuple[str, ...]) -> np.ndarray:
    """Samples whose merged call path starts with `path` (function labels as the page shows them)."""
    frame_func, extra, funcs = function_keys(profile)
    strings = list(profile.strings) + extra
    node_func, node_parent, stack_node = merge_call_tree(profile, frame_func)
    names = np.array([strings[i] for i in funcs["name"]], dtype=object)
    node_names = names[node_func]
    # Walk the path level by level: the nodes at depth d whose name matches path[d] and whose parent matched.
    target = (node_parent < 0) & (node_names == path[0])
    for name in path[1:]:
        target = np.isin(node_parent, np.nonzero(target)[0]) & (node_names == name)
    # Every descendant of a target node is inside; parents precede children, so one ordered pass suffices.
    inside = target.copy()
    for node in range(len(node_func)):
        p = node_parent[node]
        if p >= 0 and inside[p]:
            inside[node] = True
    stacks = profile.sample_stack.astype(np.int64)
    out = np.zeros(profile.n_samples, dtype=bool)
    has = stacks >= 0
    out[has] = inside[stack_node[stacks[has]]]
    return out


def folded_text(profile: Profile, mask: np.ndarray, weights: np.ndarray | None = None) -> str:
    """Folded lines; by default each sample weighs its count (an aggregated profile's rows stand for many)."""
    weights = profile.sample_counts() if weights is None else weights
    return "".join(line + "\n" for line in profile_folded(profile, weights=weights, mask=mask))


def speedscope_document(profile: Profile, mask: np.ndarray, name: str = "") -> dict:
    """A speedscope file (https://www.speedscope.app/file-format-schema.json) with one sampled profile per
    weight: samples, then the sampling event's period, so speedscope's weight switcher shows both."""
    frame_func, extra, funcs = function_keys(profile)
    strings = list(profile.strings) + extra
    frames = []
    for i in range(len(funcs["name"]) - 1):
        frame = {"name": clean_frame(strings[funcs["name"][i]])}
        if funcs["file"][i] >= 0:
            frame["file"] = strings[funcs["file"][i]]
        if funcs["module"][i] >= 0 and funcs["file"][i] < 0:
            frame["file"] = strings[funcs["module"][i]]
        frames.append(frame)
    stacks = profile.sample_stack.astype(np.int64)
    sel = mask & (stacks >= 0)
    uniq, inverse = np.unique(stacks[sel], return_inverse=True)
    counts = np.bincount(inverse, weights=profile.sample_counts()[sel], minlength=len(uniq))
    periods = np.bincount(inverse, weights=profile.sample_period[sel].astype(np.float64), minlength=len(uniq))
    samples = [[int(frame_func[f]) for f in profile.stack_frames(int(s))] for s in uniq]
    event = profile.meta.events[0] if profile.meta.events else "period"
    unit = "nanoseconds" if event.split(":")[0] in ("cpu-clock", "task-clock") else "none"
    title = name or profile.meta.target or "hwprof profile"

    def one(label: str, weights: np.ndarray, weight_unit: str) -> dict:
        total = float(weights.sum())
        return {"type": "sampled", "name": f"{title} ({label})", "unit": weight_unit, "startValue": 0,
                "endValue": total, "samples": samples, "weights": [float(w) for w in weights]}

    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "exporter": "hwprof",
        "name": title,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [one("samples", counts, "none"), one(event, periods, unit)],
    }


def export(profile: Profile, fmt: str, selection: Selection = Selection(), name: str = "") -> bytes:
    """A selection of a profile in one registered format (the web view's entry point)."""
    return exporter(fmt).render(profile, ExportView(selection_mask(profile, selection), None, name))


def _folded(profile: Profile, view: ExportView) -> bytes:
    return folded_text(profile, view.mask, view.weights).encode()


def _speedscope(profile: Profile, view: ExportView) -> bytes:
    return json.dumps(speedscope_document(profile, view.mask, view.title), separators=(",", ":")).encode()


def _pprof(profile: Profile, view: ExportView) -> bytes:
    from hwprof.web.pprof import pprof_bytes

    return pprof_bytes(profile, view.mask)


def _html(profile: Profile, view: ExportView) -> bytes:
    from hwprof.web.payload import select_samples
    from hwprof.web.report import render_html

    chosen = profile if view.mask.all() else select_samples(profile, view.mask)
    return render_html(chosen, title=view.title or None).encode()


register(Exporter("folded", "text/plain; charset=utf-8", "folded.txt", _folded,
                  "folded stacks, one 'a;b;c N' line per unique stack (flamegraph.pl, speedscope, inferno)"))
register(Exporter("speedscope", "application/json", "speedscope.json", _speedscope,
                  "speedscope JSON: samples and the sampling event's period as two weights"))
register(Exporter("pprof", "application/octet-stream", "pb.gz", _pprof,
                  "pprof: gzip-compressed profile.proto with file:line per frame (go tool pprof)"))
register(Exporter("html", "text/html; charset=utf-8", "html", _html,
                  "the flame graph page as one self-contained HTML file (works offline)", embeddable=False))
