"""Exports: folded (the hwprof.folded contract), speedscope JSON (its schema), pprof (decoded with protobuf)."""

from __future__ import annotations

import gzip
import json

import jsonschema
import numpy as np
import pytest
from hwprof.web.export import Selection, export, selection_mask, speedscope_document
from hwprof.web.synthetic import JIT_NAME, TEMPLATE_NAME
from web_pprof_schema import profile_class

from hwprof.errors import HwprofError
from hwprof.folded import parse_folded, profile_folded

# The parts of https://www.speedscope.app/file-format-schema.json a sampled profile uses.
SPEEDSCOPE_SCHEMA = {
    "type": "object",
    "required": ["$schema", "shared", "profiles"],
    "properties": {
        "$schema": {"const": "https://www.speedscope.app/file-format-schema.json"},
        "shared": {"type": "object", "required": ["frames"], "properties": {"frames": {"type": "array", "items": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "file": {"type": "string"}, "line": {"type": "number"}}}}}},
        "profiles": {"type": "array", "items": {
            "type": "object", "required": ["type", "name", "unit", "startValue", "endValue", "samples", "weights"],
            "properties": {
                "type": {"const": "sampled"},
                "unit": {"enum": ["none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"]},
                "samples": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "weights": {"type": "array", "items": {"type": "number"}}}}},
    },
}


def test_folded_is_the_core_contract(profile):
    text = export(profile, "folded").decode()
    assert text.splitlines() == list(profile_folded(profile))
    stacks = dict((";".join(s), c) for s, c in parse_folded(text.splitlines()))
    assert stacks["_start;main;work;compute"] == 300
    assert stacks[f"_start;main;work;{TEMPLATE_NAME}"] == 100


def test_selection_by_time_and_focus(profile):
    t = profile.sample_time.astype(np.int64)
    mid = int(t[len(t) // 2])
    first = selection_mask(profile, Selection(end_ns=mid))
    assert first.sum() == np.count_nonzero(t < mid)
    focus = selection_mask(profile, Selection(focus=("_start", "main", "work")))
    assert focus.sum() == 300 + 100 + 20
    both = selection_mask(profile, Selection(start_ns=mid, focus=("_start", "main", "work", "compute")))
    lines = [line for line in profile_folded(profile, mask=both)]
    assert len(lines) == 1 and lines[0].startswith("_start;main;work;compute ")
    assert selection_mask(profile, Selection(focus=("nope",))).sum() == 0
    assert selection_mask(profile, Selection(tid=101)).sum() == 260


def test_selection_query_rejects_garbage():
    assert Selection.from_query({"start": "5", "focus": "a;b"}) == Selection(5, None, None, ("a", "b"))
    with pytest.raises(HwprofError, match="start must be an integer"):
        Selection.from_query({"start": "5;rm"})
    with pytest.raises(HwprofError, match="unknown export format"):
        export(None, "svg")


def test_speedscope_document_validates_and_sums(profile):
    doc = json.loads(export(profile, "speedscope"))
    jsonschema.validate(doc, SPEEDSCOPE_SCHEMA)
    frames = [f["name"] for f in doc["shared"]["frames"]]
    samples, weights = doc["profiles"][0]["samples"], doc["profiles"][0]["weights"]
    assert sum(weights) == profile.n_samples - 10  # stackless samples have no frames to show
    per_leaf = {}
    for stack, w in zip(samples, weights, strict=True):
        per_leaf[frames[stack[-1]]] = per_leaf.get(frames[stack[-1]], 0) + w
    assert per_leaf["compute"] == 300 and per_leaf[TEMPLATE_NAME] == 100
    assert doc["profiles"][1]["unit"] == "nanoseconds" and doc["profiles"][1]["endValue"] == 510 * 1e6
    assert speedscope_document(profile, np.zeros(profile.n_samples, bool))["profiles"][0]["samples"] == []


def test_pprof_decodes_with_the_protobuf_schema(profile):
    raw = export(profile, "pprof")
    assert raw[:2] == b"\x1f\x8b", "pprof files are gzip-compressed"
    message = profile_class()()
    message.ParseFromString(gzip.decompress(raw))
    strings = list(message.string_table)
    assert strings[0] == ""
    types = [(strings[t.type], strings[t.unit]) for t in message.sample_type]
    assert types == [("samples", "count"), ("cpu-clock", "nanoseconds"), ("cycles", "count"),
                     ("instructions", "count")]
    functions = {f.id: strings[f.name] for f in message.function}
    locations = {loc.id: functions[loc.line[0].function_id] for loc in message.location}
    totals: dict[str, int] = {}
    for sample in message.sample:
        names = [locations[i] for i in sample.location_id]
        key = ";".join(reversed(names))  # pprof lists the leaf first
        totals[key] = totals.get(key, 0) + sample.value[0]
    assert totals["_start;main;work;compute"] == 300
    assert totals[f"_start;main;{JIT_NAME};</script><script>alert(2)</script>"] == 40
    assert totals[""] == 10  # stackless samples stay in the totals
    assert sum(s.value[0] for s in message.sample) == profile.n_samples
    assert sum(s.value[3] for s in message.sample) == int(round(profile.counters[:, 1].sum()))
    assert message.duration_nanos == profile.meta.duration_ns
    assert strings[message.period_type.type] == "cpu-clock" and message.period == 1_000_000
    mapping_files = {strings[m.filename] for m in message.mapping}
    assert "/usr/bin/demo" in mapping_files and "[kernel.kallsyms]" in mapping_files
    compute_lines = {loc.line[0].line for loc in message.location if locations[loc.id] == "compute"}
    assert compute_lines == {8, 9}


def test_pprof_of_a_selection(profile):
    message = profile_class()()
    mask = selection_mask(profile, Selection(focus=("_start", "main", "read")))
    from hwprof.web.pprof import pprof_bytes

    message.ParseFromString(gzip.decompress(pprof_bytes(profile, mask)))
    assert sum(s.value[0] for s in message.sample) == 50


def test_one_registry_serves_the_cli_and_the_web_view(profile, tmp_path, monkeypatch):
    """Adding a format is one register() call: the API, the page's links and `hwprof report --format` offer it."""
    from hwprof.web import export as registry
    from hwprof.web.app import create_app

    from hwprof.store import ProfileStore, StoreEntry

    def render(p, view):
        return f"{int(view.mask.sum())} samples of {view.title}\n".encode()

    monkeypatch.setitem(registry.EXPORTERS, "count", registry.Exporter(
        "count", "text/plain; charset=utf-8", "count.txt", render, "how many samples were exported"))
    store = ProfileStore(tmp_path / "store")
    entry_id, path = store.reserve("record", "perf.data")
    path.write_bytes(b"")
    store.add(StoreEntry(id=entry_id, kind="record", file=path.name, created=1.0, name="demo"))
    store.cache_path(entry_id).parent.mkdir(parents=True, exist_ok=True)
    profile.save(store.cache_path(entry_id))
    client = create_app(store).test_client()
    page = client.get(f"/profile/{entry_id}").get_data(as_text=True)
    for name in registry.EXPORTERS:
        assert f'data-format="{name}"' in page
    got = client.get(f"/api/profile/{entry_id}/export/count?tid=101")
    assert got.status_code == 200 and got.get_data(as_text=True) == "260 samples of demo\n"
    assert got.headers["Content-Disposition"] == f'attachment; filename="{entry_id}.count.txt"'
    folded = client.get(f"/api/profile/{entry_id}/export/folded?focus=_start;main;read")
    assert folded.mimetype == "text/plain" and folded.get_data(as_text=True).startswith("_start;main;read;")
    assert client.get(f"/api/profile/{entry_id}/export/svg").status_code in (400, 404)


def test_the_browser_keeps_no_export_writer():
    """Exports are rendered by the registry only: the page's scripts fetch them (or carry them, offline)."""
    from pathlib import Path

    static = Path(__file__).resolve().parents[3] / "web" / "static"
    scripts = "".join(p.read_text() for p in static.glob("*.js"))
    for writer_mark in ("speedscope.app", "file-format-schema", 'type: "sampled"', "profile.proto"):
        assert writer_mark not in scripts, writer_mark


def test_a_self_contained_page_carries_the_registrys_exports(profile):
    import base64
    import re

    from hwprof.web.export import EXPORTERS
    from hwprof.web.report import render_html

    html = render_html(profile, title="offline")
    carried = json.loads(re.search(r'<script type="application/json" id="exports">(.*?)</script>', html, re.S)[1])
    assert set(carried) == {name for name, e in EXPORTERS.items() if e.embeddable}
    assert base64.b64decode(carried["folded"]["data"]) == export(profile, "folded")
    assert 'data-format="folded"' in html and 'data-format="html"' not in html


def test_report_exports_every_registered_format(tmp_path, capsys):
    """`hwprof report --format NAME [-o FILE]` is the registry's CLI; --folded and --html FILE are two of them."""
    from pathlib import Path

    from hwprof.web.export import EXPORTERS

    from hwprof.cli import main

    capture = str(Path(__file__).resolve().parents[1] / "pipeline" / "golden" / "hwprof.perf.data")
    assert main(["report", "-i", capture, "--raw", "--folded"]) == 0
    folded = capsys.readouterr().out
    assert main(["report", "-i", capture, "--raw", "--format", "folded"]) == 0
    assert capsys.readouterr().out == folded and folded.count("\n") > 10
    for name, exporter in EXPORTERS.items():
        out = tmp_path / f"x.{exporter.suffix}"
        assert main(["report", "-i", capture, "--raw", "--format", name, "-o", str(out)]) == 0
        assert out.stat().st_size > 100, name
    assert gzip.decompress((tmp_path / "x.pb.gz").read_bytes())
    assert main(["report", "-i", capture, "--raw", "--format", "svg"]) == 1
    assert "unknown export format 'svg'" in capsys.readouterr().err
