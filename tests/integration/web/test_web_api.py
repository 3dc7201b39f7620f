"""The JSON API and pages through Flask's test client (no browser, no network)."""

from __future__ import annotations

import gzip
import json
import sys

import numpy as np
import pytest
from hwprof.web import create_app
from hwprof.web.payload import decode_column
from hwprof.web.synthetic import small_profile
from web_fixtures import add_profile, stat_document

from hwprof.folded import parse_folded
from hwprof.store import ProfileStore


@pytest.fixture
def store(tmp_path):
    store = ProfileStore(tmp_path / "store")
    return store


@pytest.fixture
def client_and_ids(store):
    fast = add_profile(store, small_profile(), "fast", 1.0).id
    slow = add_profile(store, small_profile(slow_b=True), "slow", 2.0).id
    stat_id, path = store.reserve("stat", "json")
    path.write_text(json.dumps(stat_document()))
    from hwprof.store import StoreEntry

    store.add(StoreEntry(id=stat_id, kind="stat", file=path.name, created=3.0, target="./work"))
    return create_app(store).test_client(), {"fast": fast, "slow": slow, "stat": stat_id}


def test_entries_listing_and_pages(client_and_ids):
    client, ids = client_and_ids
    listing = client.get("/api/entries").get_json()
    assert [e["id"] for e in listing["entries"]] == [ids["stat"], ids["slow"], ids["fast"]]
    assert "file" not in listing["entries"][0], "the data file name is the server's business"
    for url in ("/", f"/profile/{ids['fast']}", f"/stat/{ids['stat']}", f"/diff?a={ids['fast']}&b={ids['slow']}"):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "text/html", url
    # a stat entry opened as a profile shows the stat page
    assert b'data-page="stat"' in client.get(f"/profile/{ids['stat']}").data


def test_profile_payload_round_trip(client_and_ids):
    client, ids = client_and_ids
    response = client.get(f"/api/profile/{ids['slow']}")
    assert response.status_code == 200 and response.mimetype == "application/json"
    payload = response.get_json()
    assert payload["meta"]["n_samples"] == 820 and payload["entry"]["name"] == "slow"
    counts = decode_column(payload["cells"]["weights"][0])
    assert counts.sum() == 820
    # second request: same bytes from the cache; gzip for clients that take it
    assert client.get(f"/api/profile/{ids['slow']}").data == response.data
    packed = client.get(f"/api/profile/{ids['slow']}", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip" and gzip.decompress(packed.data) == response.data
    preview = client.get(f"/api/profile/{ids['slow']}/preview").get_json()
    roots = {label: total for label, total, parent in zip(preview["labels"], preview["total"][0], preview["parent"],
                                                          strict=True) if parent < 0}
    assert preview["preview"] is True and roots == {"[no stack]": 10, "_start": 810}


def test_exports_of_profile_and_selection(client_and_ids):
    client, ids = client_and_ids
    folded = client.get(f"/api/profile/{ids['fast']}/export/folded")
    assert folded.status_code == 200 and "attachment" in folded.headers["Content-Disposition"]
    stacks = {";".join(s): c for s, c in parse_folded(folded.data.decode().splitlines())}
    assert stacks["_start;main;work;compute"] == 300
    zoomed = client.get(f"/api/profile/{ids['fast']}/export/folded", query_string={"focus": "_start;main;read"})
    assert parse_folded(zoomed.data.decode().splitlines()) == [
        (["_start", "main", "read", "entry_SYSCALL_64", "ksys_read"], 50)]
    profile = small_profile()
    t = np.sort(profile.sample_time.astype(np.int64))
    ranged = client.get(f"/api/profile/{ids['fast']}/export/folded",
                        query_string={"start": int(t[100]), "end": int(t[200])})
    assert sum(c for _, c in parse_folded(ranged.data.decode().splitlines())) == 100 - np.count_nonzero(
        profile.sample_stack[(profile.sample_time >= t[100]) & (profile.sample_time < t[200])] < 0)
    speedscope = client.get(f"/api/profile/{ids['fast']}/export/speedscope").get_json()
    assert speedscope["shared"]["frames"] and speedscope["profiles"][0]["type"] == "sampled"
    pprof = client.get(f"/api/profile/{ids['fast']}/export/pprof")
    assert pprof.status_code == 200 and gzip.decompress(pprof.data)
    bad = client.get(f"/api/profile/{ids['fast']}/export/svg")
    assert bad.status_code == 400 and "unknown export format" in bad.get_json()["error"]
    garbage = client.get(f"/api/profile/{ids['fast']}/export/folded?start=abc")
    assert garbage.status_code == 400 and "start must be an integer" in garbage.get_json()["error"]


def test_stat_run_api(client_and_ids):
    client, ids = client_and_ids
    run = client.get(f"/api/stat/{ids['stat']}").get_json()
    assert [e["name"] for e in run["events"]] == ["task-clock", "page-faults", "cycles"]
    assert run["events"][1]["running_pct"] == 50.0 and run["events"][2]["supported"] is False
    assert {s["name"] for s in run["series"]} == {"task-clock", "page-faults"}
    assert client.get(f"/api/stat/{ids['fast']}").status_code == 400
    assert "is a stat run" in client.get(f"/api/profile/{ids['stat']}").get_json()["error"]


def test_rename_and_delete(client_and_ids, store):
    client, ids = client_and_ids
    renamed = client.post(f"/api/entries/{ids['fast']}/rename", json={"name": "  baseline  "})
    assert renamed.status_code == 200 and store.get(ids["fast"]).name == "baseline"
    assert client.post(f"/api/entries/{ids['fast']}/rename", json={"name": ""}).status_code == 400
    assert client.post(f"/api/entries/{ids['fast']}/rename", json={"nom": "x"}).status_code == 400
    # delete needs the id repeated as confirmation; it removes data, cache and index row
    client.get(f"/api/profile/{ids['slow']}")
    assert store.cache_path(ids["slow"], "web.json.gz").exists()
    assert client.post(f"/api/entries/{ids['slow']}/delete", json={}).status_code == 400
    gone = client.post(f"/api/entries/{ids['slow']}/delete", json={"confirm": ids["slow"]})
    assert gone.status_code == 200
    assert not store.cache_path(ids["slow"], "web.json.gz").exists()
    assert client.get(f"/api/profile/{ids['slow']}").status_code == 404
    assert client.delete(f"/api/entries/{ids['stat']}", json={"confirm": ids["stat"]}).status_code == 200
    assert [e.id for e in store.list()] == [ids["fast"]]


def test_missing_and_broken_entries(client_and_ids, store):
    client, ids = client_and_ids
    assert client.get("/api/profile/no-such-id").status_code == 404
    page = client.get("/profile/no-such-id")
    assert page.status_code == 404 and b"no profile" in page.data
    store.data_path(store.get(ids["fast"])).write_bytes(b"not a zip")
    store.cache_path(ids["fast"], "web.json.gz").unlink(missing_ok=True)
    broken = client.get(f"/api/profile/{ids['fast']}")
    assert broken.status_code == 400 and "cannot read profile" in broken.get_json()["error"]


def test_warm_up_prepares_the_newest_recordings(client_and_ids, store):
    from hwprof.web.sources import EntrySource

    _, ids = client_and_ids
    EntrySource(store).warm(limit=1)
    assert store.cache_path(ids["slow"], "web.json.gz").exists()  # the newest recording
    assert not store.cache_path(ids["fast"], "web.json.gz").exists()
    assert not store.cache_path(ids["stat"], "web.json.gz").exists()


def test_an_unprivileged_user_can_browse_a_root_store(client_and_ids, store, run_unprivileged):
    """No perf access is needed to serve; a store the user cannot write still serves (the cache just is not kept)."""
    _, ids = client_and_ids
    code = ("import sys, json; from hwprof.web import create_app; from hwprof.store import ProfileStore; "
            f"c = create_app(ProfileStore({str(store.root)!r})).test_client(); "
            f"r = c.get('/api/profile/{ids['fast']}'); "
            "print(r.status_code, json.loads(r.data)['meta']['n_samples'], c.get('/api/entries').status_code)")
    done = run_unprivileged([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "520", "200"]
    assert not store.cache_path(ids["fast"], "web.json.gz").exists()


def test_a_payload_cached_by_an_older_hwprof_is_rebuilt(client_and_ids, store):
    """Cached payloads carry their version: one from before a change of shape (e.g. the ratios) is not served."""
    from hwprof.web.payload import PAYLOAD_VERSION

    client, ids = client_and_ids
    assert client.get(f"/api/profile/{ids['fast']}").status_code == 200
    preview = store.cache_path(ids["fast"], "web-preview.json.gz")
    old = json.loads(gzip.decompress(preview.read_bytes()))
    old["version"] = PAYLOAD_VERSION - 1
    preview.write_bytes(gzip.compress(json.dumps(old).encode()))
    fresh = create_app(store).test_client().get(f"/api/profile/{ids['fast']}/preview").get_json()
    assert fresh["version"] == PAYLOAD_VERSION
