"""The security list of the web view, one test per item."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from hwprof.web import create_app
from hwprof.web.app import MAX_BODY_BYTES
from hwprof.web.server import make_server
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


# --- from the hardening audit (issue 12) ---------------------------------------------------------------------
def start_serve(store, *extra) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "serve", "--store", str(store.root), "--port", "0",
                             "--no-warm", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+?/)(\?token=\S+)?$", line.strip())
    if not match:
        proc.kill()
        pytest.fail(f"hwprof serve printed no URL: {line!r} {proc.stderr.read()[:500]!r}")
    return proc, match.group(1)


def stop(proc) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def get(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# --- bodies: deep nesting and lone surrogates are 400 with a JSON error -----------------------------------------
@pytest.mark.parametrize("route", ["rename", "delete"])
def test_deeply_nested_json_body_is_a_400(store, route):
    client = create_app(store).test_client()
    eid = store.list()[0].id
    body = "[" * 8000 + "]" * 8000
    response = client.post(f"/api/entries/{eid}/{route}", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "the JSON body is nested too deeply"}
    assert store.get(eid).name == "fast"


def test_lone_surrogate_in_a_new_name_is_a_400(store):
    client = create_app(store).test_client()
    eid = store.list()[0].id
    response = client.post(f"/api/entries/{eid}/rename", data='{"name": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400
    assert "lone surrogate" in response.get_json()["error"]
    assert store.get(eid).name == "fast"


def test_invalid_utf8_body_is_a_400(store):
    client = create_app(store).test_client()
    eid = store.list()[0].id
    response = client.post(f"/api/entries/{eid}/rename", data=b'{"name": "\xff"}', content_type="application/json")
    assert response.status_code == 400 and response.get_json() == {"error": "the body is not valid JSON"}


# --- Origin: scheme, host and port ----------------------------------------------------------------------------
@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://127.0.0.1:8470", True),
    ("HTTP://127.0.0.1:8470", True),
    ("https://127.0.0.1:8470", False),   # the scheme was ignored before
    ("http://127.0.0.1:8471", False),
    ("http://127.0.0.1", False),
    ("http://localhost:8470", False),
    ("null", False),
    ("http://127.0.0.1:99999", False),
])
def test_origin_must_match_scheme_host_and_port(store, origin, allowed):
    client = create_app(store).test_client()
    eid = store.list()[0].id
    response = client.post(f"/api/entries/{eid}/rename", json={"name": "renamed"},
                           headers={"Host": "127.0.0.1:8470", "Origin": origin})
    assert (response.status_code == 200) == allowed, (origin, response.status_code, response.data)


def test_default_ports_are_the_same_origin(store):
    client = create_app(store).test_client()
    eid = store.list()[0].id
    response = client.post(f"/api/entries/{eid}/rename", json={"name": "renamed"},
                           headers={"Host": "127.0.0.1", "Origin": "http://127.0.0.1:80"})
    assert response.status_code == 200


# --- any loopback address is served ------------------------------------------------------------------------------
def test_any_loopback_address_is_served(store):
    client = create_app(store).test_client()
    for host in ("127.0.0.2:8470", "127.1.2.3", "[::1]:8470", "localhost:1"):
        assert client.get("/api/entries", headers={"Host": host}).status_code == 200, host
    for host in ("128.0.0.1:8470", "evil.example", "127.0.0.1.evil.example", "0.0.0.0:8470"):
        assert client.get("/api/entries", headers={"Host": host}).status_code == 403, host


def test_serve_on_127_0_0_2_answers(store):
    proc, base = start_serve(store, "--host", "127.0.0.2")
    try:
        assert base.startswith("http://127.0.0.2:")
        assert get(base + "api/entries") == 200
        assert get(base) == 200
    finally:
        stop(proc)


# --- the token never reaches the access log ------------------------------------------------------------------
def test_token_is_never_logged(store):
    wrong = "wrong-token-but-also-secret-987654"
    proc, base = start_serve(store, "--host", "127.0.0.1", "--token", TOKEN)
    try:
        assert get(f"{base}?token={TOKEN}") == 200
        assert get(f"{base}api/entries?x=1&token={TOKEN}") == 200
        assert get(f"{base}api/entries?token={wrong}") == 403
        assert get(f"{base}api/entries", headers={"X-Hwprof-Token": wrong}) == 403
        assert get(f"{base}%1b]0;pwned%07") == 403  # a path that would retitle the terminal
    finally:
        log = stop(proc)
    assert TOKEN not in log and wrong not in log
    assert "\x1b" not in log and '"GET /\\033]0;pwned\\a" 403' in log, log
    assert '"GET /api/entries?x=1&token=[redacted]" 200' in log, log
    assert '"GET /api/entries?token=[redacted]" 403' in log, log


# --- idle connections: no thread each, a timeout, a cap -------------------------------------------------------
def server_threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))


def test_300_idle_connections_hold_no_threads_and_the_server_still_answers(store):
    proc, base = start_serve(store)
    port = int(base.rsplit(":", 1)[1].strip("/"))
    idle = []
    try:
        for i in range(300):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                sock.sendall(b"GET /api/entries HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a request, never finished
            idle.append(sock)
        time.sleep(1.0)
        started = time.monotonic()
        assert get(base + "api/entries") == 200
        assert time.monotonic() - started < 10
        # Flask's development server held one thread per connection (300+); waitress a fixed pool
        assert server_threads(proc.pid) < 30, server_threads(proc.pid)
    finally:
        for sock in idle:
            sock.close()
        stop(proc)


def run_in_thread(server):
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return thread


def test_idle_connections_time_out_and_connections_are_capped(store):
    server = make_server(create_app(store), "127.0.0.1", 0, idle_timeout=2, max_connections=4, threads=2)
    thread = run_in_thread(server)
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=20) for _ in range(4)]
    try:
        time.sleep(0.5)
        # a fifth connection waits in the backlog: its request is answered only once the idle ones time out
        started = time.monotonic()
        answer = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/entries", timeout=30).read())
        waited = time.monotonic() - started
        assert answer["entries"] and waited >= 1.0, waited
        for sock in idle:  # the server closed each idle connection (recv sees the end of the stream)
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
        server.close()
        thread.join(timeout=10)
