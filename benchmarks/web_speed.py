"""Speed of the web view on a big profile, in headless Chromium, next to speedscope on the same profile.

The profile: 1M samples, 100k unique frames (hwprof.web.synthetic.big_profile, seeded, so every run measures the
same work). It goes into a fresh store, `hwprof serve` serves it, and Chromium (Debian's, driven by Playwright)
measures, inside the page:
  - first paint: navigation start -> the first animation frame after a flame graph is drawn (performance.now()
    counts from navigation start, so the HTML request, downloads, decoding and layout are all in it): the preview
    (call paths of >= 1/4096 of the samples, exact totals) when it arrives before the full payload,
  - interactive: navigation start -> the first frame after the full payload is decoded and drawn,
    both once against a cold server (payload built from the Profile) and then warm (payload cached),
  - zoom, search, hover and time-range selection: from the input event to the next animation frame, median of runs,
  - the payload: JSON bytes (columnar, string table) and the bytes sent (gzip).
When a speedscope build is at hand (`npm install speedscope` into .cache/web_speed, done here if npm works), the
same profile exported by `hwprof` as speedscope JSON is opened in speedscope's own release build, served from
127.0.0.1, and its time to first drawn flame chart is measured the same way. Ratios are printed last.

Run: .venv/bin/python benchmarks/web_speed.py [--samples N] [--frames N] [--runs N]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "web_speed"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SPEEDSCOPE_VERSION = "1.25.0"

# One interaction, timed inside the page from the event to the next animation frame.
TIMED = """async ([kind, arg]) => {
  const v = HW.view, g = v.flame, c = g.canvas, rect = c.getBoundingClientRect();
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  await frame();
  const t0 = performance.now();
  if (kind === 'zoom' || kind === 'hover') {
    let best = null;
    for (let d = 1; d < g.rows.length && !best; d++) for (const r of g.rows[d] || [])
      if (r[2] >= 0 && !r[5] && r[1] - r[0] > arg) { best = [r, d]; break; }
    const [r, d] = best;
    const ev = new MouseEvent(kind === 'zoom' ? 'click' : 'mousemove',
      {clientX: rect.left + (r[0] + r[1]) / 2, clientY: rect.top + g.rowY(d) + 8, bubbles: true});
    c.dispatchEvent(ev);
  } else if (kind === 'unzoom') {
    g.zoom(-1);
  } else if (kind === 'search') {
    const s = document.getElementById('search'); s.value = arg; s.dispatchEvent(new Event('input'));
  } else if (kind === 'range') {
    v.range = [Math.floor(v.data.nBins * 0.25), Math.floor(v.data.nBins * 0.6)]; v.rebuild();
  } else if (kind === 'unrange') {
    v.range = [0, v.data.nBins]; v.rebuild();
  }
  await frame();
  return performance.now() - t0;
}"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def big_profile_path(samples: int, frames: int) -> Path:
    path = CACHE / f"big-{samples}-{frames}.npz"
    if not path.exists():
        from hwprof.web.synthetic import big_profile

        log(f"building the {samples}-sample, {frames}-frame profile (once; cached in {path})")
        CACHE.mkdir(parents=True, exist_ok=True)
        big_profile(n_samples=samples, n_frames=frames).save(path)
    return path


def start_server(store_root: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "serve", "--store", str(store_root), "--port", "0",
                             "--no-warm"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+?)/?\s*$", line)
    if not match:
        proc.kill()
        raise SystemExit(f"hwprof serve did not start: {line!r}")
    return proc, match.group(1)


def speedscope_dir() -> Path | None:
    """speedscope's release build from npm (a registry package, installed into .cache), or None."""
    release = CACHE / "node_modules" / "speedscope" / "dist" / "release"
    if (release / "index.html").exists():
        return release
    if not shutil.which("npm"):
        return None
    log(f"installing speedscope@{SPEEDSCOPE_VERSION} from npm into {CACHE}")
    done = subprocess.run(["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--silent",
                           f"speedscope@{SPEEDSCOPE_VERSION}"], capture_output=True, text=True, timeout=300)
    return release if done.returncode == 0 and (release / "index.html").exists() else None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve_dir(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure_hwprof(browser, url: str, runs: int) -> dict:
    results: dict[str, list[float]] = {k: [] for k in ("first_paint", "interactive", "zoom", "unzoom", "search",
                                                       "hover", "range", "unrange")}
    for run in range(runs + 1):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("body[data-ready]", timeout=120_000)
        for _ in range(200):
            timings = page.evaluate("window.HW && HW.timings") or {}
            if timings.get("firstFrameMs"):
                break
            time.sleep(0.01)
        # first paint: the preview when it came first, else the full graph; interactive: the full graph drawn
        first = timings.get("previewFrameMs") or timings["firstFrameMs"]
        if run == 0:
            results["cold_first_paint"] = [first]
            results["cold_interactive"] = [timings["firstFrameMs"]]
        else:
            results["first_paint"].append(first)
            results["interactive"].append(timings["firstFrameMs"])
            results["zoom"].append(page.evaluate(TIMED, ["zoom", 40]))
            results["unzoom"].append(page.evaluate(TIMED, ["unzoom", 0]))
            results["search"].append(page.evaluate(TIMED, ["search", "method_1\\d{3}$"]))
            results["hover"].append(page.evaluate(TIMED, ["hover", 20]))
            results["range"].append(page.evaluate(TIMED, ["range", 0]))
            results["unrange"].append(page.evaluate(TIMED, ["unrange", 0]))
            if run == 1:
                shots = REPO / "tests" / "output" / "web"
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / "bench-1M.png"))
        page.close()
    return {k: median(v) for k, v in results.items()}


def measure_speedscope(browser, base: str, name: str, runs: int) -> float:
    """Navigation start -> speedscope has drawn its flame chart canvas for the loaded profile."""
    times = []
    for _ in range(runs):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/release/index.html#profileURL={base}/profile.speedscope.json")
        # speedscope shows the profile's name in its toolbar once the profile is imported and the view is built
        page.wait_for_selector(f"text={name}", timeout=300_000)
        times.append(page.evaluate("new Promise((r) => requestAnimationFrame(() => r(performance.now())))"))
        page.close()
    return median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-speedscope", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from hwprof.profile import Profile
    from hwprof.store import ProfileStore, StoreEntry

    source = big_profile_path(args.samples, args.frames)
    profile = Profile.load(source)
    tmp = Path(tempfile.mkdtemp(prefix="hwprof-web-speed-"))
    store = ProfileStore(tmp / "store")
    entry_id, data = store.reserve("record", "npz")
    shutil.copyfile(source, data)
    store.add(StoreEntry(id=entry_id, kind="record", file=data.name, created=time.time(), name="synthetic-1M",
                         target=profile.meta.target, events=profile.meta.events, samples=profile.n_samples))
    proc, base = start_server(store.root)
    report: dict = {"samples": profile.n_samples, "unique_frames": int(len(profile.frame_function)),
                    "stack_table_nodes": int(len(profile.stack_frame))}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            timings = measure_hwprof(browser, f"{base}/profile/{entry_id}", args.runs)
            report.update({f"hwprof_{k}_ms": round(v, 1) for k, v in timings.items()})
            plain = urllib.request.urlopen(f"{base}/api/profile/{entry_id}").read()
            packed = urllib.request.urlopen(urllib.request.Request(
                f"{base}/api/profile/{entry_id}", headers={"Accept-Encoding": "gzip"})).read()
            payload = json.loads(plain)
            report["payload_json_mb"] = round(len(plain) / 1e6, 2)
            report["payload_gzip_mb"] = round(len(packed) / 1e6, 2)
            from hwprof.web.payload import decode_column

            report["payload_call_tree_nodes"] = int(len(decode_column(payload["nodes"]["func"])))
            report["payload_cells"] = int(len(decode_column(payload["cells"]["node"])))
            release = None if args.no_speedscope else speedscope_dir()
            if release is not None:
                site = tmp / "speedscope-site"
                shutil.copytree(release, site / "release")
                doc = urllib.request.urlopen(f"{base}/api/profile/{entry_id}/export/speedscope").read()
                (site / "profile.speedscope.json").write_bytes(doc)
                report["speedscope_json_mb"] = round(len(doc) / 1e6, 2)
                name = json.loads(doc)["name"]
                server, sbase = serve_dir(site)
                try:
                    report["speedscope_first_paint_ms"] = round(measure_speedscope(browser, sbase, name, args.runs), 1)
                finally:
                    server.shutdown()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

    print(json.dumps(report, indent=2))
    goals = [("first paint (warm server)", report["hwprof_first_paint_ms"], 1000),
             ("fully interactive (warm)", report["hwprof_interactive_ms"], 1000),
             ("first paint (cold server)", report["hwprof_cold_first_paint_ms"], 1000),
             ("zoom", report["hwprof_zoom_ms"], 100), ("search", report["hwprof_search_ms"], 100),
             ("hover", report["hwprof_hover_ms"], 100), ("payload MB", report["payload_json_mb"], 20)]
    for label, value, goal in goals:
        print(f"{label:28s} {value:10.1f}   goal < {goal:<6}  ratio to goal {value / goal:5.2f}  "
              f"{'ok' if value < goal else 'MISSED'}")
    if "speedscope_first_paint_ms" in report:
        ratio = report["speedscope_first_paint_ms"] / report["hwprof_first_paint_ms"]
        print(f"first paint, same profile: speedscope {report['speedscope_first_paint_ms']:.0f} ms / hwprof "
              f"{report['hwprof_first_paint_ms']:.0f} ms = {ratio:.2f}x (speedscope's time / hwprof's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
