// hwprof web view: the canvas flame-graph renderer (flame, icicle, inverted, sandwich and diff all use it).
// Layout: children of a node share its width in proportion to their total, heaviest first. Children narrower
// than a pixel are merged into one hatched block carrying their summed weight, so the picture never loses
// weight; names are drawn with fillText, i.e. as text and never as markup.
"use strict";
var HW = window.HW || (window.HW = {});

(function (HW) {
  const ROW = 17;
  const MIN_PX = 1.0;
  const MERGED = -2;

  function hash(text) {
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 16777619); }
    return h >>> 0;
  }

  // Colour schemes. Each returns a CSS colour for a node.
  // offcpu: the marker frames of off-CPU recordings (task state at switch-out, the "--" before a waker's stack).
  const KIND_HUES = { user: [12, 40], kernel: [195, 225], jit: [95, 140], guest: [270, 300], offcpu: [240, 255],
    unknown: [0, 0] };
  function kindColor(tree, node) {
    const f = tree.func[node], kind = tree.data.funcKindName(f);
    const range = KIND_HUES[kind] || KIND_HUES.unknown;
    const h = hash(tree.data.funcLabel(f));
    if (kind === "unknown") return "hsl(0,0%," + (70 + (h % 12)) + "%)";
    const hue = range[0] + (h % (range[1] - range[0] + 1));
    return "hsl(" + hue + "," + (60 + (h >> 8) % 25) + "%," + (58 + (h >> 16) % 12) + "%)";
  }
  function moduleColor(tree, node) {
    const f = tree.func[node], mod = tree.data.funcModuleName(f);
    if (!mod) return "hsl(0,0%,78%)";
    const h = hash(mod);
    return "hsl(" + (h % 360) + ",55%," + (62 + ((hash(tree.data.funcLabel(f)) % 10))) + "%)";
  }
  // value in [0,1] -> a perceptual blue..yellow..red ramp
  function ramp(t) {
    t = Math.max(0, Math.min(1, t));
    const stops = [[49, 54, 149], [69, 117, 180], [116, 173, 209], [254, 224, 144], [244, 109, 67], [165, 0, 38]];
    const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), u = x - i;
    const a = stops[i], b = stops[i + 1];
    return "rgb(" + Math.round(a[0] + (b[0] - a[0]) * u) + "," + Math.round(a[1] + (b[1] - a[1]) * u) + "," +
      Math.round(a[2] + (b[2] - a[2]) * u) + ")";
  }
  // diverging: -1 (shrink, blue) .. 0 (white) .. +1 (growth, red)
  function diverging(t) {
    t = Math.max(-1, Math.min(1, t));
    if (t >= 0) return "rgb(255," + Math.round(245 - 190 * t) + "," + Math.round(240 - 200 * t) + ")";
    t = -t;
    return "rgb(" + Math.round(245 - 200 * t) + "," + Math.round(248 - 140 * t) + ",255)";
  }

  // True for colours where black text would be hard to read (the dark ends of the ratio ramps).
  const darkCache = new Map();
  function darkColor(css) {
    let dark = darkCache.get(css);
    if (dark === undefined) {
      const m = /^rgb\((\d+),(\d+),(\d+)\)$/.exec(css);
      dark = !!m && (0.299 * m[1] + 0.587 * m[2] + 0.114 * m[3]) < 110;
      if (darkCache.size < 4096) darkCache.set(css, dark);
    }
    return dark;
  }

  class FlameGraph {
    constructor(canvas, options) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d");
      this.options = Object.assign({ orientation: "flame", minRows: 8, maxHeight: 0 }, options || {});
      this.tree = null;
      this.weight = 0;
      this.zoomNode = -1;
      this.focusNode = -1;
      this.match = null;
      this.colorFn = kindColor;
      this.rects = null;
      this.listeners = {};
      this.hover = null;
      canvas.addEventListener("mousemove", (e) => this.onMove(e));
      canvas.addEventListener("mouseleave", () => { this.hover = null; this.emit("hover", null, null); });
      canvas.addEventListener("click", (e) => this.onClick(e));
      canvas.addEventListener("keydown", (e) => this.onKey(e));
      this.resizeObserver = new ResizeObserver(() => { if (!this.dead) this.render(); });
      this.resizeObserver.observe(canvas);
    }
    on(name, fn) { (this.listeners[name] = this.listeners[name] || []).push(fn); }
    // Stop drawing and reacting (the preview graph hands the canvas over to the full one).
    destroy() { this.dead = true; this.listeners = {}; this.resizeObserver.disconnect(); }
    emit(name, ...args) { for (const fn of this.listeners[name] || []) fn(...args); }
    setTree(tree, weight) { this.tree = tree; this.weight = weight || 0; this.zoomNode = -1; this.focusNode = -1; this.render(); }
    setWeight(weight) { this.weight = weight; this.render(); }
    setColor(fn) { this.colorFn = fn; this.draw(); }
    setMatch(match) { this.match = match; this.draw(); }
    setOrientation(o) { this.options.orientation = o; this.render(); }
    zoom(node) {
      this.zoomNode = node;
      this.focusNode = node;
      this.render();
      this.emit("zoom", node);
    }
    // Lay out the visible rectangles: rows[d] is a list of [x0, x1, node, mergedCount, mergedWeight].
    layout() {
      const tree = this.tree, width = this.width, w = this.weight;
      const rows = [];
      const push = (d, r) => { (rows[d] || (rows[d] = [])).push(r); };
      if (!tree || !tree.n) { this.rows = rows; return; }
      const tot = tree.total[w];
      let base = 0, x0 = 0, scale;
      let tops;
      if (this.zoomNode >= 0) {
        const path = tree.path(this.zoomNode);
        // ancestors drawn full width above the zoomed frame, so the context stays visible
        for (let i = 0; i < path.length - 1; i++) push(i, [0, width, path[i], 0, 0, true]);
        base = path.length - 1;
        scale = tot[this.zoomNode] > 0 ? width / tot[this.zoomNode] : 0;
        tops = [this.zoomNode];
      } else {
        scale = tree.rootTotal[w] > 0 ? width / tree.rootTotal[w] : 0;
        tops = tree.roots;
      }
      const stack = [];  // [node, depth, x0, width]
      const cs = tree.childStart, cl = tree.childList, byWeight = (a, b) => tot[b] - tot[a];
      // Children at least a pixel wide are sorted heaviest first and drawn; the rest are only summed into one
      // merged block at the end (they would sort last anyway), so a node with 10k tiny children costs one pass.
      const place = (list, from, to, depth, xStart) => {
        const big = [];
        let smallN = 0, smallW = 0;
        for (let i = from; i < to; i++) {
          const k = list[i], wpx = tot[k] * scale;
          if (wpx >= MIN_PX) big.push(k);
          else if (wpx > 0) { smallN++; smallW += tot[k]; }
        }
        big.sort(byWeight);
        let cx = xStart;
        for (const k of big) { const wpx = tot[k] * scale; stack.push([k, depth, cx, wpx]); cx += wpx; }
        if (smallN) push(depth, [cx, cx + smallW * scale, MERGED, smallN, smallW]);
      };
      place(tops, 0, tops.length, base, x0);
      while (stack.length) {
        const [n, d, nx, wpx] = stack.pop();
        push(d, [nx, nx + wpx, n, 0, 0]);
        if (cs[n + 1] > cs[n]) place(cl, cs[n], cs[n + 1], d + 1, nx);
      }
      for (const r of rows) if (r) r.sort((a, b) => a[0] - b[0]);
      this.rows = rows;
    }
    render() {
      const canvas = this.canvas;
      const cssWidth = canvas.clientWidth || canvas.parentElement.clientWidth || 800;
      this.width = cssWidth;
      this.layout();
      const nRows = Math.max(this.options.minRows, this.rows.length);
      let cssHeight = nRows * ROW + 2;
      if (this.options.maxHeight) cssHeight = Math.min(cssHeight, this.options.maxHeight);
      const dpr = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(cssWidth * dpr) || canvas.height !== Math.round(cssHeight * dpr)) {
        canvas.style.height = cssHeight + "px";
        canvas.width = Math.round(cssWidth * dpr);
        canvas.height = Math.round(cssHeight * dpr);
      }
      this.height = cssHeight;
      this.draw();
    }
    rowY(depth) {
      return this.options.orientation === "flame" ? this.height - (depth + 1) * ROW - 1 : depth * ROW + 1;
    }
    draw() {
      const ctx = this.ctx, dpr = window.devicePixelRatio || 1;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, this.width, this.height);
      if (!this.rows) return;
      ctx.font = "12px ui-monospace, 'DejaVu Sans Mono', monospace";
      ctx.textBaseline = "middle";
      const charW = this.charW || (this.charW = ctx.measureText("mmmmmmmmmm").width / 10);
      const tree = this.tree, match = this.match;
      // colours depend on (tree, weight, colour function) only: keep them across redraws (search, focus, hover)
      if (!this.colors || this.colorsFor !== this.colorFn || this.colorsTree !== tree || this.colorsWeight !== this.weight) {
        this.colors = new Map(); this.colorsFor = this.colorFn; this.colorsTree = tree; this.colorsWeight = this.weight;
      }
      const colors = this.colors;
      for (let d = 0; d < this.rows.length; d++) {
        const row = this.rows[d];
        if (!row) continue;
        const y = this.rowY(d);
        for (const r of row) {
          const x = r[0], w = r[1] - r[0], node = r[2];
          if (node === MERGED) {
            ctx.fillStyle = "#d4d8dc";
            ctx.fillRect(x, y, Math.max(w, 0.5), ROW - 1);
            continue;
          }
          let color = colors.get(node);
          if (color === undefined) { color = this.colorFn(tree, node); colors.set(node, color); }
          const matched = match && match[tree.func[node]];
          if (match && !matched) ctx.globalAlpha = 0.35;
          ctx.fillStyle = matched ? "#e040c8" : color;
          ctx.fillRect(x, y, w - (w > 3 ? 1 : 0), ROW - 1);
          ctx.globalAlpha = 1;
          if (r[5]) { ctx.fillStyle = "rgba(255,255,255,0.45)"; ctx.fillRect(x, y, w, ROW - 1); }
          if (node === this.focusNode) {
            ctx.strokeStyle = "#111"; ctx.lineWidth = 2; ctx.strokeRect(x + 1, y + 1, w - 3, ROW - 3);
          }
          if (w > charW * 3) {
            const label = tree.label(node);
            const fit = Math.floor((w - 6) / charW);
            ctx.fillStyle = matched || !darkColor(color) ? "#111" : "#fff";
            ctx.fillText(label.length > fit ? label.slice(0, Math.max(1, fit - 1)) + "…" : label, x + 3, y + ROW / 2);
          }
        }
      }
    }
    hit(e) {
      const rect = this.canvas.getBoundingClientRect();
      const x = e.clientX - rect.left, y = e.clientY - rect.top;
      let d = this.options.orientation === "flame" ? Math.floor((this.height - 1 - y) / ROW) : Math.floor((y - 1) / ROW);
      const row = this.rows && this.rows[d];
      if (!row) return null;
      let lo = 0, hi = row.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1, r = row[mid];
        if (x < r[0]) hi = mid - 1; else if (x >= r[1]) lo = mid + 1; else return { rect: r, depth: d };
      }
      return null;
    }
    onMove(e) {
      if (this.dead) return;
      const h = this.hit(e);
      this.hover = h;
      this.emit("hover", h, e);
    }
    onClick(e) {
      if (this.dead) return;
      const h = this.hit(e);
      this.canvas.focus();
      if (!h) return;
      if (h.rect[2] === MERGED) return;
      this.emit("select", h.rect[2]);
      this.zoom(h.rect[2]);
    }
    visible(node) {
      for (const row of this.rows || []) if (row) for (const r of row) if (r[2] === node) return r;
      return null;
    }
    // Keyboard: arrows move the focus frame (up/down by depth, left/right among siblings), Enter zooms,
    // Escape or Backspace zooms out.
    onKey(e) {
      if (this.dead) return;
      const tree = this.tree;
      if (!tree || !tree.n) return;
      let f = this.focusNode >= 0 ? this.focusNode : (this.zoomNode >= 0 ? this.zoomNode : this.heaviest(tree.roots));
      const towardLeaves = this.options.orientation === "flame" ? "ArrowUp" : "ArrowDown";
      const towardRoot = this.options.orientation === "flame" ? "ArrowDown" : "ArrowUp";
      let handled = true;
      if (e.key === towardLeaves) {
        const c = this.heaviest(tree.children(f));
        if (c >= 0) f = c;
      } else if (e.key === towardRoot) {
        if (tree.parent[f] >= 0) f = tree.parent[f];
      } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
        const p = tree.parent[f];
        const tot = tree.total[this.weight];
        const sib = Array.from(p >= 0 ? tree.children(p) : tree.roots).filter((n) => tot[n] > 0).sort((a, b) => tot[b] - tot[a]);
        const i = sib.indexOf(f) + (e.key === "ArrowRight" ? 1 : -1);
        if (i >= 0 && i < sib.length) f = sib[i];
      } else if (e.key === "Enter") {
        this.zoom(f);
      } else if (e.key === "Escape" || e.key === "Backspace") {
        const z = this.zoomNode >= 0 ? tree.parent[this.zoomNode] : -1;
        this.zoom(z);
        f = z;
      } else handled = false;
      if (!handled) return;
      e.preventDefault();
      this.focusNode = f;
      this.draw();
      this.emit("focus", f);
    }
    heaviest(nodes) {
      const tot = this.tree.total[this.weight];
      let best = -1;
      for (const n of nodes) if (best < 0 || tot[n] > tot[best]) best = n;
      return best;
    }
  }

  Object.assign(HW, { FlameGraph, kindColor, moduleColor, ramp, diverging, hash, MERGED, KIND_HUES });
})(HW);
