"""`hwprof stat -M` and `--topdown-level` on the real kernel: the plan's groups are opened, the document carries
the tree, and what this machine cannot count is said, not faked."""

from __future__ import annotations

import os

import jsonschema
from stat_helpers import hwprof_stat

from hwprof.perf.syscall import has_cpu_pmu


def test_topdown_tree_in_the_json_document(stat_json, schema, monkeypatch):
    monkeypatch.setenv("PERF_CPUID", "GenuineIntel-6-8F-8")
    doc, proc = stat_json("-e", "task-clock", "--topdown-level", "2", "--", "true")
    jsonschema.validate(doc, schema)
    tree = doc["topdown"]
    assert (tree["model"], tree["level"]) == ("SPR", 2)
    names = [n["name"] for n in tree["nodes"]]
    assert names[:3] == ["Frontend_Bound", "Fetch_Latency", "Fetch_Bandwidth"]
    assert {n["parent"] for n in tree["nodes"] if n["level"] == 2} == {
        "Frontend_Bound", "Bad_Speculation", "Backend_Bound", "Retiring"}
    events = [e["name"] for e in doc["events"]]
    assert events[0] == "task-clock" and "TOPDOWN.SLOTS" in events and "topdown-fe-bound" in events
    if not has_cpu_pmu():  # nothing is made up: every node says why it has no value
        assert all(n["value"] is None and "was not counted" in n["reason"] for n in tree["nodes"])


def test_metric_groups_and_text_tree(monkeypatch):
    env = {**os.environ, "PERF_CPUID": "AuthenticAMD-25-11-1"}
    proc = hwprof_stat("-e", "task-clock", "-M", "PipelineL1", "--topdown-level", "2", "--", "true", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Top-down (TMA) to level 2 for AuthenticAMD-25-11-1 (amdzen4):" in proc.stderr
    assert "      backend_bound_memory" in proc.stderr
    verbose = hwprof_stat("-v", "-e", "task-clock", "--topdown-level", "1", "--", "true", env=env)
    assert "ls_not_halted_cyc" in verbose.stderr  # -v lists the metrics' own events


def test_bad_metric_input_is_one_line():
    env = {**os.environ, "PERF_CPUID": "GenuineIntel-6-8F-8"}
    for argv, expect in ((["-M", "Frontend_Bond"], "did you mean: Frontend_Bound"),
                         (["--topdown-level", "9"], "--topdown-level must be 1 to 6"),
                         (["-M", "frontend_bound_latency"], "unknown metric or metric group")):
        proc = hwprof_stat(*argv, "--", "true", env=env)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and expect in proc.stderr, proc.stderr


def test_topdown_flag_uses_the_vendor_level_1_where_the_model_has_it(stat_json, monkeypatch):
    monkeypatch.setenv("PERF_CPUID", "GenuineIntel-6-55-4")  # Skylake-SP: no perf-metrics, TMA via formulas
    doc, _ = stat_json("-e", "task-clock", "--topdown", "--", "true")
    assert doc["topdown"]["level"] == 1
    assert [n["name"] for n in doc["topdown"]["nodes"]] == ["Frontend_Bound", "Bad_Speculation", "Backend_Bound",
                                                            "Retiring"]
