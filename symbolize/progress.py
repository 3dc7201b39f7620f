"""A progress line on stderr for slow index builds, so a cold start never looks like a hang.

Silent unless stderr is a terminal, and only after the work has taken a second: warm runs and
pipes stay clean. The building call (symbolic's, in Rust) releases the GIL, so a thread can tick.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

_DELAY_S = 1.0
_TICK_S = 0.2
_SPINNER = "|/-\\"


class Progress:
    def __init__(self, label: str, stream=None, delay: float = _DELAY_S) -> None:
        self._label = label
        self._delay = delay
        self._stream = stream if stream is not None else sys.stderr
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def __enter__(self) -> Progress:
        isatty = getattr(self._stream, "isatty", None)
        if isatty is not None and isatty():
            self._thread = threading.Thread(target=self._run, name="hwprof-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        if self._done.wait(self._delay):
            return
        tick = 0
        while not self._done.wait(_TICK_S):
            elapsed = time.monotonic() - start
            self._stream.write(f"\r{_SPINNER[tick % 4]} hwprof: indexing {self._label} ... {elapsed:4.1f}s")
            self._stream.flush()
            self._shown = True
            tick += 1
        if self._shown:
            elapsed = time.monotonic() - start
            self._stream.write(f"\r  hwprof: indexed {self._label} in {elapsed:.1f}s\n")
            self._stream.flush()
