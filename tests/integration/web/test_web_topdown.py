"""The stat page shows `hwprof stat --topdown-level` as a tree: indented by level, bars, the bottleneck path
marked, folding on click. The document is a real `hwprof stat --json` run's shape with values from the Zen 4
hand-worked count set of tests/unit/events/test_vendor_metrics.py (this VM cannot count them)."""

from __future__ import annotations

import json
import time

import pytest
from test_web_browser import ROW_CELLS, open_page  # noqa: F401  (the same page helpers)
from web_fixtures import shot

from hwprof.store import StoreEntry

pytestmark = pytest.mark.browser

NODES = [  # name, parent, level, value, bottleneck
    ("frontend_bound", None, 1, 20.0, False), ("frontend_bound_latency", "frontend_bound", 2, 10.0, False),
    ("frontend_bound_bandwidth", "frontend_bound", 2, 10.0, False),
    ("backend_bound", None, 1, 40.0, True), ("backend_bound_memory", "backend_bound", 2, 30.0, True),
    ("backend_bound_cpu", "backend_bound", 2, 10.0, False), ("retiring", None, 1, 30.0, False),
    ("bad_speculation", None, 1, None, False),
]


def _document() -> dict:
    nodes = [{"name": n, "parent": p, "level": lvl, "value": v, "unit": "%", "uncertainty": 0.25 if v else None,
              "over_threshold": None, "bottleneck": b, "reason": None if v is not None else "event x was not counted"}
             for n, p, lvl, v, b in NODES]
    return {"version": 1, "target": "'./work'", "command": ["./work"], "exit_code": 0, "runs": 1,
            "duration_ns": 1_000_000, "duration_stddev_ns": None, "user_ns": 0, "system_ns": 0, "interrupted": False,
            "events": [], "metrics": [], "per_thread": [], "per_cpu": [], "intervals": [], "notes": [],
            "topdown": {"model": "amdzen4", "cpuid": "AuthenticAMD-25-11-1", "level": 2, "nodes": nodes}}


def test_topdown_tree_on_the_stat_page(page, live_server, web_store):
    store = web_store["store"]
    entry_id, path = store.reserve("stat", "json")
    path.write_text(json.dumps(_document()))
    store.add(StoreEntry(id=entry_id, kind="stat", file=path.name, created=time.time(), target="./work"))
    open_page(page, f"{live_server}/stat/{entry_id}")
    assert "to level 2 · AuthenticAMD-25-11-1 (amdzen4)" in page.text_content("#topdown-title")
    rows = page.eval_on_selector_all("#topdown .tma-row", "rs => rs.map(r => [r.dataset.name, r.dataset.level, "
                                     "r.classList.contains('bottleneck'), r.querySelector('.tma-value').textContent])")
    assert rows[3] == ["backend_bound", "1", True, "40.0 %"]
    assert rows[4] == ["backend_bound_memory", "2", True, "30.0 %"]
    assert rows[-1] == ["bad_speculation", "1", False, "n/a"]
    widths = page.eval_on_selector_all("#topdown .tma-bar", "bs => bs.map(b => b.style.width)")
    assert widths[:2] == ["20%", "10%"]
    indent = page.eval_on_selector_all("#topdown .tma-name", "ns => ns.map(n => n.style.paddingLeft)")
    assert indent[0] == "0px" and indent[1] == "18px"
    page.click("#topdown .tma-row[data-name=backend_bound]")   # fold its children
    hidden = page.eval_on_selector_all("#topdown .tma-row", "rs => rs.filter(r => r.hidden).map(r => r.dataset.name)")
    assert hidden == ["backend_bound_memory", "backend_bound_cpu"]
    visible = page.eval_on_selector_all("#topdown .tma-row", "rs => rs.filter(r => r.offsetHeight > 0).length")
    assert visible == len(NODES) - 2
    shot(page, "stat-topdown")
    assert not page.problems, page.problems
