"""The fleet view of `hwprof serve --store clickhouse://...` against a real ClickHouse server: the picker's API,
merged profiles on the ordinary profile and diff pages (in headless Chromium), and bad selections."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from hwprof.web.app import create_app
from hwprof.web.payload import decode_column

from hwprof.fleet.clickhouse import ClickHouseStore, Selector
from hwprof.fleet.localserver import LocalClickHouse, server_binary
from hwprof.fleet.window import ProcessLabels, window_from_profile
from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta
from hwprof.store import ProfileStore


def service_profile(seed: int, slow_parse: bool):
    """main -> handle -> parse|render; `slow_parse` moves weight from render to parse (what a diff must show)."""
    rng = np.random.default_rng(seed)
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"], weight_names=["page-faults"], target="api"))
    main = b.frame(function="main", module="/srv/api", address=1, kind=FrameKind.USER)
    handle = b.frame(function="handle", module="/srv/api", address=2, kind=FrameKind.USER)
    parse = b.frame(function="parse", module="/srv/api", address=3, kind=FrameKind.USER)
    render = b.frame(function="render", module="/srv/api", address=4, kind=FrameKind.USER)
    stacks = [b.stack([main, handle, parse]), b.stack([main, handle, render])]
    b.threads[42] = "api"
    share = 0.8 if slow_parse else 0.3
    for i, k in enumerate(rng.random(500) > share):
        b.sample(time=i, pid=42, tid=42, cpu=0, stack=stacks[int(k)], period=1e6, counters=[1.0])
    return b.build()


@pytest.fixture(scope="module")
def fleet_url(tmp_path_factory):
    if server_binary() is None:
        pytest.skip("clickhouse-server is not installed (make apt-test installs it)")
    server = LocalClickHouse(tmp_path_factory.mktemp("ch-web")).start()
    url = server.url("web")
    now = time.time()
    with ClickHouseStore.open(url) as store:
        for i in range(6):  # an hour ago: render-heavy; the last minutes: parse-heavy
            for host, slow, start in (("a", False, now - 3600 + 10 * i), ("b", True, now - 120 + 10 * i)):
                store.insert_window(window_from_profile(
                    service_profile(i, slow), host=host, start_ns=int(start * 1e9), duration_ns=10_000_000_000,
                    labels={"service": "api"}, labeler=lambda pid, comm: ProcessLabels("/srv/api")))
    yield url
    server.stop()


@pytest.fixture
def client(fleet_url, tmp_path):
    app = create_app(ProfileStore(tmp_path / "store"), fleet_url=fleet_url)
    return app.test_client()


def payload_samples(response) -> int:
    body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") == "gzip" else response.data
    payload = json.loads(body)
    return int(decode_column(payload["cells"]["weights"][0]).sum())


def test_picker_api_and_merged_views(client, fleet_url):
    summary = client.get("/api/fleet/summary").get_json()
    assert summary["windows"] == 12 and summary["samples"] == 6000 and summary["hosts"] == 2
    assert "service" in summary["label_keys"]
    values = client.get("/api/fleet/labels/host?from=-1d&to=now").get_json()["values"]
    assert {v["value"]: v["samples"] for v in values} == {"a": 3000, "b": 3000}
    top = client.get("/api/fleet/top?label=host:b&from=-10m&to=now").get_json()
    assert top["total"] == 3000
    with ClickHouseStore.open(fleet_url) as store:
        expected = store.top_functions(Selector(start_s=time.time() - 600, labels={"host": ("b",)}))
    assert [(f["function"], f["total"]) for f in top["functions"]] == [(f["function"], f["total"]) for f in expected]
    series = client.get("/api/fleet/series?from=-2h&to=now").get_json()
    assert sum(b["samples"] for b in series["bins"]) == 6000
    assert sum(b["counters"]["page-faults"] for b in series["bins"]) == 6000
    view = client.get("/api/fleet/view?label=service:api&from=-10m&to=now&b_from=-2h&b_to=-30m").get_json()
    assert view["profile"] == f"/profile/{view['a']}" and view["diff"] == f"/diff?a={view['b']}&b={view['a']}"
    assert payload_samples(client.get(f"/api/profile/{view['a']}")) == 3000
    assert payload_samples(client.get(f"/api/profile/{view['b']}")) == 3000
    assert client.get(f"/profile/{view['a']}").status_code == 200
    assert client.get(view["diff"]).status_code == 200
    assert client.get(f"/api/profile/{view['a']}/preview").status_code == 200
    folded = client.get(f"/api/profile/{view['a']}/export/folded").data.decode().splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in folded) == 3000


def test_bad_selections_are_one_clear_error(client):
    for url in ("/api/fleet/top?from=yesterday", "/api/fleet/top?label=nocolon", "/api/fleet/top?label=a%20b:c",
                "/api/fleet/labels/bad%20key", "/api/fleet/view?from=now&to=-1h"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.get_json()["error"]
    response = client.get("/api/profile/fleet-0123456789abcdef")
    assert response.status_code == 404 and "pick the selection again" in response.get_json()["error"]
    empty = client.get("/api/fleet/view?label=service:none").get_json()
    assert client.get(f"/api/profile/{empty['a']}").status_code == 400


@pytest.mark.browser
def test_fleet_pages_in_a_browser(fleet_url, tmp_path, page):
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "serve", "--store", fleet_url, "--port", "0",
                             "--no-warm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "HWPROF_HOME": str(tmp_path / "home")})
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        base = re.search(r"(http://\S+/)", lines[0]).group(1).rstrip("/")
        assert "/fleet" in lines[1] and "hwprof-test-password" not in "".join(lines)
        page.goto(f"{base}/fleet")
        page.wait_for_selector("body[data-ready]", timeout=60_000)
        assert page.get_attribute("body", "data-ready") == "1", page.text_content("main")[:300]
        rows = page.eval_on_selector_all("#fleet-top tbody tr", "rs => rs.map(r => r.cells[0].textContent)")
        assert {"main", "handle", "parse", "render"} <= set(rows)
        page.fill("#selection-a .from", "-10m")
        page.click("#open-flame")
        page.wait_for_url(re.compile(r".*/profile/fleet-[0-9a-f]+$"), timeout=60_000)
        page.wait_for_selector("body[data-ready]", timeout=60_000)
        assert page.get_attribute("body", "data-ready") == "1"
        top = dict(page.eval_on_selector_all("#top tbody tr", "rs => rs.map(r => [r.cells[0].textContent, "
                                                                    "r.cells[2].textContent])"))
        assert float(top["parse"].rstrip("%")) > 70  # the parse-heavy recent windows
        page.goto(f"{base}/fleet")
        page.wait_for_selector("body[data-ready]", timeout=60_000)
        page.fill("#selection-a .from", "-10m")
        page.fill("#selection-b .from", "-2h")
        page.fill("#selection-b .to", "-30m")
        page.click("#open-diff")
        page.wait_for_url(re.compile(r".*/diff\?a=fleet-.*"), timeout=60_000)
        page.wait_for_selector("body[data-ready]", timeout=60_000)
        assert page.get_attribute("body", "data-ready") == "1"
        changes = page.text_content("#changes")
        assert "parse" in changes and "render" in changes
        assert not page.problems, page.problems
    finally:
        proc.terminate()
        proc.wait(timeout=20)
