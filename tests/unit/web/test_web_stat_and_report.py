"""Reading stat runs defensively, and the self-contained HTML report."""

from __future__ import annotations

import json
import re

import pytest
from hwprof.web.report import render_diff_html, render_html
from hwprof.web.sources import normalize_stat
from hwprof.web.synthetic import JIT_NAME, TEMPLATE_NAME, small_profile

from hwprof.errors import HwprofError


def test_stat_document_in_the_hwprof_stat_schema():
    run = normalize_stat({
        "version": 1, "target": "sleep 1", "duration_ns": 1_000_000_000,
        "events": [{"name": "task-clock", "value": 1.5, "unit": "msec", "enabled_ns": 100, "running_ns": 50,
                    "supported": True},
                   {"name": "cycles", "value": None, "unit": "", "enabled_ns": 0, "running_ns": 0,
                    "supported": False}],
        "metrics": [{"name": "CPUs utilized", "value": 0.0015, "unit": "", "uncertainty": 0.05}],
        "intervals": [{"time_ns": 100 * i, "events": [{"name": "task-clock", "value": float(i)}],
                       "metrics": [{"name": "CPUs utilized", "value": 0.1 * i}]} for i in range(5)],
    })
    assert run["events"][0]["running_pct"] == 50.0 and run["events"][1]["supported"] is False
    assert run["metrics"][0]["uncertainty_pct"] == pytest.approx(5.0)
    series = {s["name"]: s for s in run["series"]}
    assert series["task-clock"]["t"] == [0, 100, 200, 300, 400] and series["CPUs utilized"]["v"][2] == 0.2


@pytest.mark.parametrize("raw", [[], "x", {"events": "nope", "metrics": [1, None, {"name": 5}]},
                                 {"events": [{"value": float("nan")}], "intervals": [None, 3, {"events": [7]}]}])
def test_stat_garbage_is_tolerated_or_refused_clearly(raw):
    if not isinstance(raw, dict):
        with pytest.raises(HwprofError, match="JSON object"):
            normalize_stat(raw)
        return
    run = normalize_stat(raw)
    json.dumps(run, allow_nan=False)  # nothing non-finite reaches the page


def test_report_is_self_contained_and_names_are_data():
    html = render_html(small_profile(), title="a <b>title</b> & more")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html), "no external resources"
    assert "http://" not in html.replace("https://www.speedscope.app/file-format-schema.json", "")
    # the only raw '<img' must not exist: names live in the escaped JSON
    assert "<img" not in html and JIT_NAME not in html and TEMPLATE_NAME not in html
    assert "a &lt;b&gt;title&lt;/b&gt; &amp; more" in html
    payload = re.search(r'<script type="application/json" id="payload">(.*?)</script>', html, re.S).group(1)
    assert JIT_NAME in json.loads(payload)["strings"]


def test_diff_report_holds_both_payloads():
    html = render_diff_html(small_profile(), small_profile(slow_b=True), "fast", "slow")
    assert 'id="payload-before"' in html and 'id="payload-after"' in html and "fast → slow" in html


def test_topdown_tree_is_typed_and_bounded():
    run = normalize_stat({"events": [], "topdown": {"model": "SPR", "cpuid": "GenuineIntel-6-8F-8", "level": 9,
                                                    "nodes": [
        {"name": "Backend_Bound", "parent": None, "level": 1, "value": 55.5, "unit": "%", "bottleneck": True,
         "over_threshold": True, "uncertainty": 0.1, "reason": None},
        {"name": "<b>x</b>" * 50, "parent": 7, "level": 99, "value": "12", "bottleneck": "yes"}, "junk"]}})
    first, second = run["topdown"]["nodes"]
    assert first == {"name": "Backend_Bound", "parent": None, "level": 1, "value": 55.5, "unit": "%",
                     "uncertainty": 0.1, "over_threshold": True, "bottleneck": True, "reason": ""}
    assert len(second["name"]) == 120 and second["parent"] is None and second["level"] == 6
    assert second["value"] is None and second["bottleneck"] is False
    assert normalize_stat({"events": []})["topdown"] is None
