"""Rule: names from outside (store names, JIT symbols, comm values) print escaped in every text output."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from record_helpers import run_hwprof

from hwprof.store import ProfileStore, StoreEntry

HOSTILE = "\u001b]0;pwned\u0007\u001b[31mRED"
ESCAPED = "\\033]0;pwned\\a\\033[31mRED"


def assert_escaped(text: str, escaped: str = ESCAPED) -> None:
    assert "\x1b" not in text and "\x07" not in text, text[:2000]
    assert escaped in text, text[:2000]


def test_ls_prints_a_hostile_name_escaped(store_env):
    from hwprof.web.synthetic import small_profile

    store = ProfileStore(Path(store_env["HWPROF_HOME"]))
    entry_id, path = store.reserve("record", "npz")
    small_profile().save(path)
    store.add(StoreEntry(id=entry_id, kind="record", file=path.name, created=1.0, name="x", target="./work"))
    store.rename(entry_id, HOSTILE)
    assert_escaped(run_hwprof("ls", env=store_env).stdout)


@pytest.fixture(scope="module")
def hostile_jit_capture(workloads, tmp_path_factory) -> Path:
    """A real capture of JIT code whose perf map (the copy kept beside the capture) names it with escapes."""
    data = tmp_path_factory.mktemp("jit") / "jit.data"
    run_hwprof("record", "-g", "-e", "cpu-clock", "-o", str(data), "--", str(workloads["jit"]))
    (copy,) = (data.parent / "jit.data.jit").glob("perf-*.map")
    copy.write_text(copy.read_text().replace("jitted_loop", HOSTILE))
    return data


@pytest.mark.parametrize("mode", [[], ["--call-graph"], ["--folded"], ["--sort", "dso,symbol", "--no-children"]])
def test_report_prints_a_hostile_jit_symbol_escaped(hostile_jit_capture, mode):
    folded = ESCAPED.replace(";", "_")  # the folded format's own rule: ';' separates frames
    assert_escaped(run_hwprof("report", "-i", str(hostile_jit_capture), *mode).stdout,
                   folded if mode == ["--folded"] else ESCAPED)


def test_report_json_keeps_the_name_as_data(hostile_jit_capture):
    import json

    rows = json.loads(run_hwprof("report", "-i", str(hostile_jit_capture), "--json").stdout)["rows"]
    assert any(HOSTILE in row["keys"] for row in rows)  # JSON escapes it itself; the name stays exact


def test_probe_report_prints_a_hostile_comm_escaped(store_env):
    if os.geteuid() != 0 or not Path("/sys/kernel/tracing/events/syscalls").exists():
        pytest.skip("syscall tracepoints need root and tracefs")
    script = ("import ctypes, os; ctypes.CDLL(None).prctl(15, b'\\x1b]0;pwned\\x07', 0, 0, 0); "
              "[os.write(1, b'.') for _ in range(3)]")
    proc = run_hwprof("probe", "-t", "syscalls:sys_enter_write", "--", shutil.which("python3") or sys.executable,
                      "-c", script, env=store_env)
    assert "\x1b" not in proc.stdout and "\\033]0;pwned\\a" in proc.stdout, proc.stdout
