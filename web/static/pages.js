// hwprof web view: the pages (store, profile, diff, stat). All text from profiles goes through textContent.
"use strict";
var HW = window.HW || (window.HW = {});

(function (HW) {
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else if (k === "style") e.style.cssText = attrs[k];  // CSSOM, allowed by the CSP (unlike a style attribute)
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  async function fetchJSON(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error((body && body.error) || response.status + " " + response.statusText);
    return body;
  }
  function postJSON(url, body) {
    return fetchJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }
  function showError(message) {
    const main = document.querySelector("main");
    main.prepend(el("p", { class: "error", id: "error-message", text: message }));
  }
  function inlineJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function download(name, text, type) {
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: type })), download: name });
    document.body.append(a); a.click(); a.remove();
  }
  // Run fn once the browser has painted the current frame: secondary panels never delay the flame graph.
  function afterPaint(fn) { requestAnimationFrame(() => setTimeout(fn, 0)); }
  function basename(p) { const i = p.lastIndexOf("/"); return i >= 0 ? p.slice(i + 1) : p; }

  // --- tooltip ----------------------------------------------------------------------------------------
  function placeTooltip(tip, e) {
    tip.hidden = false;
    const pad = 14, w = tip.offsetWidth, h = tip.offsetHeight;
    let x = e.clientX + pad, y = e.clientY + pad;
    if (x + w > window.innerWidth) x = Math.max(0, e.clientX - w - pad);
    if (y + h > window.innerHeight) y = Math.max(0, e.clientY - h - pad);
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  function table(rows) {
    const t = el("table");
    for (const [k, v] of rows) t.append(el("tr", null, el("td", { text: k }), el("td", { class: "num", text: v })));
    return t;
  }

  // --- sortable tables ----------------------------------------------------------------------------------
  function sortableHeader(tableEl, columns, state, onSort) {
    const tr = el("tr");
    columns.forEach((c, i) => {
      const th = el("th", { text: c.label, class: (c.num ? "num " : "") + (state.col === i ? (state.desc ? "sorted-desc" : "sorted-asc") : "") });
      if (c.sort !== false) {
        th.dataset.key = c.key || String(i);
        th.addEventListener("click", () => { if (state.col === i) state.desc = !state.desc; else { state.col = i; state.desc = c.num !== false; } onSort(); });
      }
      tr.append(th);
    });
    const thead = tableEl.querySelector("thead");
    thead.replaceChildren(tr);
  }

  // ======================================================================================================
  // profile page
  // ======================================================================================================
  // Thread timeline colours by hwprof.offcpu.OffCpuState: on-CPU, S, D, R, T, I, S-or-D, unknown.
  const TIMELINE_COLORS = ["#9bd49b", "#6f9be8", "#d9534f", "#f0ad4e", "#a070c0", "#c8c8c8", "#7fa6d8", "#b0b0b0"];

  class ProfileView {
    constructor(data, entryId) {
      this.data = data;
      this.entryId = entryId;
      this.range = [0, data.nBins];
      this.view = "flame";
      this.weight = data.nW > 1 && data.meta.events && data.meta.events.length ? 1 : 0;
      // An off-CPU recording (payload.OFFCPU_WEIGHTS): open on the on-CPU time, with off-CPU and wall a choice away.
      if (data.weights.indexOf("on-CPU ns") >= 0) this.weight = data.weights.indexOf("on-CPU ns");
      this.colorMode = "kind";
      this.search = null;
      this.match = null;
      this.tip = $("tooltip");
      this.flame = new HW.FlameGraph($("flame"), { orientation: "flame" });
      this.flame.on("hover", (h, e) => this.onHover(h, e));
      this.flame.on("zoom", () => this.updateBreadcrumb());
      this.flame.on("focus", (n) => this.onFocus(n));
      // the sandwich panel follows a click in a later task, so the zoom paints first
      this.flame.on("select", (n) => { const f = this.current.func[n]; afterPaint(() => this.showSandwich(f)); });
      this.callers = new HW.FlameGraph($("callers"), { orientation: "flame", minRows: 2, maxHeight: 240 });
      this.callees = new HW.FlameGraph($("callees"), { orientation: "icicle", minRows: 2, maxHeight: 240 });
      for (const g of [this.callers, this.callees]) g.on("hover", (h, e) => this.onHover(h, e, g));
      this.topState = { col: 1, desc: true };
      this.setupControls();
      this.renderSummary();
      this.renderQuality();
      this.rebuild();
      this.renderLines();
    }

    setupControls() {
      const d = this.data;
      const weightSel = $("weight");
      d.weights.forEach((w, i) => weightSel.append(el("option", { value: String(i), text: i === 1 ? w + " (period)" : w })));
      weightSel.value = String(this.weight);
      weightSel.addEventListener("change", () => { this.weight = +weightSel.value; this.refresh(); });
      const colorSel = $("color");
      colorSel.append(el("option", { value: "kind", text: "user / kernel / JIT" }), el("option", { value: "module", text: "module" }));
      d.ratios.forEach((r, i) => colorSel.append(el("option", { value: "ratio:" + i, text: r.name + (r.unit ? " (" + r.unit + ")" : "") })));
      colorSel.addEventListener("change", () => { this.colorMode = colorSel.value; this.applyColor(); });
      $("view").addEventListener("change", () => { this.view = $("view").value; this.rebuild(); });
      const search = $("search");
      search.addEventListener("input", () => this.setSearch(search.value));
      $("reset").addEventListener("click", () => this.reset());
      document.addEventListener("keydown", (e) => {
        if (e.key === "/" && document.activeElement !== search) { e.preventDefault(); search.focus(); }
        else if (e.key === "Escape" && document.activeElement === search) { search.value = ""; this.setSearch(""); $("flame").focus(); }
      });
      for (const a of document.querySelectorAll(".exports a")) a.addEventListener("click", (e) => this.exportAs(e, a.dataset.format));
      const strip = $("strip-series");
      d.weights.forEach((w, i) => strip.append(el("option", { value: "w:" + i, text: w })));
      d.ratios.forEach((r, i) => strip.append(el("option", { value: "r:" + i, text: r.name })));
      strip.value = "w:" + this.weight;
      strip.addEventListener("change", () => this.drawStrip());
      this.setupStrip();
      this.setupTimeline();
      this.setupThreads();
      const cmp = $("compare-with");
      if (cmp && this.entryId) {
        afterPaint(() => fetchJSON("/api/entries").then((list) => {
          for (const e of list.entries) if (e.id !== this.entryId && e.kind !== "stat") cmp.append(el("option", { value: e.id, text: (e.name || e.id) + " · " + e.id }));
        }).catch(() => {}));
        cmp.addEventListener("change", () => {
          if (cmp.value) location.href = "/diff?a=" + encodeURIComponent(this.entryId) + "&b=" + encodeURIComponent(cmp.value);
        });
      }
    }

    // --- thread / process filter ---
    // The server aggregates the cells, so a filter is a new payload (same time bins, same thread list): the page
    // fetches it and swaps the data under the current view mode, colour, search, zoom path and time range.
    setupThreads() {
      const list = this.data.payload.thread_list || [], sel = $("thread");
      this.filter = this.data.payload.filter || {};
      if (!this.entryId || list.length < 2) return;  // nothing to choose, or no server to ask (a report file)
      const byPid = new Map();
      for (const t of list) {
        // a process is named by its main thread's comm, else by its busiest thread's (the list is busiest first)
        const p = byPid.get(t.pid) || { pid: t.pid, samples: 0, threads: 0, comm: t.comm };
        p.samples += t.samples; p.threads += 1;
        if (t.tid === t.pid && t.comm) p.comm = t.comm;
        byPid.set(t.pid, p);
      }
      const total = list.reduce((a, t) => a + t.samples, 0);
      const count = (n) => HW.fmtCount(n) + " samples";
      sel.append(el("option", { value: "", text: "all threads (" + count(total) + ")" }));
      const procs = Array.from(byPid.values()).sort((a, b) => b.samples - a.samples || a.pid - b.pid);
      const pg = el("optgroup", { label: "processes" });
      for (const p of procs) pg.append(el("option", { value: "pid:" + p.pid,
        text: "pid " + p.pid + (p.comm ? " " + p.comm : "") + " — " + p.threads + (p.threads === 1 ? " thread, " : " threads, ") + count(p.samples) }));
      const tg = el("optgroup", { label: "threads" });
      for (const t of list) tg.append(el("option", { value: "tid:" + t.tid,
        text: "tid " + t.tid + (t.comm ? " " + t.comm : "") + (t.pid !== t.tid ? " (pid " + t.pid + ")" : "") + " — " + count(t.samples) }));
      sel.append(pg, tg);
      sel.value = this.filter.tid !== null && this.filter.tid !== undefined ? "tid:" + this.filter.tid
        : this.filter.pid !== null && this.filter.pid !== undefined ? "pid:" + this.filter.pid : "";
      sel.addEventListener("change", () => this.selectThread(sel.value));
      $("thread-label").hidden = false;
    }
    async selectThread(value) {
      const [kind, id] = value ? value.split(":") : ["", ""];
      const q = new URLSearchParams();
      if (kind) q.set(kind, id);
      const token = this.threadToken = (this.threadToken || 0) + 1;
      const status = $("status");
      status.textContent = "loading " + (kind ? kind + " " + id : "all threads") + "…";
      document.body.dataset.threadReady = "0";
      let payload;
      try {
        payload = await fetchJSON("/api/profile/" + encodeURIComponent(this.entryId) + (kind ? "?" + q.toString() : ""));
      } catch (e) {
        if (token === this.threadToken) { status.textContent = "cannot load " + value + ": " + e.message; document.body.dataset.threadReady = "error"; }
        return;
      }
      if (token !== this.threadToken) return;  // the user picked another thread meanwhile
      status.textContent = "";
      this.setData(new HW.ProfileData(payload));
      afterPaint(() => { if (token === this.threadToken) document.body.dataset.threadReady = "1"; });  // after the tables
    }
    setData(data) {
      const sameAxis = data.nBins === this.data.nBins && data.time.start_ns === this.data.time.start_ns && data.time.bin_ns === this.data.time.bin_ns;
      this.data = data;
      this.filter = data.payload.filter || {};
      this.linesByFunc = null;
      if (!sameAxis) this.range = [0, data.nBins];
      this.renderSummary();
      this.renderQuality();
      this.rebuild();
      this.renderLines();
    }

    renderSummary() {
      const m = this.data.meta, q = this.data.payload.quality;
      const s = $("summary");
      s.replaceChildren();
      const add = (k, v) => s.append(el("span", null, el("b", { text: k + ": " }), v));
      if (m.target) add("target", m.target);
      if (m.events && m.events.length) add("events", m.events.join(", "));
      if (m.weight_names && m.weight_names.length) add("counters", m.weight_names.join(", "));
      add("samples", HW.fmtCount(m.n_samples));
      if (m.duration_ns) add("duration", HW.fmtNs(m.duration_ns));
      add("lost", String(m.lost || 0));
      if (m.source) add("source", m.source);
      if (m.hostname) add("host", m.hostname);
      for (const note of m.notes || []) s.append(el("div", { class: "muted", text: note }));
      void q;
    }

    renderQuality() {
      const q = this.data.payload.quality, box = $("quality");
      const score = q.score === null ? 0 : q.score;
      box.querySelector(".bar").style.width = (100 * score).toFixed(1) + "%";
      const parts = [];
      if (q.truncated) parts.push(HW.fmtPct(100 * q.truncated / q.samples) + " truncated");
      if (q.unknown_frame) parts.push(HW.fmtPct(100 * q.unknown_frame / q.samples) + " ended in an unknown frame");
      if (q.no_stack) parts.push(HW.fmtPct(100 * q.no_stack / q.samples) + " without a stack");
      if (q.unsymbolized_leaf) parts.push(HW.fmtPct(100 * q.unsymbolized_leaf / q.samples) + " unsymbolized leaf");
      box.querySelector(".label").textContent = "stack quality: " + (q.score === null ? "no samples" : HW.fmtPct(100 * score) + " complete and symbolized") +
        (parts.length ? " (" + parts.join(", ") + ")" : "");
      box.title = "share of samples whose stack reached its root with every frame known";
      const ul = box.querySelector(".reasons");
      ul.replaceChildren(...q.reasons.map((r) => el("li", { text: r })));
    }

    // Rebuild the tree for the current range and view, keeping the zoomed path where it still exists.
    // The flame graph and the time strip paint first; tables and the sandwich panel follow in a later task,
    // so a range change or a first load shows the graph without waiting for them.
    rebuild() {
      const t0 = performance.now();
      const zoomPath = this.current && this.flame.zoomNode >= 0 ? this.current.path(this.flame.zoomNode).map((n) => this.current.label(n)) : null;
      this.base = this.data.aggregate(this.range[0], this.range[1]);
      this.current = this.view === "inverted" ? HW.invertTree(this.base) : this.base;
      this.applyColor(true);
      this.flame.options.orientation = this.view === "flame" ? "flame" : "icicle";
      this.flame.setTree(this.current, this.weight);
      if (zoomPath) { const z = this.current.findPath(zoomPath); if (z >= 0) this.flame.zoom(z); }
      this.applySearch();
      this.updateBreadcrumb();
      this.drawStrip();
      this.lastBuildMs = performance.now() - t0;
      const token = this.buildToken = (this.buildToken || 0) + 1;
      afterPaint(() => {
        if (token !== this.buildToken) return;  // a newer rebuild supersedes this one
        this.renderTop();
        const first = $("top").querySelector("tbody tr");
        if (this.sandwichFunc !== undefined) this.showSandwich(this.sandwichFunc);
        else if (first) this.showSandwich(+first.dataset.func);
        document.body.dataset.ready = "1";
      });
    }
    refresh() {
      this.flame.setWeight(this.weight);
      this.applyColor();
      this.applySearch();
      this.renderTop();
    }
    reset() {
      $("search").value = "";
      this.search = null;
      const hadRange = this.range[0] !== 0 || this.range[1] !== this.data.nBins;
      this.range = [0, this.data.nBins];
      this.flame.zoomNode = -1;
      if (hadRange) this.rebuild(); else { this.flame.zoom(-1); this.applySearch(); }
    }

    // --- colour ---
    applyColor(skipDraw) {
      const mode = this.colorMode, legend = $("legend");
      legend.replaceChildren();
      let fn;
      if (mode === "module") {
        fn = HW.moduleColor;
        const byModule = new Map(), t = this.current, tot = t.self[this.weight];
        for (let n = 0; n < t.n; n++) { const m = t.data.funcModuleName(t.func[n]); byModule.set(m, (byModule.get(m) || 0) + tot[n]); }
        const top = Array.from(byModule.entries()).sort((a, b) => b[1] - a[1]).slice(0, 10);
        for (const [m] of top) {
          const c = m ? "hsl(" + (HW.hash(m) % 360) + ",55%,66%)" : "hsl(0,0%,78%)";
          legend.append(el("span", null, el("span", { class: "sw", style: "background:" + c }), m ? basename(m) : "[no module]"));
        }
      } else if (mode.startsWith("ratio:")) {
        const spec = this.data.ratios[+mode.slice(6)];
        const t = this.current, tot = t.total, vals = [];
        const minSamples = Math.max(1, t.rootTotal[0] * 0.001);
        for (let n = 0; n < t.n; n++) if (tot[0][n] >= minSamples && HW.ratioDen(spec, tot, n) > 0) vals.push(HW.ratioValue(spec, tot, n));
        vals.sort((a, b) => a - b);
        // Many frames: clip the 2% tails so one outlier does not flatten the scale; few frames: the full range.
        const clip = vals.length > 50 ? 0.02 : 0;
        const lo = vals.length ? vals[Math.floor((vals.length - 1) * clip)] : 0;
        const hi = vals.length ? vals[Math.floor((vals.length - 1) * (1 - clip))] : 1;
        const span = hi > lo ? hi - lo : 1;
        fn = (tree, node) => {
          const v = HW.ratioValue(spec, tree.total, node);
          return isFinite(v) ? HW.ramp((v - lo) / span) : "hsl(0,0%,85%)";
        };
        const grad = el("span", { class: "gradient" });
        grad.style.background = "linear-gradient(90deg," + [0, 0.2, 0.4, 0.6, 0.8, 1].map(HW.ramp).join(",") + ")";
        legend.append(el("b", { text: spec.name + ": " }), el("span", { text: fmtRatio(lo) + " " }), grad,
          el("span", { text: " " + fmtRatio(hi) + (spec.unit ? " " + spec.unit : "") }),
          el("span", { class: "muted", text: " · grey: no " + this.data.weights[spec.den] + " counted" }));
      } else {
        fn = HW.kindColor;
        for (const [k, c] of [["user", "hsl(25,70%,62%)"], ["kernel", "hsl(210,70%,62%)"], ["jit", "hsl(115,70%,62%)"], ["unknown", "hsl(0,0%,75%)"]])
          legend.append(el("span", null, el("span", { class: "sw", style: "background:" + c }), k));
      }
      legend.append(el("span", null, el("span", { class: "sw", style: "background:#d4d8dc" }), "merged frames (< 1 px)"));
      this.flame.colorFn = fn; this.callers.colorFn = fn; this.callees.colorFn = fn;
      if (!skipDraw) { this.flame.draw(); this.callers.draw(); this.callees.draw(); }
    }

    // --- search ---
    setSearch(text) {
      this.search = HW.compileSearch(text);
      this.applySearch();
    }
    applySearch() {
      const t0 = performance.now();
      const res = $("search-result");
      if (!this.search) {
        this.searchToken = (this.searchToken || 0) + 1;
        this.match = null; this.flame.setMatch(null); res.textContent = ""; return;
      }
      this.match = HW.matchFunctions(this.data, this.search);
      this.flame.setMatch(this.match);
      this.lastSearchMs = performance.now() - t0;
      // the highlight paints first; the matched share (a pass over every call path) follows right after
      const token = this.searchToken = (this.searchToken || 0) + 1, match = this.match;
      afterPaint(() => {
        if (token !== this.searchToken) return;
        const base = this.base, w = this.weight;
        const share = HW.matchedShare(base, match, w);
        const total = base.rootTotal[w];
        res.textContent = "matched " + HW.fmtPct(total ? 100 * share / total : 0) + " (" + HW.fmtCount(share) + " of " + HW.fmtCount(total) + ")";
      });
    }

    // --- breadcrumb ---
    updateBreadcrumb() {
      const nav = $("breadcrumb"), t = this.current;
      nav.replaceChildren(el("a", { text: "all", onclick: () => this.flame.zoom(-1) }));
      if (this.flame.zoomNode >= 0) {
        for (const n of t.path(this.flame.zoomNode)) {
          nav.append(el("span", { class: "sep", text: "›" }), el("a", { text: t.label(n), onclick: () => this.flame.zoom(n) }));
        }
      }
    }

    // --- tooltip ---
    describe(tree, node, isMerged, rect) {
      const d = this.data, w = this.weight;
      const box = el("div");
      if (isMerged) {
        box.append(el("div", { class: "name", text: rect[3] + " frames narrower than a pixel, merged" }),
          table([[d.weights[w], HW.fmtCount(rect[4])], ["% of view", HW.fmtPct(100 * rect[4] / (tree.rootTotal[w] || 1))]]));
        return box;
      }
      const f = tree.func[node];
      box.append(el("div", { class: "name", text: tree.label(node) }));
      const rows = [];
      const total = tree.rootTotal;
      rows.push(["samples (total)", HW.fmtCount(tree.total[0][node]) + "  " + HW.fmtPct(100 * tree.total[0][node] / (total[0] || 1))]);
      rows.push(["samples (self)", HW.fmtCount(tree.self[0][node]) + "  " + HW.fmtPct(100 * tree.self[0][node] / (total[0] || 1))]);
      for (let i = 1; i < d.nW; i++) {
        rows.push([d.weights[i] + " total / self", HW.fmtCount(tree.total[i][node]) + " / " + HW.fmtCount(tree.self[i][node]) +
          "  " + HW.fmtPct(100 * tree.total[i][node] / (total[i] || 1))]);
      }
      for (const r of d.ratios) {
        const v = HW.ratioValue(r, tree.total, node);
        rows.push([r.name, isFinite(v) ? fmtRatio(v) + (r.unit ? " " + r.unit : "") : "–"]);
      }
      const mod = d.funcModuleName(f), file = d.funcFileName(f);
      rows.push(["kind", d.funcKindName(f)]);
      if (mod) rows.push(["module", mod]);
      const lines = this.linesOf(f);
      if (lines.length) rows.push(["file:line", lines.slice(0, 3).map((l) => basename(l[0]) + ":" + l[1]).join(", ")]);
      else if (file) rows.push(["file", file]);
      box.append(table(rows));
      return box;
    }
    linesOf(f) {
      if (!this.linesByFunc) {
        this.linesByFunc = new Map();
        const L = this.data.lines;
        for (let i = 0; i < L.func.length; i++) {
          const arr = this.linesByFunc.get(L.func[i]) || [];
          arr.push([this.data.strings[L.file[i]], L.line[i], L.samples[i]]);
          this.linesByFunc.set(L.func[i], arr);
        }
        for (const arr of this.linesByFunc.values()) arr.sort((a, b) => b[2] - a[2]);
      }
      return this.linesByFunc.get(f) || [];
    }
    onHover(h, e, graph) {
      const t0 = performance.now();
      const g = graph || this.flame;
      if (!h) { this.tip.hidden = true; return; }
      const r = h.rect;
      this.tip.replaceChildren(this.describe(g.tree, r[2], r[2] === HW.MERGED, r));
      placeTooltip(this.tip, e);
      this.lastHoverMs = performance.now() - t0;
    }
    onFocus(node) {
      const status = $("status");
      if (node < 0) { status.textContent = ""; return; }
      const t = this.current, w = this.weight;
      status.textContent = t.label(node) + " — " + HW.fmtPct(100 * t.total[w][node] / (t.rootTotal[w] || 1)) +
        " of " + this.data.weights[w] + " (arrows move, Enter zooms, Esc zooms out)";
    }

    // --- sandwich ---
    showSandwich(f) {
      this.sandwichFunc = f;
      $("sandwich-name").textContent = this.data.funcLabel(f);
      const callers = HW.callersOf(this.base, f), callees = HW.calleesOf(this.base, f);
      this.callers.setTree(callers, this.weight);
      this.callees.setTree(callees, this.weight);
      for (const row of $("top").querySelectorAll("tbody tr")) row.classList.toggle("selected", +row.dataset.func === f);
    }

    // --- top functions ---
    renderTop() {
      const t0 = performance.now();
      const d = this.data, w = this.weight;
      const ft = HW.functionTotals(this.base);
      const total = this.base.rootTotal[w] || 1;
      const ratio = d.ratios[0];
      const cols = [{ label: "function", num: false, sort: false }, { label: "self %", num: true }, { label: "total %", num: true },
        { label: "self " + d.weights[w], num: true }, { label: "module", num: false, sort: false }];
      if (ratio) cols.push({ label: ratio.name, num: true });
      const col = this.topState.col, keyOf = new Float64Array(d.nFuncs);
      for (let f = 0; f < d.nFuncs; f++) {
        if (col === 1 || col === 3) keyOf[f] = ft.self[w][f];
        else if (col === 5 && ratio) { const v = HW.ratioValue(ratio, ft.total, f); keyOf[f] = isFinite(v) ? v : -Infinity; }
        else keyOf[f] = ft.total[w][f];
      }
      let n = 0;
      const funcs = new Int32Array(d.nFuncs);
      for (let f = 0; f < d.nFuncs; f++) if (ft.total[w][f] > 0 || ft.self[w][f] > 0) funcs[n++] = f;
      const sorted = funcs.subarray(0, n).sort(this.topState.desc ? (a, b) => keyOf[b] - keyOf[a] : (a, b) => keyOf[a] - keyOf[b]);
      const tableEl = $("top");
      sortableHeader(tableEl, cols, this.topState, () => this.renderTop());
      const body = tableEl.querySelector("tbody");
      const rows = Array.from(sorted.subarray(0, 300)).map((f) => {
        const tr = el("tr", { "data-func": String(f) },
          el("td", { class: "name", text: d.funcLabel(f) }),
          el("td", { class: "num", text: HW.fmtPct(100 * ft.self[w][f] / total) }),
          el("td", { class: "num", text: HW.fmtPct(100 * ft.total[w][f] / total) }),
          el("td", { class: "num", text: HW.fmtCount(ft.self[w][f]) }),
          el("td", { text: basename(d.funcModuleName(f)) }));
        if (ratio) {
          const v = HW.ratioValue(ratio, ft.total, f);
          tr.append(el("td", { class: "num", text: isFinite(v) ? fmtRatio(v) : "–" }));
        }
        tr.addEventListener("click", () => this.showSandwich(f));
        if (f === this.sandwichFunc) tr.classList.add("selected");
        return tr;
      });
      body.replaceChildren(...rows);
      this.lastTopMs = performance.now() - t0;
    }

    renderLines() {
      const d = this.data, L = d.lines, order = [];
      let total = 0;
      for (let i = 0; i < L.func.length; i++) { order.push(i); }
      for (let i = 0; i < d.nBins; i++) total += d.binTotals[0][i];
      order.sort((a, b) => L.samples[b] - L.samples[a]);
      const body = $("lines").querySelector("tbody");
      body.replaceChildren(...order.slice(0, 200).map((i) => el("tr", null,
        el("td", { class: "name", text: d.funcLabel(L.func[i]) }),
        el("td", { class: "name", text: d.strings[L.file[i]] + ":" + L.line[i] }),
        el("td", { class: "num", text: HW.fmtCount(L.samples[i]) }),
        el("td", { class: "num", text: HW.fmtPct(100 * L.samples[i] / (total || 1)) }))));
      if (!order.length) body.append(el("tr", null, el("td", { colspan: "4", class: "muted", text: "no source lines known (no debug info)" })));
    }

    // --- thread timeline (off-CPU recordings: payload.offcpu_timeline) ---
    setupTimeline() {
      const t = this.data.timeline;
      if (!t || !t.threads.length) return;
      this.timeline = {
        threads: t.threads, states: t.states, dropped: t.dropped,
        row: new Int32Array(HW.decodeColumn(t.row)), start: new Float64Array(HW.decodeColumn(t.start_ns)),
        dur: new Float64Array(HW.decodeColumn(t.duration_ns)), state: new Int32Array(HW.decodeColumn(t.state)),
      };
      $("timeline-wrap").hidden = false;
      const canvas = $("timeline");
      canvas.addEventListener("mousemove", (e) => this.timelineHover(e));
      new ResizeObserver(() => this.drawTimeline()).observe(canvas);
    }
    timelineGeometry() {
      const d = this.data, span = d.time.n_bins * d.time.bin_ns;
      const canvas = $("timeline"), cssW = canvas.clientWidth || 800, label = 150, rowH = 16;
      return { canvas, cssW, label, rowH, span, x: (ns) => label + (ns / span) * (cssW - label) };
    }
    drawTimeline() {
      const tl = this.timeline;
      if (!tl) return;
      const g = this.timelineGeometry(), dpr = window.devicePixelRatio || 1, cssH = tl.threads.length * g.rowH + 4;
      const canvas = g.canvas;
      if (canvas.width !== Math.round(g.cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
        canvas.width = Math.round(g.cssW * dpr); canvas.height = Math.round(cssH * dpr); canvas.style.height = cssH + "px";
      }
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, g.cssW, cssH);
      ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
      tl.threads.forEach((th, r) => {
        const y = r * g.rowH + 2;
        ctx.fillStyle = "#333";
        ctx.fillText((th.comm || "?").slice(0, 16) + " " + th.tid, 2, y + g.rowH / 2);
        ctx.fillStyle = TIMELINE_COLORS[0];  // the thread's life: on-CPU wherever it is not blocked
        ctx.fillRect(g.x(th.first_ns), y + 2, Math.max(g.x(th.last_ns) - g.x(th.first_ns), 1), g.rowH - 4);
      });
      for (let i = 0; i < tl.row.length; i++) {
        const y = tl.row[i] * g.rowH + 2, x0 = g.x(tl.start[i]);
        ctx.fillStyle = TIMELINE_COLORS[tl.state[i]] || "#999";
        ctx.fillRect(x0, y + 2, Math.max(g.x(tl.start[i] + tl.dur[i]) - x0, 0.5), g.rowH - 4);
      }
      this.timelineLegend(tl.states.map((s, i) => [s, TIMELINE_COLORS[i]]).filter((p, i) => i === 0 || tl.state.includes(i)));
    }
    timelineLegend(parts) {
      const label = $("timeline-label");
      label.textContent = "";
      parts.forEach((p) => {
        label.append(el("span", { class: "swatch", style: "background:" + p[1] }), el("span", { text: " " + p[0] + "  " }));
      });
      if (this.timeline.dropped) label.append(el("span", { text: HW.fmtCount(this.timeline.dropped) + " shortest blocks not drawn" }));
    }
    timelineHover(e) {
      const tl = this.timeline, g = this.timelineGeometry(), rect = g.canvas.getBoundingClientRect();
      const px = e.clientX - rect.left, r = Math.floor((e.clientY - rect.top - 2) / g.rowH);
      if (r < 0 || r >= tl.threads.length || px < g.label) { g.canvas.title = ""; return; }
      const ns = ((px - g.label) / (g.cssW - g.label)) * g.span;
      let text = "on-CPU";
      for (let i = 0; i < tl.row.length; i++) {
        if (tl.row[i] === r && tl.start[i] <= ns && ns < tl.start[i] + tl.dur[i]) {
          text = tl.states[tl.state[i]] + " for " + HW.fmtNs(tl.dur[i]);
          break;
        }
      }
      const th = tl.threads[r];
      if (ns < th.first_ns || ns > th.last_ns) text = "not running yet / exited";
      g.canvas.title = th.comm + " " + th.tid + " at +" + HW.fmtNs(ns) + ": " + text;
    }

    // --- time strip ---
    setupStrip() {
      const canvas = $("strip");
      let dragFrom = -1;
      const binAt = (e) => {
        const r = canvas.getBoundingClientRect();
        return Math.max(0, Math.min(this.data.nBins, Math.round((e.clientX - r.left) / r.width * this.data.nBins)));
      };
      canvas.addEventListener("mousedown", (e) => { dragFrom = binAt(e); this.pending = [dragFrom, dragFrom]; });
      window.addEventListener("mousemove", (e) => {
        if (dragFrom < 0) return;
        const b = binAt(e);
        this.pending = [Math.min(dragFrom, b), Math.max(dragFrom, b)];
        this.drawStrip();
      });
      window.addEventListener("mouseup", (e) => {
        if (dragFrom < 0) return;
        const b = binAt(e), lo = Math.min(dragFrom, b), hi = Math.max(dragFrom, b);
        dragFrom = -1; this.pending = null;
        this.range = hi - lo >= 1 ? [lo, hi] : [0, this.data.nBins];
        this.rebuild();
      });
      canvas.addEventListener("dblclick", () => { this.range = [0, this.data.nBins]; this.rebuild(); });
      new ResizeObserver(() => this.drawStrip()).observe(canvas);
    }
    stripSeries() {
      const d = this.data, v = $("strip-series").value || "w:0";
      if (v.startsWith("w:")) return { values: d.binTotals[+v.slice(2)], label: d.weights[+v.slice(2)] };
      const spec = d.ratios[+v.slice(2)], out = new Float64Array(d.nBins);
      for (let b = 0; b < d.nBins; b++) out[b] = HW.ratioValue(spec, d.binTotals, b);
      return { values: out, label: spec.name };
    }
    drawStrip() {
      const canvas = $("strip"), d = this.data;
      const cssW = canvas.clientWidth || 800, cssH = 70, dpr = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(cssW * dpr)) { canvas.width = Math.round(cssW * dpr); canvas.height = Math.round(cssH * dpr); canvas.style.height = cssH + "px"; }
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, cssW, cssH);
      const s = this.stripSeries();
      let max = 0;
      for (const v of s.values) if (isFinite(v) && v > max) max = v;
      const bw = cssW / d.nBins;
      const sel = this.pending || this.range;
      for (let b = 0; b < d.nBins; b++) {
        const v = s.values[b];
        if (!isFinite(v) || !max) continue;
        const h = (v / max) * (cssH - 14);
        ctx.fillStyle = b >= sel[0] && b < sel[1] ? "#4a7fc1" : "#b8c4d0";
        ctx.fillRect(b * bw, cssH - h, Math.max(bw - 0.3, 0.6), h);
      }
      if (sel[0] !== 0 || sel[1] !== d.nBins) {
        ctx.fillStyle = "rgba(74,127,193,0.10)";
        ctx.fillRect(sel[0] * bw, 0, (sel[1] - sel[0]) * bw, cssH);
      }
      ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "top";
      ctx.fillText(s.label + " per " + HW.fmtNs(d.time.bin_ns) + " (max " + fmtRatio(max) + ")", 4, 2);
      const label = $("range-label");
      if (this.range[0] === 0 && this.range[1] === d.nBins) label.textContent = "drag to select a time range; double-click clears";
      else {
        let n = 0;
        for (let b = this.range[0]; b < this.range[1]; b++) n += d.binTotals[0][b];
        label.textContent = "selected +" + HW.fmtNs(this.range[0] * d.time.bin_ns) + " … +" + HW.fmtNs(this.range[1] * d.time.bin_ns) +
          " (" + HW.fmtCount(n) + " samples)";
      }
    }

    // --- export ---
    selectionQuery() {
      const d = this.data, q = new URLSearchParams();
      if (this.range[0] !== 0 || this.range[1] !== d.nBins) {
        q.set("start", String(d.binTime(this.range[0])));
        q.set("end", String(d.binTime(this.range[1])));
      }
      if (this.filter && this.filter.pid !== null && this.filter.pid !== undefined) q.set("pid", String(this.filter.pid));
      if (this.filter && this.filter.tid !== null && this.filter.tid !== undefined) q.set("tid", String(this.filter.tid));
      if (this.flame.zoomNode >= 0 && this.view !== "inverted") q.set("focus", this.current.path(this.flame.zoomNode).map((n) => this.current.label(n)).join(";"));
      return q;
    }
    exportAs(e, format) {
      e.preventDefault();
      if (this.entryId) {
        const q = this.selectionQuery().toString();
        location.href = "/api/profile/" + encodeURIComponent(this.entryId) + "/export/" + format + (q ? "?" + q : "");
        return;
      }
      // A self-contained page has no server to cut a selection: it carries the whole profile's exports, rendered
      // by the server-side registry when the file was written (no format is written in this script).
      const exports = inlineJSON("exports") || {}, blob = exports[format];
      if (!blob) return;
      const bytes = Uint8Array.from(atob(blob.data), (c) => c.charCodeAt(0));
      download("profile." + blob.suffix, bytes, blob.media_type);
    }
  }

  function fmtRatio(v) {
    if (!isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e4) return HW.fmtCount(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
  }

  // A served page asks for the small preview and the full payload at once (the latter is also preloaded by a
  // <link rel=preload>); the preview is drawn if it arrives first, then the full view replaces it.
  async function profilePage() {
    const entryId = document.body.dataset.entry || null;
    const t0 = performance.now();
    let payload = inlineJSON("payload"), preview = null;
    if (!payload) {
      const url = "/api/profile/" + encodeURIComponent(entryId);
      let full = null;
      const fullPromise = fetchJSON(url).then((p) => { full = p; return p; });
      fullPromise.catch(() => {});
      try {
        const p = await fetchJSON(url + "/preview");
        if (!full) {
          preview = new HW.FlameGraph($("flame"), { orientation: "flame" });
          preview.setTree(HW.previewTree(p), p.weights.length > 1 ? 1 : 0);
          $("status").textContent = "loading the full profile…";
          HW.timings = { previewMs: performance.now() - t0 };
          requestAnimationFrame(() => { HW.timings.previewFrameMs = performance.now(); });
        }
      } catch (e) { /* no preview: wait for the full payload */ }
      try { payload = await fullPromise; } catch (e) { showError(e.message); document.body.dataset.ready = "error"; return; }
    }
    const t1 = performance.now();
    const data = new HW.ProfileData(payload);
    if (preview) { preview.destroy(); $("status").textContent = ""; }
    const view = new ProfileView(data, entryId);
    HW.view = view;
    HW.timings = Object.assign(HW.timings || {}, { fetchMs: t1 - t0, decodeAndDrawMs: performance.now() - t1 });
    // performance.now() counts from the navigation start, so this is "page requested -> first frame painted".
    requestAnimationFrame(() => { HW.timings.firstFrameMs = performance.now(); });
  }

  // ======================================================================================================
  // diff page
  // ======================================================================================================
  // Merge two profiles' call trees by call path of function names (+ module file name).
  function diffData(A, B) {
    const funcs = new Map(), labels = [], modules = [], kinds = [];
    const fmap = (D) => {
      const out = new Int32Array(D.nFuncs);
      for (let f = 0; f < D.nFuncs; f++) {
        const key = D.funcLabel(f) + "\u0000" + basename(D.funcModuleName(f));
        let id = funcs.get(key);
        if (id === undefined) { id = labels.length; funcs.set(key, id); labels.push(D.funcLabel(f)); modules.push(D.funcModuleName(f)); kinds.push(D.funcKindName(f)); }
        out[f] = id;
      }
      return out;
    };
    const fa = fmap(A.data), fb = fmap(B.data);
    const merged = { nFuncs: labels.length, funcLabel: (f) => labels[f], funcModuleName: (f) => modules[f],
      funcKindName: (f) => kinds[f], funcFileName: () => "" };
    // Weight columns: pairs of (before, after) for samples, the common sampling event, and counters by name.
    const pairs = [];
    A.data.weights.forEach((name, i) => {
      const j = i === 0 ? 0 : B.data.weights.indexOf(name);
      if (j >= 0) pairs.push({ name: name, a: i, b: j });
    });
    const nW = pairs.length * 2;
    const tb = new HW.TreeBuilder(merged, nW);
    const add = (T, fm, side) => {
      const map = new Int32Array(T.n);
      for (let n = 0; n < T.n; n++) {
        const p = T.parent[n];
        const m = tb.node(p >= 0 ? map[p] : -1, fm[T.func[n]]);
        map[n] = m;
        pairs.forEach((pair, k) => {
          const col = side === 0 ? pair.a : pair.b;
          tb.self[2 * k + side][m] += T.self[col][n];
          tb.total[2 * k + side][m] += T.total[col][n];
        });
      }
    };
    add(A, fa, 0); add(B, fb, 1);
    const tree = tb.build();
    return { tree: tree, pairs: pairs, merged: merged };
  }

  async function diffPage() {
    const before = document.body.dataset.before, after = document.body.dataset.after;
    let pa, pb;
    try {
      pa = inlineJSON("payload-before") || await fetchJSON("/api/profile/" + encodeURIComponent(before));
      pb = inlineJSON("payload-after") || await fetchJSON("/api/profile/" + encodeURIComponent(after));
    } catch (e) { showError(e.message); document.body.dataset.ready = "error"; return; }
    const A = new HW.ProfileData(pa), B = new HW.ProfileData(pb);
    const d = diffData(A.aggregate(0, A.nBins), B.aggregate(0, B.nBins));
    HW.diffView = new DiffView(d, A, B);
  }

  class DiffView {
    constructor(diff, A, B) {
      this.diff = diff; this.A = A; this.B = B;
      const t = diff.tree;
      this.tip = $("tooltip");
      this.flame = new HW.FlameGraph($("flame"), { orientation: "flame" });
      const mode = $("diff-mode");
      diff.pairs.forEach((p, k) => mode.append(el("option", { value: "w:" + k, text: k === 0 ? "samples (normalised)" : p.name + " (normalised)" })));
      // ratios present in both profiles
      this.ratios = [];
      for (const ra of A.ratios) {
        if (ra.den2 >= 0) continue;  // a two-column denominator has no diff view
        const na = A.weights[ra.num], da = A.weights[ra.den];
        const kn = diff.pairs.findIndex((p) => p.name === na), kd = diff.pairs.findIndex((p) => p.name === da);
        if (kn > 0 && kd > 0) this.ratios.push({ name: ra.name, unit: ra.unit, scale: ra.scale, kn: kn, kd: kd });
      }
      this.ratios.forEach((r, i) => mode.append(el("option", { value: "r:" + i, text: r.name + " before vs after" })));
      mode.addEventListener("change", () => this.apply());
      this.flame.on("hover", (h, e) => this.onHover(h, e));
      this.flame.on("zoom", () => this.breadcrumb());
      const search = $("search");
      search.addEventListener("input", () => {
        const rx = HW.compileSearch(search.value);
        const match = rx ? new Uint8Array(diff.merged.nFuncs).map((_, f) => rx.test(diff.merged.funcLabel(f)) ? 1 : 0) : null;
        this.flame.setMatch(match);
        const k = this.pairIndex();
        $("search-result").textContent = match ? "matched before " + HW.fmtPct(100 * HW.matchedShare(t, match, 2 * k) / (t.rootTotal[2 * k] || 1)) +
          ", after " + HW.fmtPct(100 * HW.matchedShare(t, match, 2 * k + 1) / (t.rootTotal[2 * k + 1] || 1)) : "";
      });
      $("reset").addEventListener("click", () => { search.value = ""; this.flame.setMatch(null); this.flame.zoom(-1); $("search-result").textContent = ""; });
      const s = $("summary");
      s.append(el("span", null, el("b", { text: "before: " }), (A.meta.target || "") + " · " + HW.fmtCount(A.meta.n_samples) + " samples"),
        el("span", null, el("b", { text: "after: " }), (B.meta.target || "") + " · " + HW.fmtCount(B.meta.n_samples) + " samples"),
        el("span", { class: "muted", text: "widths: after, normalised; colour: growth red, shrink blue" }));
      this.flame.setTree(t, 1);
      this.apply();
      document.body.dataset.ready = "1";
    }
    pairIndex() { const v = $("diff-mode").value; return v.startsWith("w:") ? +v.slice(2) : 0; }
    share(k, side, n) { const t = this.diff.tree, c = 2 * k + side; return t.rootTotal[c] ? t.total[c][n] / t.rootTotal[c] : 0; }
    ratio(r, side, n) { const t = this.diff.tree, den = t.total[2 * r.kd + side][n]; return den ? t.total[2 * r.kn + side][n] / den * r.scale : NaN; }
    apply() {
      const v = $("diff-mode").value || "w:0", t = this.diff.tree, legend = $("legend");
      legend.replaceChildren();
      const grad = el("span", { class: "gradient" });
      grad.style.background = "linear-gradient(90deg," + [-1, -0.5, 0, 0.5, 1].map(HW.diverging).join(",") + ")";
      if (v.startsWith("w:")) {
        const k = +v.slice(2);
        let maxAbs = 0;
        for (let n = 0; n < t.n; n++) { const dlt = Math.abs(this.share(k, 1, n) - this.share(k, 0, n)); if (dlt > maxAbs) maxAbs = dlt; }
        maxAbs = maxAbs || 1;
        this.flame.weight = 2 * k + 1;
        this.flame.colorFn = (tree, n) => HW.diverging((this.share(k, 1, n) - this.share(k, 0, n)) / maxAbs);
        legend.append(el("span", { text: "−" + (100 * maxAbs).toFixed(2) + " pp " }), grad, el("span", { text: " +" + (100 * maxAbs).toFixed(2) + " pp of " + this.diff.pairs[k].name }));
      } else {
        const r = this.ratios[+v.slice(2)];
        this.flame.weight = 1;
        this.flame.colorFn = (tree, n) => {
          const a = this.ratio(r, 0, n), b = this.ratio(r, 1, n);
          return isFinite(a) && isFinite(b) && a ? HW.diverging((b - a) / a / 0.5) : "hsl(0,0%,86%)";
        };
        legend.append(el("span", { text: r.name + " −50% " }), grad, el("span", { text: " +50% (after vs before)" }));
      }
      this.flame.render();
      this.renderChanges();
    }
    onHover(h, e) {
      if (!h) { this.tip.hidden = true; return; }
      const n = h.rect[2], t = this.diff.tree, box = el("div");
      if (n === HW.MERGED) { box.append(el("div", { class: "name", text: h.rect[3] + " merged frames" })); }
      else {
        box.append(el("div", { class: "name", text: t.label(n) }));
        const rows = [];
        this.diff.pairs.forEach((p, k) => {
          const a = this.share(k, 0, n), b = this.share(k, 1, n);
          rows.push([p.name + " before", HW.fmtPct(100 * a) + " (" + HW.fmtCount(t.total[2 * k][n]) + ")"]);
          rows.push([p.name + " after", HW.fmtPct(100 * b) + " (" + HW.fmtCount(t.total[2 * k + 1][n]) + ")"]);
          rows.push([p.name + " change", (b >= a ? "+" : "") + (100 * (b - a)).toFixed(2) + " pp"]);
        });
        for (const r of this.ratios) rows.push([r.name + " before → after", fmtRatio(this.ratio(r, 0, n)) + " → " + fmtRatio(this.ratio(r, 1, n))]);
        box.append(table(rows));
      }
      this.tip.replaceChildren(box);
      placeTooltip(this.tip, e);
    }
    breadcrumb() {
      const nav = $("breadcrumb"), t = this.diff.tree;
      nav.replaceChildren(el("a", { text: "all", onclick: () => this.flame.zoom(-1) }));
      if (this.flame.zoomNode >= 0) for (const n of t.path(this.flame.zoomNode)) nav.append(el("span", { class: "sep", text: "›" }), el("a", { text: t.label(n), onclick: () => this.flame.zoom(n) }));
    }
    renderChanges() {
      const t = this.diff.tree, k = this.pairIndex(), ft = HW.functionTotals(t);
      const ta = t.rootTotal[2 * k] || 1, tb = t.rootTotal[2 * k + 1] || 1;
      const rows = [];
      for (let f = 0; f < this.diff.merged.nFuncs; f++) {
        const a = ft.total[2 * k][f] / ta, b = ft.total[2 * k + 1][f] / tb;
        const sa = ft.self[2 * k][f] / ta, sb = ft.self[2 * k + 1][f] / tb;
        if (a || b) rows.push([f, a, b, sa, sb]);
      }
      rows.sort((x, y) => Math.abs(y[4] - y[3]) + Math.abs(y[2] - y[1]) - Math.abs(x[4] - x[3]) - Math.abs(x[2] - x[1]));
      const tableEl = $("changes");
      tableEl.querySelector("thead").replaceChildren(el("tr", null, ...["function", "self before", "self after", "self Δ", "total before", "total after", "total Δ"].map((h, i) => el("th", { class: i ? "num" : "", text: h }))));
      const pp = (v) => (v >= 0 ? "+" : "") + (100 * v).toFixed(2) + " pp";
      tableEl.querySelector("tbody").replaceChildren(...rows.slice(0, 100).map((r) => el("tr", null,
        el("td", { class: "name", text: this.diff.merged.funcLabel(r[0]) }),
        el("td", { class: "num", text: HW.fmtPct(100 * r[3]) }), el("td", { class: "num", text: HW.fmtPct(100 * r[4]) }), el("td", { class: "num", text: pp(r[4] - r[3]) }),
        el("td", { class: "num", text: HW.fmtPct(100 * r[1]) }), el("td", { class: "num", text: HW.fmtPct(100 * r[2]) }), el("td", { class: "num", text: pp(r[2] - r[1]) }))));
    }
  }

  // ======================================================================================================
  // stat page
  // ======================================================================================================
  async function statPage() {
    const id = document.body.dataset.entry;
    let run;
    try { run = await fetchJSON("/api/stat/" + encodeURIComponent(id)); } catch (e) { showError(e.message); document.body.dataset.ready = "error"; return; }
    const s = $("summary");
    if (run.target) s.append(el("span", null, el("b", { text: "target: " }), run.target));
    if (run.duration_ns) s.append(el("span", null, el("b", { text: "duration: " }), HW.fmtNs(run.duration_ns)));
    for (const n of run.notes) s.append(el("div", { class: "muted", text: n }));
    $("events").querySelector("tbody").replaceChildren(...run.events.map((e) => el("tr", null,
      el("td", { class: "name", text: e.name }),
      el("td", { class: "num", text: e.supported && e.value !== null ? e.value.toLocaleString("en-US") : "<not supported>" }),
      el("td", { text: e.unit }),
      el("td", { class: "num", text: e.running_pct === null ? "–" : HW.fmtPct(e.running_pct) }),
      el("td", { class: "muted", text: e.running_pct !== null && e.running_pct < 100 ? "multiplexed: scaled from " + HW.fmtPct(e.running_pct) + " of the time" : "" }))));
    $("metrics").querySelector("tbody").replaceChildren(...(run.metrics.length ? run.metrics.map((m) => el("tr", null,
      el("td", { class: "name", text: m.name }),
      el("td", { class: "num", text: m.value === null ? "–" : fmtRatio(m.value) }),
      el("td", { text: m.unit }),
      el("td", { class: "num", text: m.uncertainty_pct !== undefined ? "±" + HW.fmtPct(m.uncertainty_pct) : (m.stddev !== undefined ? "±" + fmtRatio(m.stddev) : "") })))
      : [el("tr", null, el("td", { colspan: "4", class: "muted", text: "no derived metrics (they need hardware counters)" }))]));
    if (run.topdown && run.topdown.nodes.length) drawTopdown(run.topdown);
    if (run.slices.length) {
      const names = [];
      for (const sl of run.slices) for (const e of sl.events) if (!names.includes(e.name)) names.push(e.name);
      $("slices-panel").hidden = false;
      $("slices").querySelector("thead").replaceChildren(el("tr", null, el("th", { text: "thread / cpu" }),
        ...names.map((n) => el("th", { class: "num", text: n }))));
      $("slices").querySelector("tbody").replaceChildren(...run.slices.map((sl) => el("tr", null,
        el("td", { class: "name", text: sl.name }),
        ...names.map((n) => { const e = sl.events.find((x) => x.name === n);
          return el("td", { class: "num", text: e && e.value !== null ? e.value.toLocaleString("en-US") : "–" }); }))));
    }
    const box = $("series");
    if (!run.series.length) box.append(el("p", { class: "muted", text: "no interval series (record with hwprof stat -I MS to get one)" }));
    for (const series of run.series) {
      const wrap = el("div", { class: "series-chart" }, el("div", { class: "label", text: series.name }));
      const canvas = el("canvas", { height: "90" });
      wrap.append(canvas); box.append(wrap);
      drawSeries(canvas, series);
    }
    document.body.dataset.ready = "1";
  }

  // The TMA tree of `hwprof stat --topdown-level N`: one row per node, indented by level, a bar for its share of
  // slots, the bottleneck path (toplev's <==) highlighted; children fold under their parent on click.
  function drawTopdown(td) {
    $("topdown-panel").hidden = false;
    $("topdown-title").textContent = "top-down (TMA) to level " + td.level + " · " + td.cpuid + " (" + td.model + ")";
    const box = $("topdown");
    const rows = new Map();
    for (const n of td.nodes) {
      const bar = el("span", { class: "tma-bar" });
      if (n.value !== null) bar.style.width = Math.max(0, Math.min(100, n.value)) + "%";
      const value = n.value === null ? "n/a" : n.value.toFixed(1) + (n.unit === "%" ? " %" : " " + n.unit);
      const extra = n.value === null ? n.reason : (n.uncertainty ? "±" + HW.fmtPct(100 * n.uncertainty) + " multiplexed" : "");
      const name = el("span", { class: "tma-name", text: n.name });
      name.style.paddingLeft = (18 * (n.level - 1)) + "px";
      const row = el("div", { class: "tma-row" + (n.bottleneck ? " bottleneck" : "") + (n.over_threshold === false ? " below" : "") },
        name,
        el("span", { class: "tma-track" }, bar),
        el("span", { class: "tma-value num", text: value }),
        el("span", { class: "tma-mark", text: n.bottleneck ? "◀ bottleneck" : "" }),
        el("span", { class: "muted tma-extra", text: extra }));
      row.dataset.name = n.name; row.dataset.level = String(n.level);
      if (n.parent) row.dataset.parent = n.parent;
      rows.set(n.name, row);
      box.append(row);
    }
    const descendants = (name) => td.nodes.filter((n) => n.parent === name).flatMap((n) => [n.name, ...descendants(n.name)]);
    for (const [name, row] of rows) {
      if (!td.nodes.some((n) => n.parent === name)) continue;
      row.classList.add("has-children");
      row.addEventListener("click", () => {
        const folded = row.classList.toggle("folded");
        for (const d of descendants(name)) rows.get(d).hidden = folded;
      });
    }
  }

  function drawSeries(canvas, series) {
    const cssW = canvas.parentElement.clientWidth || 800, cssH = 90, dpr = window.devicePixelRatio || 1;
    canvas.width = cssW * dpr; canvas.height = cssH * dpr; canvas.style.height = cssH + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const t = series.t, v = series.v;
    if (!t.length) return;
    const t0 = Math.min(...t), t1 = Math.max(...t);
    let lo = Math.min(...v), hi = Math.max(...v);
    if (hi === lo) { hi += 1; lo = Math.min(0, lo); }
    const X = (x) => 50 + (t1 > t0 ? (x - t0) / (t1 - t0) : 0.5) * (cssW - 60);
    const Y = (y) => cssH - 14 - (y - lo) / (hi - lo) * (cssH - 24);
    ctx.strokeStyle = "#dde2e6"; ctx.beginPath(); ctx.moveTo(50, Y(lo)); ctx.lineTo(cssW - 10, Y(lo)); ctx.stroke();
    ctx.strokeStyle = "#2b6cb0"; ctx.lineWidth = 1.5; ctx.beginPath();
    t.forEach((x, i) => { if (i) ctx.lineTo(X(x), Y(v[i])); else ctx.moveTo(X(x), Y(v[i])); });
    ctx.stroke();
    ctx.fillStyle = "#2b6cb0";
    if (t.length < 200) t.forEach((x, i) => ctx.fillRect(X(x) - 1.5, Y(v[i]) - 1.5, 3, 3));
    ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
    ctx.fillText(fmtRatio(hi), 2, Y(hi)); ctx.fillText(fmtRatio(lo), 2, Y(lo));
    ctx.textBaseline = "bottom";
    ctx.fillText("+" + HW.fmtNs(t1 - t0), cssW - 70, cssH);
  }

  // ======================================================================================================
  // store page
  // ======================================================================================================
  async function storePage() {
    const state = { col: 5, desc: true, entries: [], picked: new Set() };
    const status = $("store-status");
    const columns = ["", "name", "kind", "target", "events", "created", "duration_ns", "samples", "lost", "stack_quality", ""];
    const tableEl = $("store-table");
    const load = async () => {
      try { state.entries = (await fetchJSON("/api/entries")).entries; } catch (e) { showError(e.message); return; }
      render();
      document.body.dataset.ready = "1";
    };
    const value = (e, key) => key === "events" ? e.events.join(",") : key === "name" ? (e.name || e.id) : e[key];
    const render = () => {
      const key = columns[state.col];
      const sorted = state.entries.slice().sort((a, b) => {
        const x = value(a, key), y = value(b, key);
        const c = x === y ? 0 : (x === null || x === undefined) ? -1 : (y === null || y === undefined) ? 1 : x < y ? -1 : 1;
        return state.desc ? -c : c;
      });
      for (const th of tableEl.querySelectorAll("th")) th.classList.remove("sorted-asc", "sorted-desc");
      tableEl.querySelectorAll("th")[state.col].classList.add(state.desc ? "sorted-desc" : "sorted-asc");
      const body = tableEl.querySelector("tbody");
      body.replaceChildren(...sorted.map((e) => {
        const href = (e.kind === "stat" ? "/stat/" : "/profile/") + encodeURIComponent(e.id);
        const pick = el("input", { type: "checkbox" });
        pick.checked = state.picked.has(e.id);
        pick.disabled = e.kind === "stat";
        pick.addEventListener("change", () => { if (pick.checked) state.picked.add(e.id); else state.picked.delete(e.id); updateCompare(); });
        const rename = el("button", { text: "rename", class: "rename" });
        rename.addEventListener("click", async () => {
          const name = window.prompt("new name for " + e.id, e.name || "");
          if (name === null) return;
          try { await postJSON("/api/entries/" + encodeURIComponent(e.id) + "/rename", { name: name }); await load(); status.textContent = "renamed " + e.id; } catch (err) { status.textContent = err.message; }
        });
        const del = el("button", { text: "delete", class: "delete" });
        del.addEventListener("click", async () => {
          if (!window.confirm("delete " + e.id + " and its data?")) return;
          try { await postJSON("/api/entries/" + encodeURIComponent(e.id) + "/delete", { confirm: e.id }); state.picked.delete(e.id); await load(); status.textContent = "deleted " + e.id; } catch (err) { status.textContent = err.message; }
        });
        const q = e.stack_quality;
        return el("tr", { "data-id": e.id },
          el("td", null, pick),
          el("td", { class: "name" }, el("a", { href: href, text: e.name || e.id }), el("div", { class: "muted", text: e.id })),
          el("td", { text: e.kind }),
          el("td", { class: "name", text: e.target }),
          el("td", { class: "name", text: e.events.join(", ") }),
          el("td", { text: new Date(e.created * 1000).toLocaleString() }),
          el("td", { class: "num", text: e.duration_ns ? HW.fmtNs(e.duration_ns) : "–" }),
          el("td", { class: "num", text: e.kind === "stat" ? "–" : HW.fmtCount(e.samples) }),
          el("td", { class: "num", text: String(e.lost) }),
          el("td", { class: "num", text: q === null || q === undefined ? "–" : HW.fmtPct(100 * q) }),
          el("td", null, rename, " ", del));
      }));
      if (!sorted.length) body.append(el("tr", null, el("td", { colspan: "11", class: "muted", text: "the store is empty: run hwprof record, hwprof stat or hwprof probe" })));
      updateCompare();
    };
    const compare = $("compare");
    const updateCompare = () => { compare.disabled = state.picked.size !== 2; };
    compare.addEventListener("click", () => {
      const ids = Array.from(state.picked);
      const byId = new Map(state.entries.map((e) => [e.id, e]));
      ids.sort((a, b) => byId.get(a).created - byId.get(b).created);
      location.href = "/diff?a=" + encodeURIComponent(ids[0]) + "&b=" + encodeURIComponent(ids[1]);
    });
    tableEl.querySelectorAll("th").forEach((th, i) => {
      if (!th.dataset.key) return;
      th.addEventListener("click", () => { if (state.col === i) state.desc = !state.desc; else { state.col = i; state.desc = true; } render(); });
    });
    await load();
  }

  const pages = { profile: profilePage, diff: diffPage, stat: statPage, store: storePage };
  HW.diffData = diffData;
  document.addEventListener("DOMContentLoaded", () => {
    const page = pages[document.body.dataset.page];
    if (page) page().catch((e) => { showError(String(e && e.message || e)); document.body.dataset.ready = "error"; });
  });
})(HW);
