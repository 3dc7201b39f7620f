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
        const t = new Float64Array(s);
        for (let i = t.length - 1; i >= 0; i--) { const p = parent[i]; if (p >= 0) t[p] += t[i]; }
        return t;
      });
    }
    children(node) { return this.childList.subarray(this.childStart[node], this.childStart[node + 1]); }
    // recursion flags depend on the shape only, so they are shared through `structure` by every time range
    outer() {
      if (this._outer) return this._outer;
      const cache = this.structure || (this.structure = {});
      return (this._outer = cache.outer || (cache.outer = outerFlags(this)));
    }
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
      if (!payload || payload.version !== 2) throw new Error("unsupported payload version");  // web/payload.py PAYLOAD_VERSION
      this.payload = payload;
      this.meta = payload.meta || {};
      this.strings = payload.strings;
      // Widen every column to one type per role: the hot loops then see one array kind and stay monomorphic.
      const ints = (col) => new Int32Array(decodeColumn(col));
      const floats = (col) => new Float64Array(decodeColumn(col));
      this.funcName = ints(payload.funcs.name);
      this.funcModule = ints(payload.funcs.module);
      this.funcFile = ints(payload.funcs.file);
      this.funcKind = ints(payload.funcs.kind);
      this.kinds = payload.kinds;
      this.nFuncs = this.funcName.length;
      this.nodeFunc = new Int32Array(decodeColumn(payload.nodes.func));
      this.nodeParent = parentsFromCounts(payload.nodes.roots, decodeColumn(payload.nodes.children));
      this.nNodes = this.nodeFunc.length;
      this.children = buildChildren(this.nodeParent);
      this.weights = payload.weights;
      this.nW = this.weights.length;
      this.ratios = payload.ratios || [];
      this.time = payload.time;
      this.timeline = payload.timeline || null;  // off-CPU recordings: threads' blocked intervals
      this.nBins = payload.time.n_bins;
      this.binOffsets = ints(payload.cells.bin_offsets);
      this.cellNode = ints(payload.cells.node);
      this.cellW = payload.cells.weights.map(floats);
      this.lines = {
        func: ints(payload.lines.func), file: ints(payload.lines.file),
        line: ints(payload.lines.line), samples: floats(payload.lines.samples),
      };
      this.structure = {};  // per-structure caches shared by every time range (e.g. recursion flags)
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
      const tree = new Tree(this, this.nodeFunc, this.nodeParent, self, null, this.children);
      tree.structure = this.structure;
      return tree;
    }
  }

  // The preview (payload.build_preview): one function per node, exact totals, drawn until the full payload is in.
  class PreviewData {
    constructor(p) { this.labels = p.labels; this.modules = p.modules; this.kind = p.kind; this.kinds = p.kinds;
      this.nFuncs = p.labels.length; this.weights = p.weights; }
    funcLabel(f) { return this.labels[f]; }
    funcModuleName(f) { return this.modules[f]; }
    funcFileName() { return ""; }
    funcKindName(f) { return this.kinds[this.kind[f]] || "unknown"; }
  }
  function previewTree(p) {
    const data = new PreviewData(p), n = p.labels.length;
    const func = new Int32Array(n).map((_, i) => i), parent = new Int32Array(p.parent);
    const total = p.total.map((t) => new Float64Array(t));
    const self = total.map((t) => {
      const s = new Float64Array(t);
      for (let i = 0; i < n; i++) if (parent[i] >= 0) s[parent[i]] -= t[i];
      return s;
    });
    return new Tree(data, func, parent, self, total);
  }

  // Grow a tree keyed by (parent node, function): an open-addressing hash table over typed arrays (a Map keyed
  // by large numbers is an order of magnitude slower at a million entries). Used by inverted and sandwich views.
  class TreeBuilder {
    constructor(data, nW) {
      this.data = data; this.nW = nW; this.n = 0;
      this.alloc(1024);
      this.rehash(4096);
    }
    alloc(cap) {  // nW = 0 builds a bare shape (func, parent) without weights
      const grow = (old, T) => { const a = new T(cap); if (old) a.set(old.subarray(0, this.n)); return a; };
      this.cap = cap;
      this.func = grow(this.func, Int32Array);
      this.parent = grow(this.parent, Int32Array);
      this.self = Array.from({ length: this.nW }, (_, w) => grow(this.self && this.self[w], Float64Array));
      this.total = Array.from({ length: this.nW }, (_, w) => grow(this.total && this.total[w], Float64Array));
    }
    rehash(hcap) {
      this.hcap = hcap; this.mask = hcap - 1;
      this.slots = new Int32Array(hcap).fill(-1);
      for (let n = 0; n < this.n; n++) {
        let h = this.hash(this.parent[n], this.func[n]);
        while (this.slots[h] >= 0) h = (h + 1) & this.mask;
        this.slots[h] = n;
      }
    }
    // murmur3's finaliser over (parent, func): the low bits the mask keeps must depend on every input bit
    hash(parent, func) {
      let h = (Math.imul(parent + 1, 0x9E3779B1) + func) | 0;
      h ^= h >>> 15; h = Math.imul(h, 0x85EBCA77); h ^= h >>> 13; h = Math.imul(h, 0xC2B2AE35); h ^= h >>> 16;
      return h & this.mask;
    }
    node(parent, func) {
      const slots = this.slots, fa = this.func, pa = this.parent, mask = this.mask;
      let h = (Math.imul(parent + 1, 0x9E3779B1) + func) | 0;
      h ^= h >>> 15; h = Math.imul(h, 0x85EBCA77); h ^= h >>> 13; h = Math.imul(h, 0xC2B2AE35); h ^= h >>> 16;
      h &= mask;
      let n = slots[h];
      while (n >= 0) {
        if (fa[n] === func && pa[n] === parent) return n;
        h = (h + 1) & mask;
        n = slots[h];
      }
      n = this.n++;
      if (n >= this.cap) this.alloc(this.cap * 2);
      this.func[n] = func; this.parent[n] = parent;
      slots[h] = n;
      if (this.n * 2 > this.hcap) this.rehash(this.hcap * 2);
      return n;
    }
    build() {
      const n = this.n;
      return new Tree(this.data, this.func.slice(0, n), this.parent.slice(0, n),
        this.self.map((a) => a.slice(0, n)), this.total.map((a) => a.slice(0, n)));
    }
  }

  // Bottom-up view: roots are the functions where samples landed, children their callers.
  // The shape of the inverted tree does not depend on the time range, so it is built once per profile: every
  // node that ever holds samples maps to the inverted node of its full reversed path (`end`); a range then only
  // scatters self weights onto those ends and sums them up the inverted tree, which is linear and fast.
  function invertedShape(tree) {
    const data = tree.data, parent = tree.parent, func = tree.func;
    const holds = new Uint8Array(tree.n);
    if (data.cellNode && tree.structure === data.structure) { for (const n of data.cellNode) holds[n] = 1; }
    else for (let n = 0; n < tree.n; n++) for (let w = 0; w < tree.self.length; w++) if (tree.self[w][n]) holds[n] = 1;
    const b = new TreeBuilder(data, 0), end = new Int32Array(tree.n).fill(-1);
    for (let n = 0; n < tree.n; n++) {
      if (!holds[n]) continue;
      let inv = b.node(-1, func[n]);
      for (let p = parent[n]; p >= 0; p = parent[p]) inv = b.node(inv, func[p]);
      end[n] = inv;
    }
    const f = b.func.slice(0, b.n), par = b.parent.slice(0, b.n);
    return { func: f, parent: par, end: end, children: buildChildren(par), structure: {} };
  }

  function invertTree(tree) {
    const cache = tree.structure || {};
    const shape = cache.inverted || (cache.inverted = invertedShape(tree));
    const nW = tree.self.length, m = shape.func.length, end = shape.end, parent = shape.parent;
    const self = [], total = [];
    for (let w = 0; w < nW; w++) {
      const t = new Float64Array(m), s = new Float64Array(m), ts = tree.self[w];
      for (let n = 0; n < tree.n; n++) { const e = end[n]; if (e >= 0) t[e] += ts[n]; }
      for (let v = m - 1; v >= 0; v--) { const p = parent[v]; if (p >= 0) t[p] += t[v]; else s[v] = t[v]; }
      self.push(s); total.push(t);
    }
    const inv = new Tree(tree.data, shape.func, parent, self, total, shape.children);
    inv.structure = shape.structure;
    return inv;
  }

  // Nodes of function f that have no ancestor of f (so recursion is counted once).
  function outermost(tree, f) {
    const out = [], outer = tree.outer();
    for (let n = 0; n < tree.n; n++) if (tree.func[n] === f && outer[n]) out.push(n);
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
    const cs = tree.childStart, cl = tree.childList;
    const stackN = [], stackP = [];
    for (const n of outermost(tree, f)) { stackN.push(n); stackP.push(-1); }
    while (stackN.length) {
      const n = stackN.pop(), bp = stackP.pop();
      const m = b.node(bp, tree.func[n]);
      for (let w = 0; w < nW; w++) { b.self[w][m] += tree.self[w][n]; b.total[w][m] += tree.total[w][n]; }
      for (let c = cs[n]; c < cs[n + 1]; c++) { stackN.push(cl[c]); stackP.push(m); }
    }
    return b.build();
  }

  // outer[n] = 1 when no ancestor of n is the same function: a depth-first walk with a per-function counter.
  function outerFlags(tree) {
    const n = tree.n, func = tree.func, cs = tree.childStart, cl = tree.childList;
    const outer = new Uint8Array(n), active = new Int32Array(tree.data.nFuncs);
    const stack = new Int32Array(2 * n + tree.roots.length + 1);
    let sp = 0;
    for (let i = tree.roots.length - 1; i >= 0; i--) stack[sp++] = tree.roots[i];
    while (sp) {
      const item = stack[--sp];
      if (item < 0) { active[func[~item]]--; continue; }
      const f = func[item];
      outer[item] = active[f] === 0 ? 1 : 0;
      active[f]++;
      stack[sp++] = ~item;
      for (let c = cs[item + 1] - 1; c >= cs[item]; c--) stack[sp++] = cl[c];
    }
    return outer;
  }

  // Self and total per function; total counts a function once per stack even when it recurses.
  function functionTotals(tree) {
    const nW = tree.self.length, nF = tree.data.nFuncs, outer = tree.outer(), func = tree.func;
    const self = [], total = [];
    for (let w = 0; w < nW; w++) {
      const s = new Float64Array(nF), t = new Float64Array(nF), ts = tree.self[w], tt = tree.total[w];
      for (let n = 0; n < tree.n; n++) { const f = func[n]; s[f] += ts[n]; if (outer[n]) t[f] += tt[n]; }
      self.push(s); total.push(t);
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
  // A ratio's denominator: one column, or two added (a named miss event's rate: misses / (misses + hits)).
  function ratioDen(spec, tot, i) {
    return tot[spec.den][i] + (spec.den2 >= 0 ? tot[spec.den2][i] : 0);
  }

  function ratioValue(spec, tot, node) {
    const den = ratioDen(spec, tot, node);
    return den ? (tot[spec.num][node] / den) * spec.scale : NaN;
  }

  Object.assign(HW, {
    decodeColumn, buildChildren, Tree, TreeBuilder, ProfileData, PreviewData, previewTree, invertTree, callersOf, calleesOf, outermost,
    functionTotals, outerFlags, matchedShare, compileSearch, matchFunctions, fmtCount, fmtPct, fmtNs, ratioValue, ratioDen,
  });
})(HW);
