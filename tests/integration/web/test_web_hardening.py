"""Rules from the hardening audit (issue 12): bad bodies are 400s, the token never reaches a log, every loopback
address is served, Origin means scheme+host+port, and idle connections cost no thread and time out."""

from __future__ import annotations

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
from hwprof.web.server import make_server
from hwprof.web.synthetic import small_profile
from web_fixtures import REPO, add_profile

from hwprof.store import ProfileStore

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def store(tmp_path):
    store = ProfileStore(tmp_path / "store")
    add_profile(store, small_profile(), "fast", 1.0)
    return store


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
    finally:
        log = stop(proc)
    assert TOKEN not in log and wrong not in log
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
