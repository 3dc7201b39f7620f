"""A command held before exec (hwprof.system.launch) and stop requests (hwprof.system.stopping), on real processes."""

from __future__ import annotations

import os
import select
import signal
import threading
import time

import pytest

from hwprof.errors import HwprofError
from hwprof.system.launch import HeldCommand
from hwprof.system.stopping import StopSignals


def test_the_command_runs_only_after_start(tmp_path):
    marker = tmp_path / "ran"
    held = HeldCommand(["touch", str(marker)])
    time.sleep(0.2)
    assert not marker.exists(), "the command ran before start()"
    held.start()
    held.wait()
    assert marker.exists() and held.exit_code == 0


def test_an_abandoned_command_never_runs(tmp_path):
    marker = tmp_path / "ran"
    held = HeldCommand(["touch", str(marker)])
    held.abandon()
    assert not marker.exists() and held.exit_code == 127


def test_exec_failures_come_back_as_one_error_with_the_shells_code(tmp_path):
    script = tmp_path / "plain.sh"
    script.write_text("echo hi\n")
    held = HeldCommand([str(script)])  # exists, but not executable: only execve can tell
    with pytest.raises(HwprofError, match=f"cannot execute {script}: Permission denied") as caught:
        held.start()
    assert caught.value.exit_code == 126 and held.status is not None


def test_signals_and_exit_codes_as_a_shell_reports_them():
    held = HeldCommand(["sh", "-c", "kill -TERM $$"])
    held.start()
    held.wait()
    assert held.exit_code == 128 + signal.SIGTERM
    held = HeldCommand(["sh", "-c", "exit 7"])
    held.start()
    held.wait()
    assert held.exit_code == 7


def test_the_command_gets_default_signal_handling_whatever_hwprof_set():
    with StopSignals():  # hwprof catches SIGINT/SIGTERM/SIGHUP here; the command must not inherit that
        held = HeldCommand(["sleep", "30"])
        held.start()
        time.sleep(0.1)
        held.send(signal.SIGHUP)
        assert held.wait(10)
    assert held.exit_code == 128 + signal.SIGHUP


def test_a_second_stop_request_kills_a_command_that_ignores_the_first():
    with StopSignals() as stop:
        held = HeldCommand(["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
        held.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # the user insists
        held.end(stop, signal.SIGTERM)
        assert time.monotonic() - t0 < 10
    assert held.exit_code == 128 + signal.SIGKILL


def test_stop_signals_wake_a_poll_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGHUP)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGHUP)
        ready, _, _ = select.select([stop.fd], [], [], 5)
        assert ready and stop.drain() == [signal.SIGHUP] and stop.requested == "SIGHUP"
        assert stop.drain() == []
    assert signal.getsignal(signal.SIGHUP) is before
