"""Fixtures for the web tier: a store holding a real perf recording plus known synthetic entries, a live
`hwprof serve`, and headless Chromium (Debian's, driven by Playwright; never a downloaded browser)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from hwprof.web.synthetic import small_profile
from web_fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    add_profile,
    offcpu_recording,
    perf_recording,
    recursive_profile,
    stat_document,
)

from hwprof.store import ProfileStore, StoreEntry


@pytest.fixture(scope="session")
def web_store(tmp_path_factory) -> dict:
    """A store with: fast and slow synthetic recordings (known weights, hostile names), a stat run, and a real
    perf recording of a compiled workload when perf can record here."""
    root = tmp_path_factory.mktemp("web-store")
    store = ProfileStore(root / "store")
    now = time.time()
    ids = {
        "fast": add_profile(store, small_profile(), "fast run", now - 30).id,
        "slow": add_profile(store, small_profile(slow_b=True, seed=2), "slow run", now - 20).id,
    }
    ids["recursive"] = add_profile(store, recursive_profile(), "recursive", now - 25).id
    stat_id, stat_path = store.reserve("stat", "json")
    stat_path.write_text(json.dumps(stat_document()))
    store.add(StoreEntry(id=stat_id, kind="stat", file=stat_path.name, created=now - 10, target="./work",
                         events=["task-clock", "page-faults", "cycles"], duration_ns=900_000_000))
    ids["stat"] = stat_id
    data = perf_recording(root)
    if data is not None:
        entry = store.import_file(data, kind="record", name="work (perf record -g)", target="./work",
                                  events=["cpu-clock"])
        ids["real"] = entry.id
    data = offcpu_recording(root)
    if data is not None:
        entry = store.import_file(data, kind="record", name="offcpu_split (hwprof record --off-cpu)",
                                  target="./offcpu_split 6", events=["cpu-clock", "sched:sched_switch"])
        ids["offcpu"] = entry.id
    return {"store": store, "ids": ids, "root": root}


@pytest.fixture(scope="session")
def live_server(web_store):
    """`hwprof serve --port 0` over the web store, as a user runs it; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "serve", "--store", str(web_store["store"].root),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+/)", line)
        if not match:
            proc.kill()
            pytest.fail(f"hwprof serve printed no URL: {line!r} {proc.stderr.read()[:500]!r}")
        yield match.group(1).rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh page that records console errors, page errors and dialogs (an XSS would open one)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.problems = []
    pg.on("pageerror", lambda exc: pg.problems.append(f"pageerror: {exc}"))
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.dialog_answers = []  # a test that expects prompts/confirms queues answers here; any other dialog is an error

    def on_dialog(dialog):
        if pg.dialog_answers:
            answer = pg.dialog_answers.pop(0)
            dialog.accept(answer) if dialog.type == "prompt" else dialog.accept()
        else:
            pg.problems.append(f"dialog: {dialog.message}")
            dialog.dismiss()

    pg.on("dialog", on_dialog)
    yield pg
    context.close()


