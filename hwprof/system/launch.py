"""Start a command held before its exec, so events can be opened on it before its first instruction.

perf's workload start, used by stat, record and probe alike: the child is forked now and blocks on a pipe;
`start()` releases it into execve. An exec failure comes back through a close-on-exec pipe as an errno, so hwprof
reports it in one line (and not the child in a traceback), with a shell's exit codes: 127 when the command is not
found, 126 when it is found but cannot be executed, 128 + N when signal N ended it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import struct
import time
from collections.abc import Callable, Sequence

from hwprof.errors import HwprofError
from hwprof.system.stopping import StopSignals
from hwprof.units import Pid

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
_NOT_EXECUTABLE = (errno.EACCES, errno.ENOEXEC, errno.EISDIR, errno.EPERM, errno.ETXTBSY)
# Signals whose disposition the child gets back before exec: hwprof catches or ignores these, a command must not
# inherit that (a shell started by hwprof would otherwise ignore Ctrl-C).
_RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD, signal.SIGPIPE,
                  signal.SIGXFSZ)


class LaunchError(HwprofError):
    """The command could not be started; exit_code is the shell's (127 or 126)."""


def launch_error(name: str, err: int) -> LaunchError:
    """One wording for every tool: 'command not found: NAME' (127) or 'cannot execute NAME: REASON' (126)."""
    if err == errno.ENOENT:
        return LaunchError(f"command not found: {name}", exit_code=EXIT_NOT_FOUND)
    code = EXIT_NOT_EXECUTABLE if err in _NOT_EXECUTABLE else EXIT_NOT_FOUND
    return LaunchError(f"cannot execute {name}: {os.strerror(err)}", exit_code=code)


def resolve_command(argv: Sequence[str]) -> str:
    """The path exec will run, or the LaunchError a shell would give before trying.

    A bare name is looked up in $PATH. A path is only checked for existence and for being a directory: whether it
    may be executed is left to execve, because access(2) (which shutil.which uses) ignores capabilities such as
    CAP_DAC_READ_SEARCH that exec honours.
    """
    if not argv or not argv[0]:
        raise LaunchError("no command given", exit_code=2)
    name = argv[0]
    if "/" not in name:
        found = shutil.which(name)
        if found is None:
            raise launch_error(name, errno.ENOENT)
        return found
    if not os.path.exists(name):
        raise launch_error(name, errno.ENOENT)
    if os.path.isdir(name):
        raise launch_error(name, errno.EISDIR)
    return name


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit status, or 128 + the signal that ended the process."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class HeldCommand:
    """A forked child held before exec. Life cycle: construct (fork), open events on `pid`, then `start()`; or
    `abandon()` when setting up failed (the command then never runs, least of all unprofiled)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.path = resolve_command(self.argv)
        go_r, self._go_w = os.pipe2(os.O_CLOEXEC)
        self._err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the child: wait for the go, then become the command
            try:
                os.close(self._go_w)
                os.close(self._err_r)
                with contextlib.suppress(ValueError):
                    signal.set_wakeup_fd(-1)  # the parent's wakeup pipe is not ours to write
                for sig in _RESET_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, ())
                if os.read(go_r, 1) != b"g":
                    os._exit(EXIT_NOT_FOUND)  # hwprof gave up (or died) before starting us
                os.execv(self.path, self.argv)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.write(err_w, struct.pack("<i", exc.errno or errno.ENOENT))
            finally:
                os._exit(EXIT_NOT_FOUND)
        os.close(go_r)
        os.close(err_w)
        self.pid: Pid = pid
        self.started = False
        self.status: int | None = None            # the raw wait status once reaped
        self.rusage: os.struct_rusage | None = None  # of the command and the children it waited for

    def start(self, stop: StopSignals | None = None) -> None:
        """Release the child into exec and wait until the exec happened (or failed).

        With `stop`, this wait stays interruptible: a stop request while the exec is still under way (it can take
        long under a storm of sampling interrupts) kills the command and raises.
        """
        os.write(self._go_w, b"g")
        os.close(self._go_w)
        self.started = True
        try:
            watched = [self._err_r] + ([stop.fd] if stop is not None else [])
            while True:
                try:
                    ready, _, _ = select.select(watched, [], [])
                except InterruptedError:
                    ready = []
                if self._err_r in ready:
                    data = os.read(self._err_r, 4)
                    break
                if stop is not None:
                    stop.drain()
                    if stop.requested:
                        self.kill()
                        raise HwprofError(f"stopped on {stop.requested} before the command started",
                                          exit_code=128 + (stop.first or signal.SIGTERM))
        finally:
            os.close(self._err_r)
        if data:
            (err,) = struct.unpack("<i", data)
            self.wait()
            raise launch_error(self.argv[0], err)

    def abandon(self) -> None:
        """Setting up failed before the go: the child exits without running the command, and is reaped."""
        if not self.started:
            with contextlib.suppress(OSError):
                os.close(self._go_w)
            with contextlib.suppress(OSError):
                os.close(self._err_r)
            self.started = True
        self.wait()

    def poll(self) -> bool:
        """True once the command has exited (and was reaped)."""
        if self.status is not None:
            return True
        try:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.status = 0
            return True
        if pid == 0:
            return False
        self.status, self.rusage = status, rusage
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Reap the command; with a timeout, give up after it (False: still running)."""
        if timeout_s is None:
            while self.status is None:
                try:
                    _, self.status, self.rusage = os.wait4(self.pid, 0)
                except InterruptedError:
                    continue
                except ChildProcessError:
                    self.status = 0
            return True
        end = time.monotonic() + timeout_s
        while not self.poll():
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)
        return True

    def send(self, sig: int) -> None:
        """Deliver a signal unless the command already ended."""
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def end(self, stop: StopSignals | None = None, sig: int = signal.SIGTERM, patience_s: float = 2.0,
            notify: Callable[[str], None] | None = None) -> None:
        """Ask the command to end with `sig` and reap it. The wait stays stoppable: a further stop request (a
        second Ctrl-C, another SIGTERM) kills the command with SIGKILL, so hwprof never hangs on a command that
        ignores `sig`."""
        self.send(sig)
        told = False
        start = time.monotonic()
        while not self.poll():
            if stop is not None:
                try:
                    select.select([stop.fd], [], [], 0.02)
                except InterruptedError:
                    pass
                if stop.drain():
                    self.kill()
                    return
            else:
                time.sleep(0.02)
            if not told and notify is not None and time.monotonic() - start >= patience_s:
                notify(f"waiting for the command (pid {self.pid}) to exit after {signal.Signals(sig).name}; "
                       "stop again (Ctrl-C) to kill it")
                told = True

    def kill(self) -> None:
        self.send(signal.SIGKILL)
        self.wait()

    @property
    def exit_code(self) -> int | None:
        """None while running; the shell's exit code once reaped."""
        return None if self.status is None else exit_code(self.status)
