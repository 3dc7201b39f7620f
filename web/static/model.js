// hwprof web view: the data model. Decodes the columnar payload and aggregates it into call trees.
// Everything here is plain arithmetic over typed arrays; nothing touches the DOM.
"use strict";
var HW = window.HW || (window.HW = {});

(function (HW) {
  const DTYPES = { i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array, i4: Int32Array, u4: Uint32Array,
    f4: Float32Array, f8: Float64Array };

  function decodeColumn(col) {
    let bytes;
    if (typeof Uint8Array.fromBase64 === "function") {
      bytes = Uint8Array.fromBase64(col.data);
    } else {
      const bin = atob(col.data);
      bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    }
    const T = DTYPES[col.dtype];
    if (!T) throw new Error("unknown column type " + col.dtype);
    if (bytes.byteOffset % T.BYTES_PER_ELEMENT) bytes = bytes.slice();
    return new T(bytes.buffer, bytes.byteOffset, bytes.byteLength / T.BYTES_PER_ELEMENT);
  }

  // Nodes arrive breadth-first and grouped by parent: roots, then each node's children in parent order.
  function parentsFromCounts(nRoots, counts) {
    const parent = new Int32Array(counts.length).fill(-1);
    let c = nRoots;
    for (let n = 0; n < counts.length; n++) for (let k = counts[n]; k > 0; k--) parent[c++] = n;
    return parent;
  }

  // Children of every node as CSR arrays (start offsets + flat list), parents precede children.
  function buildChildren(parent) {
    const n = parent.length;
    const count = new Int32Array(n + 1);
    let nRoots = 0;
    for (let i = 0; i < n; i++) { const p = parent[i]; if (p >= 0) count[p + 1]++; else nRoots++; }
    for (let i = 0; i < n; i++) count[i + 1] += count[i];
    const list = new Int32Array(count[n]);
    const fill = count.slice(0, n);
    const roots = new Int32Array(nRoots);
    let r = 0;
    for (let i = 0; i < n; i++) { const p = parent[i]; if (p >= 0) list[fill[p]++] = i; else roots[r++] = i; }
    return { start: count, list: list, roots: roots };
  }

  // A call tree with per-node self and total weights (one Float64Array per weight column).
  class Tree {
    constructor(data, func, parent, self, total, children) {
      this.data = data;
      this.func = func;
      this.parent = parent;
      this.n = func.length;
      this.self = self;
      this.total = total || Tree.totals(parent, self);
      const ch = children || buildChildren(parent);
      this.childStart = ch.start;
      this.childList = ch.list;
      this.roots = ch.roots;
      this.rootTotal = this.total.map((t) => { let s = 0; for (const r of this.roots) s += t[r]; return s; });
    }
    static totals(parent, self) {
      return self.map((s) => {
        const t = Float64Array.from(s);
        for (let i = t.length - 1; i >= 0; i--) { const p = parent[i]; if (p >= 0) t[p] += t[i]; }
        return t;
      });
    }
    children(node) { return this.childList.subarray(this.childStart[node], this.childStart[node + 1]); }
    label(node) { return this.data.funcLabel(this.func[node]); }
    depthOf(node) { let d = 0; for (let p = this.parent[node]; p >= 0; p = this.parent[p]) d++; return d; }
    path(node) { const out = []; for (let p = node; p >= 0; p = this.parent[p]) out.push(p); return out.reverse(); }
    // Find the node reached by following function names from the roots; -1 when the path does not exist here.
    findPath(names) {
      let candidates = this.roots, node = -1;
      for (const name of names) {
        node = -1;
        for (const c of candidates) if (this.label(c) === name) { node = c; break; }
        if (node < 0) return -1;
        candidates = this.children(node);
      }
      return node;
    }
  }

  class ProfileData {
    constructor(payload) {
      if (!payload || payload.version !== 1) throw new Error("unsupported payload version");
      this.payload = payload;
      this.meta = payload.meta || {};
      this.strings = payload.strings;
      this.funcName = decodeColumn(payload.funcs.name);
      this.funcModule = decodeColumn(payload.funcs.module);
      this.funcFile = decodeColumn(payload.funcs.file);
      this.funcKind = decodeColumn(payload.funcs.kind);
      this.kinds = payload.kinds;
      this.nFuncs = this.funcName.length;
      this.nodeFunc = Int32Array.from(decodeColumn(payload.nodes.func));
      this.nodeParent = parentsFromCounts(payload.nodes.roots, decodeColumn(payload.nodes.children));
      this.nNodes = this.nodeFunc.length;
      this.children = buildChildren(this.nodeParent);
      this.weights = payload.weights;
      this.nW = this.weights.length;
      this.ratios = payload.ratios || [];
      this.time = payload.time;
      this.nBins = payload.time.n_bins;
      this.binOffsets = decodeColumn(payload.cells.bin_offsets);
      this.cellNode = decodeColumn(payload.cells.node);
      this.cellW = payload.cells.weights.map(decodeColumn);
      this.lines = {
        func: decodeColumn(payload.lines.func), file: decodeColumn(payload.lines.file),
        line: decodeColumn(payload.lines.line), samples: decodeColumn(payload.lines.samples),
      };
      this.binTotals = this.cellW.map((w) => {
        const out = new Float64Array(this.nBins);
        for (let b = 0; b < this.nBins; b++) {
          let s = 0;
          for (let c = this.binOffsets[b]; c < this.binOffsets[b + 1]; c++) s += w[c];
          out[b] = s;
        }
        return out;
      });
      this.labelCache = new Array(this.nFuncs);
    }
    funcLabel(f) {
      let s = this.labelCache[f];
      if (s === undefined) s = this.labelCache[f] = this.strings[this.funcName[f]];
      return s;
    }
    funcModuleName(f) { const m = this.funcModule[f]; return m >= 0 ? this.strings[m] : ""; }
    funcFileName(f) { const m = this.funcFile[f]; return m >= 0 ? this.strings[m] : ""; }
    funcKindName(f) { return this.kinds[this.funcKind[f]] || "unknown"; }
    binTime(b) { return this.time.start_ns + b * this.time.bin_ns; }
    // The call tree of the samples in time bins [lo, hi).
    aggregate(lo, hi) {
      lo = Math.max(0, lo | 0); hi = Math.min(this.nBins, hi === undefined ? this.nBins : hi | 0);
      const c0 = this.binOffsets[lo], c1 = this.binOffsets[Math.max(lo, hi)];
      const node = this.cellNode;
      const self = this.cellW.map((w) => {
        const s = new Float64Array(this.nNodes);
        for (let c = c0; c < c1; c++) s[node[c]] += w[c];
        return s;
      });
      return new Tree(this, this.nodeFunc, this.nodeParent, self, null, this.children);
    }
  }

  // Grow a tree keyed by (parent node, function) with Map lookups; used by the inverted and sandwich views.
  class TreeBuilder {
    constructor(data, nW) { this.data = data; this.nW = nW; this.func = []; this.parent = []; this.map = new Map();
      this.self = []; for (let w = 0; w < nW; w++) this.self.push([]); this.total = []; for (let w = 0; w < nW; w++) this.total.push([]); }
    node(parent, func) {
      const key = (parent + 1) * this.data.nFuncs + func;
      let n = this.map.get(key);
      if (n === undefined) {
        n = this.func.length; this.map.set(key, n); this.func.push(func); this.parent.push(parent);
        for (let w = 0; w < this.nW; w++) { this.self[w].push(0); this.total[w].push(0); }
      }
      return n;
    }
    build() {
      const func = Int32Array.from(this.func), parent = Int32Array.from(this.parent);
      return new Tree(this.data, func, parent, this.self.map((a) => Float64Array.from(a)),
        this.total.map((a) => Float64Array.from(a)));
    }
  }

  // Bottom-up view: roots are the functions where samples landed, children their callers.
  function invertTree(tree) {
    const nW = tree.self.length, b = new TreeBuilder(tree.data, nW);
    for (let n = 0; n < tree.n; n++) {
      let any = false;
      for (let w = 0; w < nW; w++) if (tree.self[w][n]) { any = true; break; }
      if (!any) continue;
      let inv = b.node(-1, tree.func[n]);
      for (let w = 0; w < nW; w++) { b.total[w][inv] += tree.self[w][n]; b.self[w][inv] += tree.self[w][n]; }
      for (let p = tree.parent[n]; p >= 0; p = tree.parent[p]) {
        inv = b.node(inv, tree.func[p]);
        for (let w = 0; w < nW; w++) b.total[w][inv] += tree.self[w][n];
      }
    }
    return b.build();
  }

  // Nodes of function f that have no ancestor of f (so recursion is counted once).
  function outermost(tree, f) {
    const out = [];
    for (let n = 0; n < tree.n; n++) {
      if (tree.func[n] !== f) continue;
      let inner = false;
      for (let p = tree.parent[n]; p >= 0; p = tree.parent[p]) if (tree.func[p] === f) { inner = true; break; }
      if (!inner) out.push(n);
    }
    return out;
  }

  // Sandwich: who calls f (an inverted tree rooted at f) and what f calls (f's subtrees merged).
  function callersOf(tree, f) {
    const nW = tree.self.length, b = new TreeBuilder(tree.data, nW);
    for (const n of outermost(tree, f)) {
      let inv = b.node(-1, f);
      for (let w = 0; w < nW; w++) { b.total[w][inv] += tree.total[w][n]; b.self[w][inv] += tree.self[w][n]; }
      for (let p = tree.parent[n]; p >= 0; p = tree.parent[p]) {
        inv = b.node(inv, tree.func[p]);
        for (let w = 0; w < nW; w++) b.total[w][inv] += tree.total[w][n];
      }
    }
    return b.build();
  }

  function calleesOf(tree, f) {
    const nW = tree.self.length, b = new TreeBuilder(tree.data, nW);
    const stack = [];
    for (const n of outermost(tree, f)) stack.push([n, -1]);
    while (stack.length) {
      const [n, bp] = stack.pop();
      const m = b.node(bp, tree.func[n]);
      for (let w = 0; w < nW; w++) { b.self[w][m] += tree.self[w][n]; b.total[w][m] += tree.total[w][n]; }
      const ch = tree.children(n);
      for (let i = 0; i < ch.length; i++) stack.push([ch[i], m]);
    }
    return b.build();
  }

  // Self and total per function; total counts a function once per stack even when it recurses.
  function functionTotals(tree) {
    const nW = tree.self.length, nF = tree.data.nFuncs;
    const self = [], total = [];
    for (let w = 0; w < nW; w++) { self.push(new Float64Array(nF)); total.push(new Float64Array(nF)); }
    const active = new Int32Array(nF);
    const stack = [];
    for (let i = tree.roots.length - 1; i >= 0; i--) stack.push(tree.roots[i]);
    while (stack.length) {
      const item = stack.pop();
      if (item < 0) { active[tree.func[~item]]--; continue; }
      const f = tree.func[item];
      for (let w = 0; w < nW; w++) {
        self[w][f] += tree.self[w][item];
        if (active[f] === 0) total[w][f] += tree.total[w][item];
      }
      active[f]++;
      stack.push(~item);
      const ch = tree.children(item);
      for (let i = 0; i < ch.length; i++) stack.push(ch[i]);
    }
    return { self: self, total: total };
  }

  // Matched share for a search: weight of stacks with at least one matching frame.
  function matchedShare(tree, match, w) {
    const under = new Uint8Array(tree.n);
    let sum = 0;
    for (let n = 0; n < tree.n; n++) {
      const p = tree.parent[n];
      if (p >= 0 && under[p]) { under[n] = 1; continue; }
      if (match[tree.func[n]]) { under[n] = 1; sum += tree.total[w][n]; }
    }
    return sum;
  }

  function compileSearch(text) {
    if (!text) return null;
    try { return new RegExp(text, "i"); } catch (e) {
      return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i");
    }
  }

  function matchFunctions(data, regex) {
    const out = new Uint8Array(data.nFuncs);
    if (!regex) return out;
    for (let f = 0; f < data.nFuncs; f++) if (regex.test(data.funcLabel(f))) out[f] = 1;
    return out;
  }

  // Number formatting shared by the pages.
  function fmtCount(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e12) return (v / 1e12).toFixed(2) + "T";
    if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (Number.isInteger(v)) return String(v);
    return v.toPrecision(4);
  }
  function fmtPct(v) { return !isFinite(v) ? "–" : (v >= 10 ? v.toFixed(1) : v.toFixed(2)) + "%"; }
  function fmtNs(ns) {
    const a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(3) + " s";
    if (a >= 1e6) return (ns / 1e6).toFixed(2) + " ms";
    if (a >= 1e3) return (ns / 1e3).toFixed(1) + " µs";
    return ns.toFixed(0) + " ns";
  }
  function ratioValue(spec, tot, node) {
    const den = tot[spec.den][node];
    return den ? (tot[spec.num][node] / den) * spec.scale : NaN;
  }

  Object.assign(HW, {
    decodeColumn, buildChildren, Tree, TreeBuilder, ProfileData, invertTree, callersOf, calleesOf, outermost,
    functionTotals, matchedShare, compileSearch, matchFunctions, fmtCount, fmtPct, fmtNs, ratioValue,
  });
})(HW);
