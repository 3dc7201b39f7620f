"""Debug info from a real debuginfod server (elfutils), started on 127.0.0.1 by the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from symbolize_helpers import (
    hwprof_addr2line,
    need,
    oracle_addr2line,
    parse_addr2line_blocks,
    text_instruction_addresses,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def debuginfod_server(programs, tmp_path):
    """A debuginfod serving only the debug file of the stripped build-id program."""
    need("debuginfod")
    served = tmp_path / "served"
    served.mkdir()
    debug_files = list(programs.debug_dir.rglob("*.debug"))
    assert len(debug_files) == 1
    shutil.copy(debug_files[0], served / "inline.debug")
    port = _free_port()
    log = open(tmp_path / "debuginfod.log", "w")
    proc = subprocess.Popen(
        ["debuginfod", "-F", "-p", str(port), "-d", str(tmp_path / "db.sqlite"), "-t", "1", str(served)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    build_id = debug_files[0].parent.name + debug_files[0].stem
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/buildid/{build_id}/debuginfo", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"debuginfod did not come up: {open(tmp_path / 'debuginfod.log').read()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_stripped_binary_symbolized_through_debuginfod(programs, debuginfod_server, tmp_path):
    cache = tmp_path / "debuginfod-cache"
    addrs = text_instruction_addresses(programs.inline)
    env = {**os.environ, "DEBUGINFOD_URLS": debuginfod_server, "DEBUGINFOD_CACHE_PATH": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path / "idx"), "-a", "-f", "-i",
         "-e", str(programs.stripped_buildid)],
        input="\n".join(hex(a) for a in addrs) + "\n", capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    ours = parse_addr2line_blocks(proc.stdout)
    expected = oracle_addr2line(programs.inline, addrs, ["-f", "-i"])
    same = sum(ours.get(a) == lines for a, lines in expected.items())
    assert same >= 0.99 * len(expected), [(hex(a), ours.get(a), e) for a, e in expected.items() if ours.get(a) != e]
    # Fetched into the standard client cache layout, so gdb/perf/eu-* reuse it.
    cached = list(cache.glob("*/debuginfo"))
    assert len(cached) == 1 and cached[0].stat().st_size > 0


def test_unreachable_debuginfod_degrades_with_one_warning(programs, tmp_path):
    port = _free_port()  # nothing listens here
    env = {**os.environ, "DEBUGINFOD_URLS": f"http://127.0.0.1:{port}",
           "DEBUGINFOD_CACHE_PATH": str(tmp_path / "c"), "DEBUGINFOD_TIMEOUT": "2"}
    addrs = text_instruction_addresses(programs.inline)[:20]
    proc = subprocess.run(
        [sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path / "idx"), "-f",
         "-e", str(programs.stripped_buildid), *map(hex, addrs)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stderr.count("warning") == 1, proc.stderr
    assert "debuginfod" in proc.stderr
    # Stripped of .symtab too: nothing names these addresses, and the output says so the addr2line way.
    assert proc.stdout.splitlines()[:2] == ["??", "??:0"]


def test_no_debuginfod_flag_never_asks(programs, debuginfod_server, tmp_path):
    env = {**os.environ, "DEBUGINFOD_URLS": debuginfod_server, "DEBUGINFOD_CACHE_PATH": str(tmp_path / "c")}
    addr = text_instruction_addresses(programs.inline)[5]
    proc = subprocess.run(
        [sys.executable, "-m", "hwprof", "addr2line", "--no-debuginfod", "--cache-dir", str(tmp_path / "i"), "-f",
         "-e", str(programs.stripped_buildid), hex(addr)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "??"
    assert not (tmp_path / "c").exists()


def test_hwprof_helper_matches_block_parser(programs, tmp_path):
    # The comparison helpers themselves: addr2line compared with itself is 100% identical.
    addrs = text_instruction_addresses(programs.inline)[:30]
    a = oracle_addr2line(programs.inline, addrs, ["-f", "-i"])
    assert a and all(len(v) >= 2 for v in a.values())
    b = hwprof_addr2line(programs.inline, addrs, ["-f", "-i"], tmp_path / "c")
    assert set(a) == set(b)
