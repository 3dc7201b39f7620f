"""perf.data written by hand (writer) and read back (reader, decoder, report): exact, known answers."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hwprof.symbolize.frame import SymbolizedFrame

from hwprof.errors import HwprofError
from hwprof.folded import profile_folded
from hwprof.perf.abi import CallchainContext, ReadFormat, RecordType, SampleType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import SampleLayout, pack_string, sample_id_trailer
from hwprof.perfdata import PerfDataFile, PerfDataWriter
from hwprof.perfdata import features as feat
from hwprof.perfdata.features import Feature
from hwprof.perfdata.writer import FileAttr
from hwprof.pipeline import decode_file
from hwprof.report import ReportOptions, build_report, render_text

USER = int(CallchainContext.USER)
KERNEL = int(CallchainContext.KERNEL)
ST = SampleType.IP | SampleType.TID | SampleType.TIME | SampleType.PERIOD | SampleType.CALLCHAIN




def Frame(function: str | None, module: str = "", module_offset: int = 0) -> SymbolizedFrame:  # noqa: N802
    """The symbolizer's own frame type, with the fields these tests do not set left unknown."""
    return SymbolizedFrame(function, None, None, False, module, module_offset)


class RangeSymbolizer:
    """Names by file-offset ranges per module, like a symbol table; kernel addresses by a dict."""

    def __init__(self, table: dict[str, list[tuple[int, int, str]]], kernel: dict[int, str] | None = None) -> None:
        self.table = table
        self.kernel = kernel or {}

    def symbolize_offsets(self, path, offsets, build_id=None):
        out = []
        for off in np.asarray(offsets).tolist():
            name = next((n for lo, hi, n in self.table.get(path, []) if lo <= off < hi), None)
            out.append((Frame(name, module=path, module_offset=off),))
        return out

    def symbolize_kernel(self, addrs):
        return [(Frame(self.kernel.get(a), module="[kernel.kallsyms]", module_offset=a),)
                for a in np.asarray(addrs).tolist()]

    def symbolize_jit(self, pid, addrs, perf_map_path=None):
        return [(Frame(None, module="[jit]", module_offset=a),) for a in np.asarray(addrs).tolist()]


def _rec(rtype: int, body: bytes, misc: int = 0) -> bytes:
    return struct.pack("<IHH", rtype, misc, 8 + len(body)) + body


class Capture:
    """Builds a data section record by record."""

    def __init__(self, attr: PerfEventAttr, ident: int = 7) -> None:
        self.attr = attr
        self.layout = SampleLayout.from_attr(attr)
        self.ident = ident
        self.data = b""

    def trailer(self, pid: int, time: int) -> bytes:
        return sample_id_trailer(self.layout, pid, pid, time, self.ident, 0)

    def mmap(self, pid: int, start: int, length: int, pgoff: int, path: str, time: int = 0) -> None:
        body = struct.pack("<iiQQQIIQQII", pid, pid, start, length, pgoff, 8, 1, 99, 0, 5, 2)
        self.data += _rec(RecordType.MMAP2, body + pack_string(path) + self.trailer(pid, time), misc=2)

    def comm(self, pid: int, name: str, time: int = 0, exec_: bool = False) -> None:
        body = struct.pack("<ii", pid, pid) + pack_string(name) + self.trailer(pid, time)
        self.data += _rec(RecordType.COMM, body, misc=(1 << 13) if exec_ else 0)

    def sample(self, pid: int, time: int, chain: list[int], period: int = 1000, read: bytes = b"") -> None:
        body = struct.pack("<QiiQQ", chain[1] if len(chain) > 1 else 0, pid, pid, time, period)
        body += read + struct.pack(f"<Q{len(chain)}Q", len(chain), *chain)
        self.data += _rec(RecordType.SAMPLE, body, misc=2)

    def lost(self, count: int) -> None:
        self.data += _rec(RecordType.LOST, struct.pack("<QQ", self.ident, count) + self.trailer(0, 0))

    def write(self, path, name: str = "cpu-clock") -> None:
        with PerfDataWriter(path, [FileAttr(self.attr, (self.ident,), name)]) as w:
            w.write(self.data)
            w.finish_round()
            w.add_feature(Feature.HOSTNAME, feat.pack_string("box"))
            w.add_feature(Feature.CMDLINE, feat.pack_string_list(["hwprof", "record", "--", "./app"]))
            w.add_feature(Feature.EVENT_DESC, feat.pack_event_desc(
                [feat.EventDesc(self.attr, name, (self.ident,))], w.attr_size))
            w.add_feature(Feature.BUILD_ID, feat.pack_build_ids(
                [feat.BuildIdEntry(-1, bytes(range(20)), "/opt/app", 2)]))


def _attr(**extra) -> PerfEventAttr:
    return PerfEventAttr(type=1, config=0, sample_period=1000, sample_type=ST, sample_id_all=1, **extra)


APP = {"/opt/app": [(0x100, 0x200, "leaf"), (0x200, 0x300, "caller_a"), (0x300, 0x400, "caller_b"),
                    (0x400, 0x500, "main")]}


def _three_to_one(tmp_path):
    cap = Capture(_attr())
    cap.comm(10, "app")
    cap.mmap(10, 0x400000, 0x1000, 0, "/opt/app")
    t = 100
    for i in range(400):
        caller = 0x400250 if i % 4 else 0x400350  # 3 of 4 samples through caller_a
        cap.sample(10, t, [USER, 0x400150, caller, 0x400450])
        t += 10
    cap.lost(5)
    path = tmp_path / "app.data"
    cap.write(path)
    return path


def test_roundtrip_header_attrs_and_features(tmp_path):
    path = _three_to_one(tmp_path)
    with PerfDataFile(path) as f:
        assert not f.truncated and not f.warnings
        assert f.hostname == "box" and f.cmdline == ["hwprof", "record", "--", "./app"]
        assert f.event_names == ["cpu-clock"] and f.attrs[0].ids == (7,)
        assert f.attrs[0].attr.sample_type == ST and f.attrs[0].attr.size == 128
        assert f.build_ids[0].filename == "/opt/app" and f.build_ids[0].build_id == bytes(range(20))
        data = b"".join(f.chunks(chunk_size=4096))  # small chunks: records must never be split
        assert data.endswith(struct.pack("<IHH", RecordType.FINISHED_ROUND, 0, 8))


def test_decode_dedupes_stacks_and_report_gets_the_split(tmp_path):
    profile = decode_file(_three_to_one(tmp_path), RangeSymbolizer(APP))
    assert profile.n_samples == 400 and profile.meta.lost == 5 and profile.meta.target == "./app"
    assert len(profile.stack_frame) == 5  # main -> caller_a -> leaf, main -> caller_b -> leaf: main shared
    assert profile.threads[10] == "app"
    folded = dict(line.rsplit(" ", 1) for line in profile_folded(profile))
    assert folded == {"main;caller_a;leaf": "300", "main;caller_b;leaf": "100"}
    report = build_report(profile, ReportOptions())
    rows = {r.keys[0]: r for r in report.rows}
    assert rows["caller_a"].total_percent == pytest.approx(75.0) and rows["caller_b"].total_percent == 25.0
    assert rows["leaf"].self_percent == 100.0 and rows["main"].self_percent == 0.0
    assert report.quality.complete == 400 and report.lost == 5
    text = render_text(report)
    assert "# lost samples: 5" in text and "stack quality: 100.0% complete" in text


def test_exec_replaces_the_address_space(tmp_path):
    cap = Capture(_attr())
    cap.mmap(10, 0x400000, 0x1000, 0, "/opt/app", time=1)
    cap.sample(10, 5, [USER, 0x400150])
    cap.comm(10, "other", time=10, exec_=True)
    cap.mmap(10, 0x400000, 0x1000, 0, "/opt/other", time=11)
    cap.sample(10, 20, [USER, 0x400150])
    cap.sample(10, 21, [USER, 0x400150, 0])  # a zero return address: the unwinder gave up
    path = tmp_path / "exec.data"
    cap.write(path)
    table = {**APP, "/opt/other": [(0x100, 0x200, "other_leaf")]}
    profile = decode_file(path, RangeSymbolizer(table))
    labels = [profile.frame_label(profile.stack_frames(int(s))[-1]) for s in profile.sample_stack]
    assert labels == ["leaf", "other_leaf", "other_leaf"]
    assert profile.sample_end.tolist() == [0, 0, 2]


def test_kernel_frames_and_unknown_addresses(tmp_path):
    cap = Capture(_attr())
    cap.mmap(10, 0x400000, 0x1000, 0, "/opt/app")
    cap.sample(10, 1, [KERNEL, 0xFFFFFFFF81000100, 0xFFFFFFFF81000200, USER, 0x400150, 0x400450])
    cap.sample(10, 2, [USER, 0x7F0000001000])  # nothing mapped there, no perf map: unknown
    path = tmp_path / "k.data"
    cap.write(path)
    # callers are looked up at their call site (return address - 1), the leaf at its own address
    sym = RangeSymbolizer(APP, {0xFFFFFFFF81000100: "do_work", 0xFFFFFFFF810001FF: "entry"})
    profile = decode_file(path, sym)
    first = [profile.frame_label(f) for f in profile.stack_frames(int(profile.sample_stack[0]))]
    assert first == ["main", "leaf", "entry", "do_work"]
    kinds = [int(profile.frame_kind[f]) for f in profile.stack_frames(int(profile.sample_stack[0]))]
    assert kinds == [1, 1, 2, 2]
    assert profile.sample_end.tolist() == [0, 2]
    dso = build_report(profile, ReportOptions(sort=("dso",), children=False))
    assert {r.keys[0] for r in dso.rows} == {"[kernel.kallsyms]", "[unknown]"}  # a self table: rows with self time
    dso = build_report(profile, ReportOptions(sort=("dso",), children=True))
    assert {r.keys[0] for r in dso.rows} == {"app", "[kernel.kallsyms]", "[unknown]"}


def test_group_read_deltas_per_sample(tmp_path):
    rf = ReadFormat.GROUP | ReadFormat.ID | ReadFormat.TOTAL_TIME_ENABLED | ReadFormat.TOTAL_TIME_RUNNING
    attr = _attr(read_format=rf)
    attr.sample_type = ST | SampleType.READ
    cap = Capture(attr)
    cap.mmap(10, 0x400000, 0x1000, 0, "/opt/app")
    totals = [(1000, 3), (2000, 3), (3000, 10)]  # leader (cpu-clock ns) and page-faults, cumulative
    for i, (clock, faults) in enumerate(totals):
        read = struct.pack("<QQQ", 2, 1000 * (i + 1), 1000 * (i + 1)) + struct.pack("<QQQQ", clock, 7, faults, 8)
        cap.sample(10, 10 + i, [USER, 0x400150 if i < 2 else 0x400250], read=read)
    path = tmp_path / "g.data"
    member = PerfEventAttr(type=1, config=2, sample_type=attr.sample_type, read_format=rf, sample_id_all=1)
    with PerfDataWriter(path, [FileAttr(attr, (7,), "cpu-clock"), FileAttr(member, (8,), "page-faults")]) as w:
        w.write(cap.data)
    profile = decode_file(path, RangeSymbolizer(APP))
    assert profile.meta.weight_names == ["cpu-clock", "page-faults"]
    assert profile.counters.tolist() == [[1000, 3], [1000, 0], [1000, 7]]
    report = build_report(profile, ReportOptions(children=False))
    rows = {r.keys[0]: r for r in report.rows}
    assert rows["leaf"].ratios["page-faults/ms"] == pytest.approx(3 / 2000 * 1e6)  # per ms of cpu-clock
    assert rows["caller_a"].ratios["page-faults/ms"] == pytest.approx(7 / 1000 * 1e6)
    weighted = build_report(profile, ReportOptions(weight="page-faults", children=False))
    assert {r.keys[0]: r.self_percent for r in weighted.rows} == {"caller_a": 70.0, "leaf": 30.0}


def test_killed_capture_and_report_filters(tmp_path):
    path = _three_to_one(tmp_path)
    raw = path.read_bytes()
    with PerfDataFile(path) as f:
        data_offset = f.data_offset
    cut = tmp_path / "cut.data"
    cut.write_bytes(raw[:48] + b"\0" * 8 + raw[56: data_offset + 1000 + 5])  # data.size 0, cut mid-record
    with PerfDataFile(cut) as f:
        assert f.truncated and "was not finalised" in f.warnings[0]
    profile = decode_file(cut, RangeSymbolizer(APP))
    assert 0 < profile.n_samples < 400
    full = decode_file(path, RangeSymbolizer(APP))
    window = build_report(full, ReportOptions(time="0%,50%"))
    assert window.samples == 200
    assert build_report(full, ReportOptions(pids=(11,))).samples == 0
    assert build_report(full, ReportOptions(comms=("app",))).samples == 400
    with pytest.raises(HwprofError, match="unknown weight"):
        build_report(full, ReportOptions(weight="cycles"))
    with pytest.raises(HwprofError, match="--time"):
        build_report(full, ReportOptions(time="5"))
    with pytest.raises(HwprofError, match="unknown sort key"):
        build_report(full, ReportOptions(sort=("sym",)))


def test_recursion_counts_once_in_total(tmp_path):
    cap = Capture(_attr())
    cap.mmap(10, 0x400000, 0x1000, 0, "/opt/app")
    cap.sample(10, 1, [USER, 0x400150, 0x400250, 0x400260, 0x400270, 0x400450])  # caller_a recursing
    cap.sample(10, 2, [USER, 0x400450])
    path = tmp_path / "r.data"
    cap.write(path)
    report = build_report(decode_file(path, RangeSymbolizer(APP)), ReportOptions())
    rows = {r.keys[0]: r for r in report.rows}
    assert rows["caller_a"].total_percent == 50.0 and rows["main"].total_percent == 100.0
    assert rows["main"].self_percent == 50.0


def test_corrupted_data_never_escapes_as_a_traceback(tmp_path):
    path = _three_to_one(tmp_path)
    raw = path.read_bytes()
    with PerfDataFile(path) as f:
        start, size = f.data_offset, f.data_size
    rng = np.random.default_rng(7)
    outcomes = set()
    for trial in range(12):
        damaged = bytearray(raw)
        for pos in rng.integers(start, start + size, size=8):
            damaged[pos] = int(rng.integers(0, 256))
        bad = tmp_path / f"bad{trial}.data"
        bad.write_bytes(bytes(damaged))
        try:
            profile = decode_file(bad, RangeSymbolizer(APP))
            build_report(profile, ReportOptions())
            outcomes.add("decoded")
        except HwprofError as exc:
            assert str(exc).count("\n") == 0
            outcomes.add("error")
    assert outcomes  # every trial ended in a profile or a one-line error, never another exception
