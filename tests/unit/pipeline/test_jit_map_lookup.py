"""Which JIT map names a process's anonymous code: the capture's own copy, never a later process's /tmp file that
happens to share the pid (pids recycle; nothing removes /tmp/perf-PID.map)."""

from __future__ import annotations

import os
from pathlib import Path

from hwprof.pipeline.stacks import jit_map_path

PID = 4_000_000 + os.getpid() % 100_000  # above pid_max's default: no live process writes /tmp files for it


def _write(path: Path, text: str = "") -> Path:
    path.write_text(text)
    return path


def test_the_captures_copy_wins_over_a_tmp_file_for_the_same_pid(tmp_path):
    side = tmp_path / "x.data.jit"
    side.mkdir()
    dump = _write(side / f"jit-{PID}.dump")
    stale = _write(Path(f"/tmp/perf-{PID}.map"), "1000 10 stale\n")
    try:
        assert jit_map_path(str(side), PID) == str(dump)
    finally:
        stale.unlink()


def test_a_jitdump_is_preferred_to_a_perf_map_it_carries_sizes_and_unwind_info(tmp_path):
    side = tmp_path / "x.data.jit"
    side.mkdir()
    _write(side / f"perf-{PID}.map")
    dump = _write(side / f"jit-{PID}.dump")
    assert jit_map_path(str(side), PID) == str(dump)


def test_a_capture_with_a_side_directory_never_looks_in_tmp(tmp_path):
    side = tmp_path / "x.data.jit"
    side.mkdir()
    stale = _write(Path(f"/tmp/perf-{PID}.map"), "1000 10 stale\n")
    try:
        assert jit_map_path(str(side), PID) is None
    finally:
        stale.unlink()


def test_without_a_side_directory_tmp_is_read_as_perf_does(tmp_path):
    live = _write(Path(f"/tmp/perf-{PID}.map"), "1000 10 f\n")
    try:
        assert jit_map_path(str(tmp_path / "perf.data.jit"), PID) == str(live)
        assert jit_map_path(None, PID) == str(live)
    finally:
        live.unlink()


def test_without_a_side_directory_a_jitdump_the_process_mapped_elsewhere_is_read(tmp_path):
    """perf's own captures: Node writes jit-PID.dump into its working directory, and maps it there."""
    dump = _write(tmp_path / f"jit-{PID}.dump")
    other = str(tmp_path / "jit-1.dump")
    assert jit_map_path(None, PID, ["/usr/bin/node", other, str(dump)]) == str(dump)
    assert jit_map_path(None, PID, [other]) is None
    side = tmp_path / "x.data.jit"
    side.mkdir()
    assert jit_map_path(str(side), PID, [str(dump)]) is None  # hwprof's captures copy it into their side directory


def test_without_a_side_directory_a_jitdump_the_process_mapped_wins_over_a_tmp_perf_map(tmp_path):
    mapped = _write(tmp_path / f"jit-{PID}.dump")  # Node writes it into its working directory and maps it
    stale = _write(Path(f"/tmp/perf-{PID}.map"), "1000 10 stale\n")
    try:
        assert jit_map_path(str(tmp_path / "perf.data.jit"), PID, [str(mapped)]) == str(mapped)
        assert jit_map_path(None, PID, ["/usr/lib/libc.so.6"]) == str(stale)
    finally:
        stale.unlink()
