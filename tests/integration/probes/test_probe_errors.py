"""Bad input: one clear line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from probe_helpers import hwprof_entries, probe_argv, run_probe


def _fails(proc, *needles: str) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hwprof probe: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_missing_binary():
    _fails(run_probe("-u", "/nonexistent/app:main", "--", "true"), "no such file: /nonexistent/app")


def test_unknown_library():
    _fails(run_probe("-u", "nosuchlibrary:foo", "--", "true"), "cannot find 'nosuchlibrary'")


def test_stripped_binary_without_symbol(programs):
    _fails(run_probe("-u", f"{programs['calls-stripped']}:work", "--", programs["calls-stripped"]),
           "stripped")


def test_unknown_symbol_names_close_ones(programs):
    _fails(run_probe("-u", f"{programs['calls']}:wrok", "--", programs["calls"]), "work")


def test_not_an_elf_file(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\n")
    _fails(run_probe("-u", f"{script}:main"), "not an ELF file")


def test_bad_spec_and_options():
    _fails(run_probe("-u", "justaname"), "BINARY:SYMBOL")
    _fails(run_probe("-t", "sched"), "SUBSYS:EVENT")
    _fails(run_probe("-p", "abc", "-u", "/bin/true:main"), "process ids")
    _fails(run_probe("--filter", "uid=3", "-t", "sched:sched_switch"), "pid and comm")
    _fails(run_probe("-u", "/bin/true:x", "-p", "1", "--", "true"), "not both")
    _fails(run_probe(), "no probes")


@pytest.mark.usefixtures("root_only")  # unprivileged users cannot read tracefs: they are told that instead
def test_unknown_tracepoint_suggests():
    _fails(run_probe("-t", "syscalls:sys_enter_wrte", "--", "true"), "sys_enter_write")


def test_latency_needs_function_probe():
    _fails(run_probe("--latency", "-t", "syscalls:sys_enter_write", "--", "true"), "function probe")


def test_missing_command(programs):
    _fails(run_probe("-u", f"{programs['calls']}:work", "--", "/no/such/command"), "command not found")


def test_no_such_process(programs):
    _fails(run_probe("-p", "999999999", "-u", f"{programs['calls']}:work"), "999999999")


def test_kernel_function_that_cannot_be_probed():
    """Unknown names get suggestions; where kprobes exist, a blacklisted function is refused with the reason."""
    _fails(run_probe("-k", "vfs_reed", "-d", "0.1"), "vfs_read")
    if not (os.path.exists("/sys/bus/event_source/devices/kprobe") or
            os.path.exists("/sys/kernel/tracing/kprobe_events")):
        _fails(run_probe("-k", "vfs_read", "-d", "0.1"), "no kprobe support")
    else:
        # the int3 handler cannot be probed (NOKPROBE_SYMBOL): the kernel refuses
        _fails(run_probe("-k", "do_int3", "-d", "0.1"), "cannot be probed")
    assert hwprof_entries() == []


def test_no_permission(programs, run_unprivileged):
    # a copy the unprivileged user may run (pytest's tmp dirs belong to root, mode 0700)
    shared = Path(tempfile.mkdtemp(prefix="hwprof-probe-"))
    try:
        shared.chmod(0o755)
        binary = shared / "calls"
        shutil.copy(programs["calls"], binary)
        proc = run_unprivileged(probe_argv("-u", f"{binary}:work", "--", str(binary), "3"))
        line = _fails(proc, "permission")
        assert "root" in line
    finally:
        shutil.rmtree(shared)
