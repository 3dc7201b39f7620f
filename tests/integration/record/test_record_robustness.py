"""Captures that end badly, files that are not what they claim, and users without privileges."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
from record_helpers import run_hwprof

from hwprof.cli import main
from hwprof.perfdata.reader import PerfDataFile


@dataclass
class _Result:
    returncode: int
    stdout: str
    stderr: str


def _cli(*argv: str) -> _Result:
    """The CLI in this process (fast): an unexpected exception would fail the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return _Result(code, out.getvalue(), err.getvalue())


def _report(*args: str, check: bool = True) -> _Result:
    result = _cli("report", *args)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _assert_one_line_error(proc: _Result, fragment: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hwprof report: error:") and fragment in lines[0], proc.stderr


@pytest.fixture(scope="module")
def good_capture(workloads, tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.data"
    run_hwprof("record", "-g", "-e", "cpu-clock", "-o", str(path), "--", str(workloads["split"]), "100")
    return path


def test_empty_foreign_corrupt_and_missing_files(tmp_path, good_capture):
    empty = tmp_path / "empty.data"
    empty.write_bytes(b"")
    _assert_one_line_error(_report("-i", str(empty), check=False), "is empty")
    _assert_one_line_error(_report("-i", "/bin/true", check=False), "not a perf.data file")
    corrupt = tmp_path / "corrupt.data"
    raw = bytearray(good_capture.read_bytes())
    raw[24:40] = (2**62).to_bytes(8, "little") * 2  # attr section far outside the file
    corrupt.write_bytes(bytes(raw))
    _assert_one_line_error(_report("-i", str(corrupt), check=False), "corrupt attr section")
    headless = tmp_path / "short.data"
    headless.write_bytes(good_capture.read_bytes()[:60])
    _assert_one_line_error(_report("-i", str(headless), check=False), "cut short inside its header")
    _assert_one_line_error(_report("-i", str(tmp_path / "nope.data"), check=False), "no such file")
    _assert_one_line_error(_report("-i", str(tmp_path), check=False), "directory")


def test_truncated_file_reads_up_to_the_last_whole_record(tmp_path, good_capture):
    with PerfDataFile(good_capture) as f:
        full_end = f.data_offset + f.data_size
    cut = tmp_path / "cut.data"
    raw = good_capture.read_bytes()
    cut.write_bytes(raw[: (full_end + 200) // 2 + 3])  # somewhere in the middle of a record
    proc = _report("-i", str(cut), "--json")
    report = json.loads(proc.stdout)
    whole = json.loads(_report("-i", str(good_capture), "--json").stdout)
    assert 0 < report["samples"] < whole["samples"]
    assert any("was not finalised" in note for note in report["notes"])


def test_sigkilled_capture_is_still_readable(workloads, tmp_path):
    path = tmp_path / "killed.data"
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "record", "-g", "-e", "cpu-clock", "-o", str(path),
                             "--", str(workloads["threads"]), "4"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Wait on the capture, not a fixed time (start-up takes seconds on a loaded machine): enough bytes for 500+
    # samples in the file, then one more header rewrite (every 0.5 s).
    deadline = time.monotonic() + 60
    while not (path.exists() and path.stat().st_size > 256 * 1024):
        assert proc.poll() is None and time.monotonic() < deadline, "the capture wrote too little"
        time.sleep(0.1)
    time.sleep(0.7)
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        workload_pids = [int(p) for p in f.read().split()]
    proc.kill()
    proc.wait()
    for pid in workload_pids:  # the workload outlives its killed recorder: end it by its pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    report = json.loads(_report("-i", str(path), "--json").stdout)
    assert report["samples"] > 500
    assert any("was not finalised" in note for note in report["notes"])
    assert "spin_worker" in {row["keys"][0] for row in report["rows"]}


def test_sigint_stops_a_system_wide_capture_cleanly(tmp_path):
    path = tmp_path / "int.data"
    proc = subprocess.Popen([sys.executable, "-m", "hwprof", "record", "-a", "-e", "cpu-clock", "-o", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopping on SIGINT" in err and "samples" in err
    with PerfDataFile(path) as f:
        assert not f.truncated and f.hostname


def test_bad_arguments_are_one_line_errors(tmp_path):
    for args, fragment in ((["-F", "0", "--", "true"], "-F must be positive"),
                           (["-m", "3", "--", "true"], "power of two"),
                           (["-p", "abc"], "-p expects"),
                           (["-p", "999999999"], "no such process"),
                           (["-C", "7-2"], "invalid CPU list"),
                           ([], "nothing to sample"),
                           (["-e", "cyles", "--", "true"], "unknown event"),
                           (["--", "/no/such/binary"], "command not found: /no/such/binary")):
        proc = _cli("record", "-o", str(tmp_path / "x.data"), *args)
        assert proc.returncode != 0, (args, proc.stderr)
        assert fragment in proc.stderr, (args, proc.stderr)


def test_empty_store_and_unknown_id(tmp_path, monkeypatch):
    monkeypatch.setenv("HWPROF_HOME", str(tmp_path / "store"))
    proc = _cli("report")
    assert proc.returncode == 1 and "holds no record" in proc.stderr
    proc = _cli("report", "record-nope")
    assert proc.returncode == 1 and "no profile 'record-nope'" in proc.stderr


def test_unprivileged_user_samples_user_space(workloads, run_unprivileged, tmp_path):
    outdir = tmp_path / "nobody"
    outdir.mkdir()
    shutil.chown(outdir, 65534, 65534)
    data = outdir / "u.data"
    paranoid = int(open("/proc/sys/kernel/perf_event_paranoid").read())
    proc = run_unprivileged([sys.executable, "-m", "hwprof", "record", "-g", "-e", "cpu-clock", "-o", str(data),
                             "--", str(workloads["split"]), "100"])
    assert proc.returncode == 0, proc.stderr
    if paranoid >= 2:
        assert "sampling user space only" in proc.stderr
    proc = run_unprivileged([sys.executable, "-m", "hwprof", "report", "-i", str(data), "--json", "--sort", "dso"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["samples"] > 100
    if paranoid >= 2:
        assert all(row["keys"][0] != "[kernel.kallsyms]" for row in report["rows"])
    proc = run_unprivileged([sys.executable, "-m", "hwprof", "record", "-a", "-d", "0.2", "-o", str(data)])
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "perf_event_paranoid" in proc.stderr


def test_a_failed_start_never_runs_the_command_unprofiled(tmp_path):
    marker = tmp_path / "ran"
    proc = _cli("record", "-e", "cpu-clock", "-o", str(tmp_path / "no" / "dir.data"), "--", "touch", str(marker))
    assert proc.returncode == 1 and "cannot write" in proc.stderr
    time.sleep(0.2)
    assert not marker.exists()


@pytest.mark.parametrize(("script", "code"), [("exit 3", 3), ("kill -TERM $$", 128 + signal.SIGTERM), ("true", 0)])
def test_the_command_exit_code_becomes_hwprofs(tmp_path, script, code):
    """As with perf record: a script running `hwprof record -- CMD` sees CMD fail."""
    proc = _cli("record", "-e", "cpu-clock", "-o", str(tmp_path / "x.data"), "--", "sh", "-c", script)
    assert proc.returncode == code, proc.stderr
    assert (tmp_path / "x.data").stat().st_size > 0  # and the capture is kept


def test_an_empty_output_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HWPROF_HOME", str(tmp_path / "store"))
    proc = _cli("record", "-o", "", "--", "true")
    assert proc.returncode == 2 and "-o needs a file name" in proc.stderr
    assert not (tmp_path / "store" / "data").exists() or not any((tmp_path / "store" / "data").iterdir())


@pytest.mark.parametrize("argv", [["/nonexistent/binary"], ["sh-is-not-this-xyz"], ["{plain}"]])
def test_a_failed_start_leaves_nothing_in_the_store(tmp_path, monkeypatch, argv):
    """Not found, not executable (found out only by execve, after the capture file was created): no orphan file."""
    plain = tmp_path / "plain.sh"
    plain.write_text("echo hi\n")
    monkeypatch.setenv("HWPROF_HOME", str(tmp_path / "store"))
    proc = _cli("record", "-e", "cpu-clock", "--", *[a.format(plain=plain) for a in argv])
    assert proc.returncode in (126, 127), proc.stderr
    data = tmp_path / "store" / "data"
    assert not data.exists() or list(data.iterdir()) == []


def _record_in_background(tmp_path, *argv: str) -> subprocess.Popen:
    """In its own process group, so a failing test can end hwprof and its command together."""
    return subprocess.Popen([sys.executable, "-m", "hwprof", "record", "-e", "cpu-clock", "-o",
                             str(tmp_path / "x.data"), *argv], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_until_the_command_runs(proc: subprocess.Popen, program: str = "sh") -> None:
    """Until hwprof has exec'd its command (the child held before exec is still python): a stop request sent
    earlier is one "before the command started", which a loaded machine's slow start-up would otherwise make of
    a fixed sleep."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "hwprof record ended before its command ran"
        assert time.monotonic() < deadline, f"hwprof record did not start {program} within 60 s"
        with contextlib.suppress(OSError):
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                for child in f.read().split():
                    with contextlib.suppress(OSError):
                        if os.path.basename(os.path.realpath(f"/proc/{child}/exe")) in (program, "dash", "bash"):
                            time.sleep(0.5)  # and sampling it for a moment
                            return
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def test_a_stop_request_always_works_even_when_the_command_ignores_sigterm(tmp_path):
    """The first stop asks the command to end (SIGTERM); a command that ignores it must not keep hwprof waiting:
    the next stop request kills it, and the capture is kept."""
    proc = _record_in_background(tmp_path, "--", "sh", "-c", "trap '' TERM; while :; do sleep 0.05; done")
    _wait_until_the_command_runs(proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        pytest.fail("hwprof record ignored two stop requests")
    assert "Traceback" not in err and "stopping on SIGTERM" in err
    assert proc.returncode == 128 + signal.SIGKILL  # the command's end, as a shell reports it
    with PerfDataFile(tmp_path / "x.data") as f:
        assert not f.truncated


def test_the_highest_rate_stays_stoppable(tmp_path):
    """-F far above the kernel's limit is capped, and the capture still ends on SIGTERM and on SIGINT."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = _record_in_background(tmp_path, "-F", "10000000", "-g", "--", "sh", "-c", "while :; do :; done")
        _wait_until_the_command_runs(proc)
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            pytest.fail(f"hwprof record -F 10000000 ignored {sig.name}")
        # Stopped promptly and cleanly: in the capture, or (a machine so loaded that hwprof had not yet seen its
        # command's exec) in the start, which is a clean stop too.
        assert "Traceback" not in err and "sampling at" in err
        assert f"stopping on {sig.name}" in err or f"stopped on {sig.name} before the command started" in err, err
