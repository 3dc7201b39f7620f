// hwprof web view: the fleet picker (/fleet). Labels and a time range select stored windows; the merged profile
// opens on the ordinary profile and diff pages. All text from the store goes through textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error((body && body.error) || response.status + " " + response.statusText);
    return body;
  }
  function cell(tag, text, cls) {
    const e = document.createElement(tag);
    e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function status(text) { $("fleet-status").textContent = text; }

  class Selection {
    constructor(root, prefix) {
      this.root = root;
      this.prefix = prefix;
      this.labels = [];
      this.q = (sel) => root.querySelector(sel);
      this.q(".label-key").addEventListener("change", () => this.loadValues());
      this.q(".add-label").addEventListener("click", () => this.addLabel());
    }
    fill(keys) {
      const select = this.q(".label-key");
      select.replaceChildren(...keys.map((k) => { const o = cell("option", k); o.value = k; return o; }));
      return this.loadValues();
    }
    async loadValues() {
      const key = this.q(".label-key").value;
      if (!key) return;
      const body = await getJSON("/api/fleet/labels/" + encodeURIComponent(key) + "?from=-30d&to=now");
      this.q(".label-value").replaceChildren(...body.values.map((v) => {
        const o = cell("option", v.value + " (" + v.samples.toLocaleString() + ")");
        o.value = v.value;
        return o;
      }));
    }
    addLabel() {
      const key = this.q(".label-key").value, value = this.q(".label-value").value;
      if (!key || value === "") return;
      this.labels.push([key, value]);
      this.showLabels();
    }
    showLabels() {
      const span = this.q(".labels");
      span.replaceChildren();
      this.labels.forEach(([k, v], i) => {
        const b = cell("button", k + "=" + v + " ✕");
        b.addEventListener("click", () => { this.labels.splice(i, 1); this.showLabels(); });
        span.append(b, " ");
      });
      if (!this.labels.length) span.textContent = "(all)";
    }
    params(target, prefix) {
      for (const [k, v] of this.labels) target.append(prefix + "label", k + ":" + v);
      target.set(prefix + "from", this.q(".from").value.trim());
      target.set(prefix + "to", this.q(".to").value.trim());
      const ev = this.root.querySelector(".event");
      if (ev && ev.value) target.set(prefix + "event", ev.value);
      return target;
    }
  }

  async function showTop(a) {
    status("querying…");
    const q = a.params(new URLSearchParams(), "");
    const [top, series] = await Promise.all([getJSON("/api/fleet/top?" + q), getJSON("/api/fleet/series?" + q)]);
    const body = $("fleet-top").querySelector("tbody");
    body.replaceChildren(...top.functions.map((f) => {
      const tr = document.createElement("tr");
      tr.append(cell("td", f.function), cell("td", f.module, "muted"), cell("td", f.total.toLocaleString(), "num"),
        cell("td", f.total_pct.toFixed(2) + "%", "num"), cell("td", f.self.toLocaleString(), "num"),
        cell("td", f.self_pct.toFixed(2) + "%", "num"));
      return tr;
    }));
    const names = [];
    for (const bin of series.bins) for (const n in bin.counters) if (!names.includes(n)) names.push(n);
    const head = document.createElement("tr");
    head.append(cell("th", "time (UTC, " + series.bin_s + " s bins)"), cell("th", "samples", "num"),
      cell("th", "period", "num"), ...names.map((n) => cell("th", n, "num")));
    $("series").querySelector("thead").replaceChildren(head);
    $("series").querySelector("tbody").replaceChildren(...series.bins.map((b) => {
      const tr = document.createElement("tr");
      tr.append(cell("td", new Date(b.t * 1000).toISOString().replace("T", " ").slice(0, 19)),
        cell("td", b.samples.toLocaleString(), "num"), cell("td", b.period.toExponential(3), "num"),
        ...names.map((n) => cell("td", (b.counters[n] || 0).toLocaleString(), "num")));
      return tr;
    }));
    status(top.title + ": " + top.total.toLocaleString() + " samples");
    document.body.dataset.ready = "1";
  }

  async function openView(a, b) {
    const q = a.params(new URLSearchParams(), "");
    if (b) b.params(q, "b_");
    const view = await getJSON("/api/fleet/view?" + q);
    location.href = b ? view.diff : view.profile;
  }

  document.addEventListener("DOMContentLoaded", async () => {
    if (document.body.dataset.page !== "fleet") return;
    const a = new Selection($("selection-a"), ""), b = new Selection($("selection-b"), "b_");
    try {
      const summary = await getJSON("/api/fleet/summary");
      const span = (ns) => ns ? new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 19) : "-";
      $("fleet-summary").textContent = summary.windows.toLocaleString() + " windows, " +
        summary.samples.toLocaleString() + " samples from " + summary.hosts + " host(s), " +
        span(summary.first_ns) + " .. " + span(summary.last_ns) + " UTC";
      const ev = $("selection-a").querySelector(".event");
      ev.replaceChildren(...summary.events.map(([name, n]) => {
        const o = cell("option", name + " (" + n.toLocaleString() + ")");
        o.value = name;
        return o;
      }));
      await a.fill(summary.label_keys);
      await b.fill(summary.label_keys);
      a.showLabels();
      b.showLabels();
      b.q(".copy-a").addEventListener("click", () => { b.labels = a.labels.slice(); b.showLabels(); });
      $("show-top").addEventListener("click", () => showTop(a).catch((e) => status(e.message)));
      $("open-flame").addEventListener("click", () => openView(a, null).catch((e) => status(e.message)));
      $("open-diff").addEventListener("click", () => openView(a, b).catch((e) => status(e.message)));
      await showTop(a);
    } catch (e) {
      status(String(e && e.message || e));
      document.body.dataset.ready = "error";
    }
  });
})();
