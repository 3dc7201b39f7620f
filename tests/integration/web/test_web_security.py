"""The security list of the web view, one test per item."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hwprof.web import create_app
from hwprof.web.app import MAX_BODY_BYTES
from hwprof.web.synthetic import JIT_NAME, TEMPLATE_NAME, small_profile
from web_fixtures import REPO, add_profile

from hwprof.store import ProfileStore

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def store(tmp_path):
    store = ProfileStore(tmp_path / "store")
    add_profile(store, small_profile(), "fast", 1.0)
    return store


def entry_id(store) -> str:
    return store.list()[0].id


def serve(argv, timeout=15):
    """Start `hwprof serve ARGS`; return (process, first stdout line)."""
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "serve", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    line = proc.stdout.readline()
    return proc, line


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- binds 127.0.0.1 by default ------------------------------------------------------------------------
def test_binds_loopback_by_default(store):
    proc, line = serve(["--store", str(store.root), "--port", "0"])
    try:
        assert line.startswith("hwprof: serving") and "http://127.0.0.1:" in line and "token" not in line
        port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = {row.split()[1] for row in listening if row.split()[3] == "0A"}  # LISTEN
        assert f"0100007F:{port:04X}" in local, "must listen on 127.0.0.1 only"
        assert f"00000000:{port:04X}" not in local
    finally:
        stop(proc)


# --- any other host requires a token, generated and printed, or given -----------------------------------
def test_other_host_generates_and_prints_a_token(store):
    proc, line = serve(["--store", str(store.root), "--port", "0", "--host", "0.0.0.0"])
    try:
        assert "?token=" in line, line
        token = line.split("?token=")[1].strip()
        assert len(token) >= 24
    finally:
        stop(proc)


def test_given_token_is_used_and_short_tokens_refused(store):
    proc, line = serve(["--store", str(store.root), "--port", "0", "--host", "0.0.0.0", "--token", TOKEN])
    try:
        assert line.strip().endswith(f"?token={TOKEN}")
    finally:
        stop(proc)
    done = subprocess.run([sys.executable, "-m", "hwprof", "serve", "--store", str(store.root), "--token", "short"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and done.stderr.strip() == \
        "hwprof serve: error: a token must be at least 16 characters"


# --- token checked on every request ----------------------------------------------------------------------
def test_token_checked_on_every_request(store):
    client = create_app(store, token=TOKEN).test_client()
    eid = entry_id(store)
    urls = ["/", f"/profile/{eid}", "/api/entries", f"/api/profile/{eid}", f"/api/profile/{eid}/export/folded",
            "/static/pages.js", "/no/such/route"]
    for url in urls:
        assert client.get(url).status_code == 403, url
        assert client.get(url, headers={"X-Hwprof-Token": TOKEN + "x"}).status_code == 403, url
    assert client.post(f"/api/entries/{eid}/rename", json={"name": "x"}).status_code == 403
    assert client.get("/api/entries", headers={"X-Hwprof-Token": TOKEN}).status_code == 200
    assert client.get(f"/api/entries?token={TOKEN}").status_code == 200
    # opening the printed URL sets an HttpOnly, SameSite=Strict cookie the page's own requests then carry
    page = client.get(f"/?token={TOKEN}")
    cookie = page.headers["Set-Cookie"]
    assert "hwprof_token=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/api/entries").status_code == 200  # the test client keeps the cookie


def test_without_token_foreign_host_headers_are_refused(store):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the store."""
    client = create_app(store).test_client()
    assert client.get("/api/entries", headers={"Host": "127.0.0.1:8470"}).status_code == 200
    assert client.get("/api/entries", headers={"Host": "localhost"}).status_code == 200
    assert client.get("/api/entries", headers={"Host": "[::1]:8470"}).status_code == 200
    assert client.get("/api/entries", headers={"Host": "evil.example:8470"}).status_code == 403


# --- ids validated: nothing outside the store can be read or written --------------------------------------
@pytest.mark.parametrize("bad", ["..", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "a/b", ".hidden", "x" * 65,
                                 "%00", "id;rm", "id%0a"])
def test_ids_are_validated(store, bad, tmp_path):
    client = create_app(store).test_client()
    outside = tmp_path / "outside.npz"
    small_profile().save(outside)
    for url in (f"/api/profile/{bad}", f"/profile/{bad}", f"/api/profile/{bad}/export/folded", f"/stat/{bad}",
                f"/api/stat/{bad}", f"/diff?a={bad}&b={bad}"):
        response = client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)
        assert b"_start" not in response.data
    for url in (f"/api/entries/{bad}/rename", f"/api/entries/{bad}/delete"):
        assert client.post(url, json={"name": "x", "confirm": bad}).status_code in (400, 404, 405)
    assert outside.exists()


def test_store_paths_come_from_the_index_not_the_request(store, tmp_path):
    """Even an index row naming another file resolves inside data/ (ProfileStore.data_path keeps the name only)."""
    entry = store.list()[0]
    from dataclasses import replace

    store.add(replace(entry, file="../../../../etc/passwd"))
    client = create_app(store).test_client()
    response = client.get(f"/api/profile/{entry.id}")
    assert response.status_code == 400 and "missing from the store" in response.get_json()["error"]


# --- every name rendered as text ---------------------------------------------------------------------------
def test_names_reach_pages_only_as_escaped_data(store):
    client = create_app(store).test_client()
    eid = entry_id(store)
    store.rename(eid, JIT_NAME)
    page = client.get(f"/profile/{eid}").data.decode()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    payload = client.get(f"/api/profile/{eid}").data.decode()
    assert "<" not in payload and ">" not in payload and "&" not in payload
    strings = json.loads(payload)["strings"]
    assert JIT_NAME in strings and TEMPLATE_NAME in strings
    # the scripts never build markup from data: no innerHTML/outerHTML/insertAdjacentHTML/document.write/eval
    for script in (REPO / "web" / "static").glob("*.js"):
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{script.name} uses {sink}"


def test_content_security_policy_forbids_inline_script(store):
    response = create_app(store).test_client().get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- request bodies bounded ---------------------------------------------------------------------------------
def test_request_bodies_are_bounded(store):
    client = create_app(store).test_client()
    eid = entry_id(store)
    big = json.dumps({"name": "x" * (MAX_BODY_BYTES + 10)})
    response = client.post(f"/api/entries/{eid}/rename", data=big, content_type="application/json")
    assert response.status_code == 413
    assert store.get(eid).name == "fast"


def test_state_changes_need_json_and_same_origin(store):
    client = create_app(store).test_client()
    eid = entry_id(store)
    form = client.post(f"/api/entries/{eid}/delete", data={"confirm": eid})
    assert form.status_code == 415
    cross = client.post(f"/api/entries/{eid}/delete", json={"confirm": eid}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert store.get(eid)


# --- the server never starts a capture or probe ----------------------------------------------------------------
def test_routes_only_read_rename_and_delete(store):
    app = create_app(store)
    rules = {(rule.rule, tuple(sorted(rule.methods - {"HEAD", "OPTIONS"}))) for rule in app.url_map.iter_rules()}
    writers = {r for r, methods in rules if set(methods) - {"GET"}}
    assert writers == {"/api/entries/<entry_id>/rename", "/api/entries/<entry_id>/delete", "/api/entries/<entry_id>"}


def test_web_package_never_imports_collectors_or_opens_perf():
    web = REPO / "web"
    for source in web.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("hwprof.collectors", "hwprof.perf")), f"{source.name} imports {name}"
    code = ("import sys; from hwprof.web import create_app; from hwprof.store import ProfileStore; "
            "import tempfile; app = create_app(ProfileStore(tempfile.mkdtemp())); "
            "c = app.test_client(); c.get('/'); c.get('/api/entries'); "
            "print(sorted(m for m in sys.modules if m.startswith(('hwprof.collectors', 'hwprof.perf'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
