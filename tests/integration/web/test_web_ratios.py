"""Counter ratios are right where they are shown: the demo's `{cpu-clock,page-faults}` recording, checked against
the raw group reads of the same file.

The expected numbers are computed here from the file alone (the record parser, `nm`, the MMAP2 records and the
callchains), not by the pipeline: per sample the delta of each member since that counter instance's previous read
(per STREAM_ID), summed over the samples of a frame. Every ratio the report and the page show must be that ratio of
sums; the page offers exactly the report's ratios, under the same names, each once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from hwprof.perf.abi import RecordType
from hwprof.perf.records import SampleLayout, iter_records, parse_record, parse_sample
from hwprof.perfdata.reader import PerfDataFile

REPO = Path(__file__).resolve().parents[3]
CONTEXT_MARKERS = 0xFFFFFFFFFFFFF000  # PERF_CONTEXT_* entries of a callchain


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> tuple[Path, Path]:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("needs a C compiler")
    work = tmp_path_factory.mktemp("ratios")
    binary = work / "demo-workload"
    subprocess.run([cc, "-O2", "-g", "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls", "-fno-shrink-wrap",
                    "-o", str(binary), str(REPO / "demo" / "workload.c")], check=True)
    data = work / "demo.perf.data"
    proc = subprocess.run([sys.executable, "-m", "hwprof", "record", "-q", "-g", "-F", "999", "-e",
                           "{cpu-clock,page-faults}", "-o", str(data), "--", str(binary), "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return data, binary


def _symbols(binary: Path) -> list[tuple[int, int, str]]:
    out = []
    listing = subprocess.run(["nm", "-S", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            out.append((int(parts[0], 16), int(parts[0], 16) + int(parts[1], 16), parts[3]))
    return out


def _raw_paths_and_deltas(data: Path, binary: Path) -> list[tuple[tuple[str, ...], list[float], bool]]:
    """(the workload's functions caller-first, member deltas, whether the leaf is in the kernel) per sample, from
    the raw records."""
    symbols = _symbols(binary)
    maps = []
    last: dict[int, list[int]] = {}
    out = []
    with PerfDataFile(data) as f:
        layout = SampleLayout.from_attr(f.attrs[0].attr)
        for chunk in f.chunks():
            for offset, rtype, _misc, _size in iter_records(chunk):
                if rtype in (RecordType.MMAP, RecordType.MMAP2):
                    rec = parse_record(chunk, offset, layout)
                    if rec.filename == str(binary):
                        maps.append(rec)
                    continue
                if rtype != RecordType.SAMPLE:
                    continue
                s = parse_sample(chunk, offset, layout)
                values = [v.raw for v in s.read]
                before = last.get(s.stream_id)
                last[s.stream_id] = values
                deltas = [v - (before[i] if before else 0) for i, v in enumerate(values)]
                names = []
                user = [a for a in s.callchain if a < CONTEXT_MARKERS and a < (1 << 47)]
                for depth, addr in enumerate(user):
                    lookup = addr if depth == 0 else addr - 1  # a return address: its call is just before it
                    for m in maps:
                        if m.start <= lookup < m.start + m.length:
                            file_offset = lookup - m.start + m.pgoff
                            names.append(next((n for lo, hi, n in symbols if lo <= file_offset < hi), "?"))
                frames = [a for a in s.callchain if a < CONTEXT_MARKERS]
                out.append((tuple(reversed(names)), deltas, bool(frames) and frames[0] >= (1 << 47)))
    return out


def _expected(samples, path: tuple[str, ...]) -> tuple[int, list[float]]:
    """Samples whose workload path runs through `path` (a frame of the flame graph), and their summed deltas."""
    n, sums = 0, defaultdict(float)
    for names, deltas, _kernel_leaf in samples:
        if path[0] in names and names[names.index(path[0]):][:len(path)] == path:
            n += 1
            for i, d in enumerate(deltas):
                sums[i] += d
    return n, [sums[0], sums[1]]


def _page_frame_totals(payload: dict, path: tuple[str, ...]) -> np.ndarray:
    """What the page sums for one frame: the cells of the node's subtree, per weight column."""
    from hwprof.web.payload import decode_column, node_parents

    strings = payload["strings"]
    func_name = decode_column(payload["funcs"]["name"])
    node_func = decode_column(payload["nodes"]["func"])
    parents = node_parents(payload["nodes"])
    names = [strings[func_name[f]] for f in node_func]

    def node_path(node: int) -> tuple[str, ...]:
        out = []
        while node >= 0:
            out.append(names[node])
            node = parents[node]
        return tuple(reversed(out))

    targets = {n for n in range(len(names)) if node_path(n)[-len(path):] == path}
    assert len(targets) == 1, (path, [node_path(n) for n in targets])
    (target,) = targets
    cells = payload["cells"]
    cell_node = decode_column(cells["node"])
    columns = np.vstack([decode_column(c).astype(np.float64) for c in cells["weights"]])
    inside = np.zeros(len(names), dtype=bool)
    for n in range(len(names)):
        m = n
        while m >= 0 and m != target:
            m = parents[m]
        inside[n] = m == target
    return columns[:, inside[cell_node]].sum(axis=1)


def test_the_page_offers_the_reports_ratios_each_once_and_they_equal_the_raw_group_reads(capture):
    from hwprof.symbolize import Symbolizer
    from hwprof.web.payload import build_payload

    from hwprof.pipeline import decode_file
    from hwprof.report import ReportOptions, build_report

    data, binary = capture
    profile = decode_file(data, Symbolizer())
    payload = build_payload(profile)
    report = build_report(profile, ReportOptions(limit=100000), source=str(data))
    # Offered: only meaningful pairs, once each, labelled as the report labels them.
    assert [r["name"] for r in payload["ratios"]] == report.ratio_names == ["page-faults/ms"]
    spec = payload["ratios"][0]
    assert payload["weights"][spec["num"]] == "page-faults" and payload["weights"][spec["den"]] == "cpu-clock"

    raw = _raw_paths_and_deltas(data, binary)
    assert raw and sum(d[1] for _, d, _ in raw) > 0, "the workload should fault pages"
    checked = 0
    for path in (("main", "busy_caller.constprop.0", "hot"), ("main", "light_caller.constprop.0", "hot"),
                 ("main", "busy_caller.constprop.0")):
        n, (clock_ns, faults) = _expected(raw, path)
        if n < 20 or clock_ns <= 0:
            continue
        totals = _page_frame_totals(payload, path)
        assert totals[0] == n, (path, totals[0], n)  # the same samples
        page_value = totals[spec["num"]] / totals[spec["den"]] * spec["scale"]
        assert page_value == pytest.approx(faults / clock_ns * 1e6, rel=1e-4), path
        checked += 1
    assert checked >= 2
    # The report's self ratio of `hot`: the samples whose leaf is in hot.
    leaf_n, leaf_sums = 0, [0.0, 0.0]
    for names, deltas, kernel_leaf in raw:
        if names and names[-1] == "hot" and not kernel_leaf:
            leaf_n += 1
            leaf_sums = [leaf_sums[0] + deltas[0], leaf_sums[1] + deltas[1]]
    row = next(r for r in report.rows if r.keys == ("hot",))
    assert row.samples == leaf_n
    assert row.ratios["page-faults/ms"] == pytest.approx(leaf_sums[1] / leaf_sums[0] * 1e6, rel=1e-4)
