"""`hwprof serve` from the command line: the printed URLs, and bad input as one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hwprof.web.synthetic import small_profile
from web_fixtures import REPO, add_profile

from hwprof.store import ProfileStore


def hwprof(*argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "hwprof", *argv], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


@pytest.mark.parametrize("argv, message", [
    (["--port", "70000"], "hwprof serve: error: port 70000 is out of range 0..65535"),
    (["--open", "../etc"], "hwprof serve: error: invalid profile id '../etc'"),
    (["--open", "nosuch-id"], "hwprof serve: error: no profile 'nosuch-id' in the store at "),
    (["--host", "256.1.1.1", "--token", "0123456789abcdef"], "hwprof serve: error: cannot resolve --host '256.1.1.1'"),
])
def test_serve_bad_input_is_one_line(tmp_path, argv, message):
    done = hwprof("serve", "--store", str(tmp_path / "store"), *argv)
    assert done.returncode != 0
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_serve_open_prints_the_profile_url(tmp_path):
    store = ProfileStore(tmp_path / "store")
    entry = add_profile(store, small_profile(), "demo", 1.0)
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "serve", "--store", str(store.root), "--port", "0",
                             "--open", "latest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("hwprof: serving ")
        assert second.strip().endswith(f"/profile/{entry.id}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
