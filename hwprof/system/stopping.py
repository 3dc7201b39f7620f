"""Stop requests: SIGINT, SIGTERM and SIGHUP become a flag and a readable fd, never an exception mid-work.

Every long-running loop in hwprof (stat, record, probe) waits in poll/select on `StopSignals.fd` next to its own
fds, so a stop request wakes it at once, and it then takes its one path out: stop the events, collect what is
there, close the events, remove what it created in the kernel, tell the command. An exception raised inside that
path (what Python does with SIGINT by default) could skip a step; a flag cannot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Catch the stop signals for the duration of a `with` block (main thread only; elsewhere nothing is caught
    and `fd` never becomes readable). `requested` names the first stop signal; `received` keeps them all, in order.

    `wake_on_child` also makes SIGCHLD wake the fd (not a stop request): a loop can then notice its command's
    exit without polling for it.
    """

    def __init__(self, signals: Iterable[int] = STOP_SIGNALS, wake_on_child: bool = False) -> None:
        self.signals = tuple(signals)
        self.wake_on_child = wake_on_child
        self.received: list[int] = []
        self._unread = 0
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous: dict[int, object] = {}
        self._previous_wakeup: int | None = None

    @property
    def fd(self) -> int:
        """Readable once a caught signal arrived (drain() it after waking)."""
        return self._read_fd

    @property
    def requested(self) -> str | None:
        """The name of the first stop signal ('SIGTERM'), or None."""
        return signal.Signals(self.received[0]).name if self.received else None

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._note)
        if self.wake_on_child:
            self._previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        return self

    def _note(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        self._unread += 1

    def drain(self) -> list[int]:
        """Empty the fd; return the stop signals that arrived since the last drain."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 512):
                pass
        fresh = self.received[len(self.received) - self._unread:] if self._unread else []
        self._unread = 0
        return fresh

    def __exit__(self, *exc: object) -> None:
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        os.close(self._read_fd)
        os.close(self._write_fd)
