"""The Python API for counting: `hwprof.count(...)` as a context manager or a decorator.

    with hwprof.count(["task-clock", "page-faults"]) as c:
        work()
    c.values["page-faults"], c.metrics["CPUs utilized"]

It counts this process (every thread that exists at entry, and threads and children created inside, through
inherit) or another process given by `pid=`, with the same collector and metrics as `hwprof stat`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hwprof.errors import HwprofError
from hwprof.units import Nanoseconds, Pid

F = TypeVar("F", bound=Callable[..., Any])


class Counts:
    """One counting scope. After it closes: `values` (name as requested -> value in its unit, None when not counted
    or not supported here), `metrics` (name -> value), `results` and `metric_results` (full records with enabled/running
    times and uncertainty), `duration_ns`. Re-entering it (e.g. as a decorator) starts a fresh count."""

    def __init__(self, events: Sequence[str] | str | None = None, pid: Pid | None = None,
                 no_scale: bool = False) -> None:
        if isinstance(events, str):
            events = [events]
        self.event_text: tuple[str, ...] = tuple(events or ())
        self.pid = pid
        self.no_scale = no_scale
        self.values: dict[str, float | None] = {}
        self.metrics: dict[str, float] = {}
        self.results: tuple = ()
        self.metric_results: tuple = ()
        self.duration_ns: Nanoseconds = 0
        self._session = None
        self._t0 = 0

    def __enter__(self) -> Counts:
        if self._session is not None:
            raise HwprofError("this hwprof.count scope is already counting (nested use of one object)")
        from hwprof.collectors.counting import CountingSession, Target
        from hwprof.stat_events import parse_groups

        groups = parse_groups(self.event_text)
        session = CountingSession(groups, Target(pids=(self.pid or os.getpid(),)))
        session.open()
        self._session = session
        self._t0 = time.monotonic_ns()
        session.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.disable()
            snap = session.read()
            self.duration_ns = time.monotonic_ns() - self._t0
            self._publish(session, snap)
        finally:
            session.close()

    def read(self) -> dict[str, float | None]:
        """Values so far, without stopping (inside the scope); the final values after it."""
        if self._session is None:
            return dict(self.values)
        snap = self._session.read()
        self.duration_ns = time.monotonic_ns() - self._t0
        self._publish(self._session, snap)
        return dict(self.values)

    def _publish(self, session, snap) -> None:
        from hwprof.collectors.count_results import totals_slice

        totals = totals_slice(session, snap, self.duration_ns, self.no_scale)
        self.results = totals.events
        self.metric_results = totals.metrics
        # Keyed by the names asked for: an unprivileged run's 'page-faults:u' is still values["page-faults"].
        self.values = {slot.requested or e.name: e.value for slot, e in zip(session.slots, totals.events, strict=True)}
        self.metrics = {m.name: m.value for m in totals.metrics}

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        counted.counts = self  # type: ignore[attr-defined]
        return counted  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Counts({self.values!r})"


def count(events: Sequence[str] | str | None = None, pid: Pid | None = None, no_scale: bool = False) -> Counts:
    """Count `events` (perf syntax; default: perf stat's default set) on this process, or on `pid`."""
    return Counts(events, pid=pid, no_scale=no_scale)
