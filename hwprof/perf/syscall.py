"""perf_event_open(2), its ioctls and its errors, turned into messages a user can act on."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

from hwprof.errors import HwprofError
from hwprof.perf import abi
from hwprof.perf.attr import PerfEventAttr

_SYSCALL_NUMBERS = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "s390x": 331, "riscv64": 241}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.ioctl.restype = ctypes.c_int

SYSFS_PMUS = "/sys/bus/event_source/devices"


def _syscall_number() -> int:
    machine = os.uname().machine  # not platform.machine(): importing platform costs start-up time
    try:
        return _SYSCALL_NUMBERS[machine]
    except KeyError:
        raise HwprofError(f"perf_event_open: unsupported architecture {machine}") from None


_NR_PERF_EVENT_OPEN = _syscall_number()


class PerfOpenError(HwprofError):
    """perf_event_open failed; `errno` is kept so callers can tell "not supported" from "not allowed"."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err

    @property
    def unsupported(self) -> bool:
        return self.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV)

    @property
    def permission(self) -> bool:
        return self.errno in (errno.EACCES, errno.EPERM)


def read_text(path: str) -> str | None:
    """A procfs/sysfs file's text, or None when it is absent or unreadable (a missing feature, not an error)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_sysctl(name: str, default: int | None = None) -> int | None:
    try:
        return int((read_text(f"/proc/sys/kernel/{name}") or "").split()[0])
    except (ValueError, IndexError):
        return default


def has_cpu_pmu() -> bool:
    """A CPU PMU shows as sysfs `cpu` (Intel, AMD), `cpu_core`/`cpu_atom` (hybrid) or `armv8_*` PMUs."""
    try:
        names = os.listdir(SYSFS_PMUS)
    except OSError:
        return False
    return any(n in ("cpu", "cpu_core", "cpu_atom") or n.startswith("armv") for n in names)


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one: each event on each CPU or thread is one fd."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
        except (ValueError, OSError):
            pass
    return soft


def _paranoid_advice(attr: PerfEventAttr, pid: int, cpu: int) -> str:
    level = read_sysctl("perf_event_paranoid", 2)
    if os.geteuid() == 0:
        return "even as root: a security module (SELinux, lockdown) may deny perf_event_open"
    wants_kernel = not attr.exclude_kernel
    if pid == -1 or cpu >= 0 and pid == -1:
        need, what = 0, "system-wide or per-CPU counting"
    elif attr.type == abi.PerfType.TRACEPOINT and attr.sample_type & abi.SampleType.RAW:
        need, what = -1, "tracepoint samples with raw data"
    elif attr.type == abi.PerfType.TRACEPOINT:
        need, what = 1, "tracepoints (they fire in the kernel, so ':u' would count nothing)"
    elif wants_kernel:
        need, what = 1, "counting kernel code (add the :u modifier to count user space only)"
    else:
        need, what = 2, "this event"
    return (
        f"kernel.perf_event_paranoid is {level}; {what} needs {need} or lower, or CAP_PERFMON/root: "
        f"run as root, or 'sysctl kernel.perf_event_paranoid={need}'"
    )


def _einval_cause(attr: PerfEventAttr, pid: int, cpu: int, group_fd: int) -> str:
    max_rate = read_sysctl("perf_event_max_sample_rate", 100000) or 100000
    if attr.precise_ip and attr.type in (abi.PerfType.SOFTWARE, abi.PerfType.TRACEPOINT):
        return "precise_ip (:p/:pp/:ppp) is only for hardware events"
    if attr.freq and attr.sample_freq > max_rate:
        return f"sample_freq {attr.sample_freq} is above kernel.perf_event_max_sample_rate ({max_rate})"
    if attr.precise_ip:
        return f"precise_ip={attr.precise_ip} is more precision than this PMU offers (try fewer 'p's)"
    if attr.exclude_host or attr.exclude_guest and attr.type == abi.PerfType.SOFTWARE:
        return "the :G/:H modifiers need a PMU with virtualization support"
    if group_fd >= 0:
        return "the event cannot join this group (groups must stay on one PMU, software events aside)"
    if attr.inherit and attr.sample_type & abi.SampleType.READ:
        return "inherit together with PERF_SAMPLE_READ needs inherit_thread or a newer kernel"
    if cpu >= os.cpu_count() if os.cpu_count() else False:
        return f"CPU {cpu} does not exist"
    return "the kernel rejected config/config1/config2 or a flag combination for this PMU"


def explain_open_error(err: int, name: str, attr: PerfEventAttr, pid: int, cpu: int, group_fd: int) -> str:
    """One line that names the event and says what to do."""
    if err in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV):
        if attr.type in (abi.PerfType.HARDWARE, abi.PerfType.HW_CACHE, abi.PerfType.RAW) and not has_cpu_pmu():
            return (f"event '{name}' is not supported here: this machine has no CPU PMU "
                    "(typical of VMs: dmesg says 'PMU not available due to virtualization')")
        if err == errno.EOPNOTSUPP and attr.sample_period:
            return f"event '{name}' cannot be sampled on this PMU (it can only be counted)"
        return f"event '{name}' is not supported by this CPU/kernel ({os.strerror(err)})"
    if err in (errno.EACCES, errno.EPERM):
        if pid > 0 and os.geteuid() != 0:
            try:
                owner = os.stat(f"/proc/{pid}").st_uid
            except OSError:
                owner = os.geteuid()
            if owner != os.geteuid():
                return (f"no permission to open '{name}' on process {pid}: it belongs to another user "
                        "(needs root or CAP_PERFMON plus ptrace access)")
        return f"no permission to open '{name}': {_paranoid_advice(attr, pid, cpu)}"
    if err == errno.ESRCH:
        return f"no such process: {pid}" if pid > 0 else f"no such process for '{name}'"
    if err == errno.EINVAL:
        return f"invalid argument for '{name}': {_einval_cause(attr, pid, cpu, group_fd)}"
    if err == errno.EMFILE:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return (f"too many open files opening '{name}' (limit {soft}, hard limit {hard}): "
                "raise it with 'ulimit -n' or count fewer events/CPUs/threads")
    if err == errno.E2BIG:
        return (f"'{name}' uses perf_event_attr fields this kernel does not know "
                f"(it accepts {attr.size} bytes)")
    if err == errno.EBUSY:
        return f"event '{name}' is busy: another user holds the PMU exclusively"
    if err == errno.EOVERFLOW:
        limit = read_sysctl("perf_event_max_stack", abi.PERF_MAX_STACK_DEPTH)
        return f"stack depth {attr.sample_max_stack} for '{name}' is above kernel.perf_event_max_stack ({limit})"
    if err == errno.EMFILE:
        return f"too many open files opening '{name}'"
    return f"cannot open '{name}': {os.strerror(err)}"


# `-vv`: a writer that sees every attr before it is opened and the syscall's result (hwprof.perf.attr_format).
_open_trace: Callable[[str], None] | None = None


@contextlib.contextmanager
def trace_opens(write: Callable[[str], None]):
    """Within the block, print each perf_event_attr and perf_event_open() result as `perf -vv` does."""
    global _open_trace
    previous, _open_trace = _open_trace, write
    try:
        yield
    finally:
        _open_trace = previous


@functools.cache
def reports_lost_samples() -> bool:
    """Whether read(2) can give an event's dropped samples (PERF_FORMAT_LOST, Linux 6.0). A LOST record reaches the
    ring only with the next sample that fits, so drops at the very end are known from this count alone."""
    attr = PerfEventAttr(type=abi.PerfType.SOFTWARE, config=abi.SwEvent.DUMMY, disabled=1, exclude_kernel=1,
                         exclude_hv=1, read_format=abi.ReadFormat.LOST)
    try:
        fd = _perf_event_open(attr, 0, -1, -1, abi.FLAG_FD_CLOEXEC, None)
    except PerfOpenError:
        return False
    os.close(fd)
    return True


def perf_event_open(attr: PerfEventAttr, pid: int = 0, cpu: int = -1, group_fd: int = -1,
                    flags: int = abi.FLAG_FD_CLOEXEC, name: str | None = None) -> int:
    """Open an event; return its fd. On E2BIG, retry once with the attr size the kernel reported."""
    if _open_trace is None:
        return _perf_event_open(attr, pid, cpu, group_fd, flags, name)
    from hwprof.perf.attr_format import format_attr, format_open

    _open_trace(format_attr(attr))
    try:
        fd = _perf_event_open(attr, pid, cpu, group_fd, flags, name)
    except PerfOpenError as exc:
        _open_trace(format_open(pid, cpu, group_fd, flags, None, exc.errno))
        raise
    _open_trace(format_open(pid, cpu, group_fd, flags, fd))
    return fd


def _perf_event_open(attr: PerfEventAttr, pid: int, cpu: int, group_fd: int, flags: int, name: str | None) -> int:
    label = name or repr(attr)
    for _ in range(2):
        fd = _libc.syscall(_NR_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, group_fd, flags)
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err == errno.E2BIG and abi.ATTR_SIZE_VER0 <= attr.size < ctypes.sizeof(attr):
            # The kernel wrote back the size it knows; our tail beyond it must be zero for a retry to work.
            tail = bytes(attr)[attr.size:]
            if any(tail):
                break
            continue
        if err == errno.E2BIG and attr.size == ctypes.sizeof(attr):
            # Some kernels only report after a first attempt; shrink to the newest size they might know.
            continue
        break
    if err == errno.EINVAL and (attr.exclude_guest or attr.exclude_host):
        # perf's "switching off exclude_guest, exclude_host": perf sets exclude_guest on every event, and PMUs
        # without virtualization support (msr, most uncore PMUs, older kernels) refuse the bit. The attr is
        # changed in place, as perf does, so whoever records it records what the kernel accepted.
        saved = (attr.exclude_guest, attr.exclude_host)
        attr.exclude_guest = attr.exclude_host = 0
        fd = _libc.syscall(_NR_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, group_fd, flags)
        if fd >= 0:
            return fd
        attr.exclude_guest, attr.exclude_host = saved
    if flags & abi.FLAG_PID_CGROUP:
        # pid is a cgroup directory's fd: the event is a CPU's (explained as pid -1), limited to that cgroup.
        message = (f"'{label}': the cgroup directory is not in the perf_event cgroup hierarchy"
                   if err == errno.EBADF else explain_open_error(err, label, attr, -1, cpu, group_fd))
        raise PerfOpenError(message, err)
    raise PerfOpenError(explain_open_error(err, label, attr, pid, cpu, group_fd), err)


# --- ioctls ----------------------------------------------------------------------------------------------

def _ioctl(fd: int, request: int, arg: int | ctypes._SimpleCData | ctypes.Array | None = 0) -> int:
    if isinstance(arg, int) or arg is None:
        ret = _libc.ioctl(fd, ctypes.c_ulong(request), ctypes.c_ulong(arg or 0))
    else:
        ret = _libc.ioctl(fd, ctypes.c_ulong(request), ctypes.byref(arg))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf ioctl {request:#x}: {os.strerror(err)}")
    return ret


def enable(fd: int, group: bool = False) -> None:
    _ioctl(fd, abi.IOC_ENABLE, abi.IOC_FLAG_GROUP if group else 0)


def disable(fd: int, group: bool = False) -> None:
    _ioctl(fd, abi.IOC_DISABLE, abi.IOC_FLAG_GROUP if group else 0)


def reset(fd: int, group: bool = False) -> None:
    _ioctl(fd, abi.IOC_RESET, abi.IOC_FLAG_GROUP if group else 0)


def refresh(fd: int, count: int) -> None:
    _ioctl(fd, abi.IOC_REFRESH, count)


def set_period(fd: int, period: int) -> None:
    _ioctl(fd, abi.IOC_PERIOD, ctypes.c_uint64(period))


def set_output(fd: int, target_fd: int) -> None:
    """Send fd's records into target_fd's ring buffer (-1 detaches). Both must be on the same CPU."""
    _ioctl(fd, abi.IOC_SET_OUTPUT, target_fd & 0xFFFFFFFF if target_fd < 0 else target_fd)


def set_filter(fd: int, expression: str) -> None:
    """A tracepoint filter (`common_pid == 42`) or an address filter for AUX PMUs."""
    buf = ctypes.create_string_buffer(expression.encode())
    ret = _libc.ioctl(fd, ctypes.c_ulong(abi.IOC_SET_FILTER), buf)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"invalid filter {expression!r}: {os.strerror(err)}")


def event_id(fd: int) -> int:
    out = ctypes.c_uint64()
    _ioctl(fd, abi.IOC_ID, out)
    return out.value


def set_bpf(fd: int, prog_fd: int) -> None:
    _ioctl(fd, abi.IOC_SET_BPF, prog_fd)


def pause_output(fd: int, paused: bool) -> None:
    _ioctl(fd, abi.IOC_PAUSE_OUTPUT, 1 if paused else 0)


def modify_attributes(fd: int, attr: PerfEventAttr) -> None:
    _ioctl(fd, abi.IOC_MODIFY_ATTRIBUTES, attr)


@dataclass(frozen=True)
class OpenTarget:
    """Where an event is opened: a task (pid/tid > 0, cpu -1), a CPU (pid -1), or a task on one CPU."""

    pid: int
    cpu: int = -1
