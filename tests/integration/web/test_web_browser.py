"""End-to-end in headless Chromium: a real recording, zoom, search, colour modes, time range, diff, stat run, store,
the self-contained report, and hostile names that must show literally and run nothing. Screenshots go to
tests/output/web/."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hwprof.web.report import render_html
from hwprof.web.synthetic import JIT_NAME, SCRIPT_NAME, TEMPLATE_NAME, small_profile
from web_fixtures import shot

from hwprof.folded import parse_folded

pytestmark = pytest.mark.browser

FIND_FRAME = """([label, which]) => {
  const g = which === 'callers' ? HW.view.callers : which === 'callees' ? HW.view.callees : HW.view.flame;
  const rect = g.canvas.getBoundingClientRect();
  for (let d = 0; d < g.rows.length; d++) for (const r of g.rows[d] || [])
    if (r[2] >= 0 && g.tree.label(r[2]) === label)
      return {x: rect.left + (r[0] + r[1]) / 2, y: rect.top + g.rowY(d) + 8, width: r[1] - r[0]};
  return null;
}"""


ROW_CELLS = "rs => rs.map(r => Array.from(r.cells).map(c => c.textContent))"


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=30_000)
    assert page.get_attribute("body", "data-ready") == "1", page.text_content("main")[:300]


def canvas_ink(page, selector="#flame") -> int:
    """Count non-background pixels on a canvas: proof that something was drawn."""
    return page.evaluate("""(sel) => {
      const c = document.querySelector(sel), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""", selector)


def top_rows(page) -> dict[str, str]:
    return dict(page.eval_on_selector_all("#top tbody tr", ROW_CELLS + ".map(c => [c[0], c[2]])"))


def test_real_recording_zoom_search_views(page, live_server, web_store):
    if "real" not in web_store["ids"]:
        pytest.skip("perf could not record here (needs perf and gcc; make test installs them)")
    open_page(page, f"{live_server}/profile/{web_store['ids']['real']}")
    assert canvas_ink(page) > 1000
    names = top_rows(page)
    for fn in ("main", "heavy", "light", "inner"):
        assert fn in names, f"{fn} missing from {list(names)[:20]}"
    # heavy calls inner with 3x the work of light: its total share must be clearly larger
    heavy, light = (float(names[f].rstrip("%")) for f in ("heavy", "light"))
    assert heavy > 1.8 * light, (heavy, light)
    shot(page, "real-flame")

    # zoom: click heavy; breadcrumb shows the path, heavy fills the width
    target = page.evaluate(FIND_FRAME, ["heavy", "flame"])
    assert target, "heavy is not drawn"
    page.mouse.click(target["x"], target["y"])
    crumbs = page.eval_on_selector_all("#breadcrumb a", "as => as.map(a => a.textContent)")
    assert crumbs[0] == "all" and crumbs[-1] == "heavy" and "main" in crumbs
    zoomed = page.evaluate(FIND_FRAME, ["heavy", "flame"])
    assert zoomed["width"] > 0.95 * page.evaluate("HW.view.flame.width")
    shot(page, "real-zoomed")
    page.click("#breadcrumb a:first-child")
    assert page.eval_on_selector_all("#breadcrumb a", "as => as.length") == 1

    # search: regex, highlight, matched share
    page.fill("#search", "^(heavy|light)$")
    page.wait_for_selector("#search-result:has-text('matched')")
    text = page.text_content("#search-result")
    share = float(re.search(r"matched ([\d.]+)%", text).group(1))
    assert share == pytest.approx(float(names["heavy"].rstrip("%")) + float(names["light"].rstrip("%")), abs=0.2)
    shot(page, "real-search")
    page.fill("#search", "")

    # views: icicle and inverted (bottom-up roots are where samples landed: inner leads)
    page.select_option("#view", "icicle")
    assert canvas_ink(page) > 1000
    page.select_option("#view", "inverted")
    roots = page.evaluate("Array.from(HW.view.current.roots).map(r => [HW.view.current.label(r), "
                          "HW.view.current.total[0][r]]).sort((a, b) => b[1] - a[1])[0][0]")
    assert roots == "inner"
    shot(page, "real-inverted")
    page.select_option("#view", "flame")

    # keyboard: focus the graph, move up from the root and zoom with Enter
    page.focus("#flame")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    assert page.eval_on_selector_all("#breadcrumb a", "as => as.length") >= 2
    page.keyboard.press("Escape")
    assert not page.problems, page.problems


def test_counters_colour_modes_tooltip_time_range_and_hostile_names(page, live_server, web_store):
    page.add_init_script("window.__pwned = 0; window.alert = () => { window.__pwned++; };")
    open_page(page, f"{live_server}/profile/{web_store['ids']['fast']}")
    # hostile names show literally in the table, never as markup
    names = top_rows(page)
    assert JIT_NAME in names and TEMPLATE_NAME in names and SCRIPT_NAME in names
    assert page.locator("#top img").count() == 0 and page.locator("main script").count() == 0
    # colour modes
    options = page.eval_on_selector_all("#color option", "os => os.map(o => o.value + '=' + o.textContent)")
    assert any("IPC" in o for o in options) and any(o.startswith("module") for o in options)
    for value in ("module", "ratio:0", "kind"):
        page.select_option("#color", value)
        assert canvas_ink(page) > 1000
        if value == "ratio:0":
            legend = page.text_content("#legend")
            assert "IPC" in legend
            shot(page, "synthetic-ipc")
    page.select_option("#color", "ratio:0")
    # tooltip: the template frame has IPC 2.0 exactly (instructions = 2 x cycles in the synthetic data)
    frame = page.evaluate(FIND_FRAME, [TEMPLATE_NAME, "flame"])
    page.mouse.move(frame["x"], frame["y"])
    tip = page.text_content("#tooltip")
    flat = tip.replace(" ", "")
    assert TEMPLATE_NAME in tip and "IPC2.000" in flat and "samples(total)100" in flat
    assert "file:line" in tip and "vec.hpp:77" in tip
    shot(page, "synthetic-tooltip")
    jit = page.evaluate(FIND_FRAME, [JIT_NAME, "flame"])
    page.mouse.move(jit["x"], jit["y"])
    assert JIT_NAME in page.text_content("#tooltip")
    # time strip: drag over the first half; the flame graph and table follow the selection
    box = page.locator("#strip").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 30, steps=5)
    page.mouse.up()
    label = page.text_content("#range-label")
    selected = int(re.search(r"\((\d+) samples\)", label).group(1))
    assert 200 < selected < 320
    assert page.evaluate("HW.view.base.rootTotal[0]") == selected
    shot(page, "synthetic-range")
    page.dblclick("#strip")
    assert page.evaluate("HW.view.base.rootTotal[0]") == 520

    # thread filter: the server re-aggregates tid 101's samples; view, colour and search stay as they were
    options = page.eval_on_selector_all("#thread option", "os => os.map(o => [o.value, o.textContent])")
    assert options[0] == ["", "all threads (520 samples)"]
    assert ["tid:101", "tid 101 demo-worker (pid 100) — 260 samples"] in options
    assert ["pid:100", "pid 100 demo — 2 threads, 520 samples"] in options
    page.select_option("#view", "icicle")
    page.fill("#search", "compute")
    page.select_option("#thread", "tid:101")
    page.wait_for_selector("body[data-thread-ready='1']")
    page.wait_for_function("() => HW.view.base.rootTotal[0] === 260 && document.querySelector('#search-result')"
                           ".textContent.includes('of 260')")
    assert page.evaluate("HW.view.selectionQuery().get('tid')") == "101"
    assert page.input_value("#view") == "icicle" and page.input_value("#color") == "ratio:0"
    assert "IPC" in page.text_content("#legend") and page.input_value("#search") == "compute"
    assert "samples: 260" in page.text_content("#summary")
    assert canvas_ink(page) > 1000
    # the table holds tid 101's share of compute (self = total for a leaf), from the same synthetic data
    profile = small_profile()
    mine = (profile.sample_tid == 101) & (profile.sample_stack >= 0)
    compute = sum(profile.frame_label(int(profile.stack_frame[s])) == "compute" for s in profile.sample_stack[mine])
    assert compute > 100
    assert float(top_rows(page)["compute"].rstrip("%")) == pytest.approx(100 * compute / 260, abs=0.06)
    shot(page, "synthetic-thread-filter")
    page.select_option("#thread", "")
    page.wait_for_function("() => HW.view.base.rootTotal[0] === 520")
    assert page.evaluate("HW.view.selectionQuery().has('tid')") is False
    assert page.evaluate("window.__pwned") == 0
    assert not page.problems, page.problems


def test_export_from_the_page_follows_the_zoom(page, live_server, web_store):
    open_page(page, f"{live_server}/profile/{web_store['ids']['fast']}")
    target = page.evaluate(FIND_FRAME, ["read", "flame"])
    page.mouse.click(target["x"], target["y"])
    with page.expect_download() as info:
        page.click("#export-folded")
    text = open(info.value.path()).read()
    assert parse_folded(text.splitlines()) == [(["_start", "main", "read", "entry_SYSCALL_64", "ksys_read"], 50)]


def test_sandwich_panel(page, live_server, web_store):
    open_page(page, f"{live_server}/profile/{web_store['ids']['fast']}")
    page.click("#top tbody tr:has-text('work')")
    assert page.text_content("#sandwich-name") == "work"
    callers = page.evaluate("Array.from({length: HW.view.callers.tree.n}, (_, n) => HW.view.callers.tree.label(n))")
    callees = page.evaluate("Array.from({length: HW.view.callees.tree.n}, (_, n) => HW.view.callees.tree.label(n))")
    assert callers == ["work", "main", "_start"]
    assert set(callees) == {"work", "compute", TEMPLATE_NAME, "libc.so.6+0x12345"}
    assert canvas_ink(page, "#callers") > 100 and canvas_ink(page, "#callees") > 100


def test_recursion_counted_once_and_inverted_view(page, live_server, web_store):
    open_page(page, f"{live_server}/profile/{web_store['ids']['recursive']}")
    names = top_rows(page)
    assert names["walk"] == "100.0%" and names["leaf"] == "100.0%" and names["main"] == "100.0%"
    page.select_option("#view", "inverted")
    inverted = page.evaluate("""() => { const t = HW.view.current, out = {};
      for (let n = 0; n < t.n; n++) out[t.path(n).map((m) => t.label(m)).join(';')] = t.total[0][n]; return out; }""")
    assert inverted == {"leaf": 100, "leaf;walk": 100, "leaf;walk;walk": 60, "leaf;walk;walk;walk": 60,
                        "leaf;walk;walk;walk;main": 60, "leaf;walk;main": 40}
    # callers of walk: recursion counted once at the outermost walk
    page.click("#top tbody tr:has-text('walk')")
    callers = page.evaluate("""() => { const t = HW.view.callers.tree, out = {};
      for (let n = 0; n < t.n; n++) out[t.path(n).map((m) => t.label(m)).join(';')] = t.total[0][n]; return out; }""")
    assert callers == {"walk": 100, "walk;main": 100}
    assert not page.problems, page.problems


def test_diff_page(page, live_server, web_store):
    ids = web_store["ids"]
    open_page(page, f"{live_server}/diff?a={ids['fast']}&b={ids['slow']}")
    assert canvas_ink(page) > 1000
    first = page.eval_on_selector_all("#changes tbody tr", ROW_CELLS)[0]
    assert first[0] == "compute"
    # compute: 300/520 before, 600/820 after
    assert first[1] == "57.7%" and first[2] == "73.2%" and first[3] == "+15.48 pp"
    frame = page.evaluate("""() => { const g = HW.diffView.flame, rect = g.canvas.getBoundingClientRect();
      for (let d = 0; d < g.rows.length; d++) for (const r of g.rows[d] || [])
        if (r[2] >= 0 && g.tree.label(r[2]) === 'compute')
          return {x: rect.left + (r[0] + r[1]) / 2, y: rect.top + g.rowY(d) + 8}; }""")
    page.mouse.move(frame["x"], frame["y"])
    tip = page.text_content("#tooltip")
    assert "before57.7% (300)" in tip and "after73.2% (600)" in tip and "+15.48 pp" in tip
    shot(page, "diff-samples")
    modes = page.eval_on_selector_all("#diff-mode option", "os => os.map(o => o.value + '=' + o.textContent)")
    ipc = next(m.split("=")[0] for m in modes if "IPC" in m)
    page.select_option("#diff-mode", ipc)
    page.mouse.move(frame["x"], frame["y"] + 1)
    assert "IPC before → after0.500 → 0.500" in page.text_content("#tooltip").replace("\n", "")
    assert "IPC" in page.text_content("#legend")
    shot(page, "diff-ipc")
    assert not page.problems, page.problems


def test_stat_page(page, live_server, web_store):
    open_page(page, f"{live_server}/stat/{web_store['ids']['stat']}")
    rows = page.eval_on_selector_all("#events tbody tr", ROW_CELLS)
    assert rows[0][0] == "task-clock" and rows[1][3] == "50.0%" and "multiplexed" in rows[1][4]
    assert rows[2][1] == "<not supported>"
    assert page.text_content("#metrics tbody").startswith("CPUs utilized")
    assert page.eval_on_selector_all("#slices tbody tr", ROW_CELLS) == [["tid 4242 (<b>work</b>)", "899.5"]]
    assert page.locator("#series canvas").count() == 2
    assert canvas_ink(page, "#series canvas") > 200
    shot(page, "stat")
    assert not page.problems, page.problems


def test_store_page_sort_rename(page, live_server, web_store):
    open_page(page, f"{live_server}/")
    ids = page.eval_on_selector_all("#store-table tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert set(web_store["ids"].values()) <= set(ids)
    page.click("#store-table th[data-key=samples]")
    page.click("#store-table th[data-key=samples]")  # ascending
    samples = page.eval_on_selector_all("#store-table tbody tr", "rs => rs.map(r => r.cells[7].textContent)")
    numeric = [int(s) for s in samples if s.isdigit()]
    assert numeric == sorted(numeric)
    if "real" in web_store["ids"]:  # imported without numbers; decoding it (warm-up or a visit) fills them in
        real_id = web_store["ids"]["real"]
        assert page.request.get(f"{live_server}/api/profile/{real_id}").ok
        real = web_store["store"].get(real_id)
        assert real.samples > 0 and real.duration_ns > 0 and real.stack_quality is not None
        open_page(page, f"{live_server}/")
        cells = page.eval_on_selector_all(f"#store-table tbody tr[data-id='{real_id}'] td",
                                          "ts => ts.map(t => t.textContent)")
        assert cells[7] == str(real.samples) or cells[7].endswith("k"), cells
        assert cells[9].endswith("%"), cells
    shot(page, "store")
    row = f"#store-table tbody tr[data-id='{web_store['ids']['fast']}']"
    page.dialog_answers.append(TEMPLATE_NAME)
    page.click(f"{row} button.rename")
    page.wait_for_selector("#store-status:has-text('renamed')")
    assert page.text_content(f"{row} td.name a") == TEMPLATE_NAME
    assert web_store["store"].get(web_store["ids"]["fast"]).name == TEMPLATE_NAME
    assert not page.problems, page.problems


def test_self_contained_report_works_offline(page, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render_html(small_profile(), title="offline report"))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    open_page(page, path.as_uri())
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests
    assert canvas_ink(page) > 1000 and JIT_NAME in top_rows(page)
    page.fill("#search", "compute")
    page.wait_for_selector("#search-result:has-text('matched')")
    assert page.text_content("#search-result").startswith("matched 57.7% (300.00M of 520.00M)")
    with page.expect_download() as info:
        page.click("#export-folded")
    lines = dict((";".join(s), c) for s, c in parse_folded(open(info.value.path()).read().splitlines()))
    assert lines["_start;main;work;compute"] == 300
    shot(page, "report-offline")
    assert not page.problems, page.problems


def test_hwprof_report_html_of_a_real_recording(page, web_store, tmp_path):
    """`hwprof report -i perf.data --html FILE` (the record command, using render_html) opens and draws."""
    data = web_store["root"] / "perf.data"
    if "real" not in web_store["ids"] or not data.exists():
        pytest.skip("perf could not record here (needs perf and gcc; make test installs them)")
    out = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "hwprof", "report", "-i", str(data), "--html", str(out)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "invalid choice: 'report'" in done.stderr:
        pytest.skip("hwprof report is not available in this checkout")
    assert done.returncode == 0, done.stderr
    open_page(page, out.as_uri())
    assert canvas_ink(page) > 1000 and "heavy" in top_rows(page)
    shot(page, "report-html-real")
    assert not page.problems, page.problems


def test_off_cpu_recording_weights_colour_and_thread_timeline(page, live_server, web_store):
    if "offcpu" not in web_store["ids"]:
        pytest.skip("no off-CPU recording here (needs root for the sched tracepoints, and gcc)")
    open_page(page, f"{live_server}/profile/{web_store['ids']['offcpu']}")
    options = page.eval_on_selector_all("#weight option", "os => os.map(o => o.textContent)")
    assert {"on-CPU ns", "off-CPU ns", "wall ns"} <= set(options), options
    assert page.eval_on_selector("#weight", "s => s.options[s.selectedIndex].textContent") == "on-CPU ns"
    # The thread timeline: one row per thread, blocked intervals drawn over each thread's life.
    assert page.is_visible("#timeline")
    assert page.evaluate("HW.view.timeline.threads.length") == 2
    assert canvas_ink(page, "#timeline") > 2000
    legend = page.text_content("#timeline-label")
    assert "on-CPU" in legend and "sleeping (S)" in legend
    # Off-CPU weights: the 30 ms sleeper outweighs the 10 ms one, and the state frames have their own colour.
    page.select_option("#weight", label="off-CPU ns")
    names = top_rows(page)
    long, short = (float(names[f].rstrip("%")) for f in ("caller_long", "caller_short"))
    assert 2.0 < long / short < 4.0, (long, short)
    assert "[off-cpu: sleeping (S)]" in names
    hue = page.evaluate("HW.KIND_HUES.offcpu")
    assert hue and hue != page.evaluate("HW.KIND_HUES.kernel")
    shot(page, "offcpu")
    assert not page.problems, page.problems
