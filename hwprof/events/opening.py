"""Opening a parsed event the way perf does, and probing whether an event opens here for this user.

perf asks for exclude_guest=1 on every event, and some PMUs (msr, many uncore PMUs, old kernels) reject the
guest/host bits with EINVAL; perf then retries without them ("switching off exclude_guest, exclude_host").
hwprof.perf.syscall.perf_event_open does the same retry; `open_event` keeps the parsed attr untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hwprof.perf import syscall
from hwprof.perf.abi import FLAG_FD_CLOEXEC, PerfType
from hwprof.perf.attr import PerfEventAttr


def open_event(attr: PerfEventAttr, pid: int = 0, cpu: int = -1, group_fd: int = -1,
               flags: int = FLAG_FD_CLOEXEC, name: str | None = None) -> tuple[int, PerfEventAttr]:
    """Open a copy of `attr` (the caller's stays as parsed); return the fd and the attr the kernel accepted.

    The guest/host retry itself lives in hwprof.perf.syscall.perf_event_open, so every opener gets it.
    """
    used = attr.copy()
    return syscall.perf_event_open(used, pid, cpu, group_fd, flags, name=name), used


@dataclass(frozen=True)
class Openability:
    """Can this event be opened here, by this user? `user_only`: only with the kernel excluded (:u)."""

    ok: bool
    user_only: bool = False
    reason: str = ""

    @property
    def label(self) -> str:
        if self.ok:
            return "yes (user space only)" if self.user_only else "yes"
        return "no"


def try_open(attr: PerfEventAttr, name: str, pid: int = 0, cpu: int = -1) -> Openability:
    """Open and close at once (disabled, counting only), trying perf's user-space-only fallback when denied."""
    probe = attr.copy()
    probe.disabled = 1
    probe.sample_period = 0
    probe.sample_type = 0
    try:
        fd, _ = open_event(probe, pid, cpu, name=name)
    except syscall.PerfOpenError as exc:
        # Tracepoints fire in kernel context: a user-space-only tracepoint opens but never counts.
        if exc.permission and not probe.exclude_kernel and probe.type != PerfType.TRACEPOINT:
            user = probe.copy()
            user.exclude_kernel = user.exclude_hv = 1
            try:
                fd, _ = open_event(user, pid, cpu, name=name)
            except syscall.PerfOpenError as user_exc:
                # Denied with the kernel, and still failing without it: the second reason is the real one
                # (e.g. no CPU PMU), unless that too is a permission problem.
                reason = user_exc if not user_exc.permission else exc
                return Openability(False, reason=_without_name(str(reason), name))
            os.close(fd)
            return Openability(True, user_only=True, reason=_without_name(str(exc), name))
        return Openability(False, reason=_without_name(str(exc), name))
    os.close(fd)
    return Openability(True)


def _without_name(message: str, name: str) -> str:
    """The reason alone, so that a list of events that fail for one reason can say it once."""
    # plain string operations: a regex per event name cost a compile per listed event
    for prefix in (f"event '{name}' is ", f"event '{name}' "):
        if message.startswith(prefix):
            message = message[len(prefix):]
            break
    return message.replace(f" '{name}'", "")
