"""`hwprof check`: what this machine and this user can measure, and for every "no" why and how to fix it.

Each check reads one kernel fact (sysctl, sysfs, /proc) or tries the real operation (opening events, calling
bpf(2)), because a documented rule and what the kernel actually allows differ across versions and lockdown
settings. Nothing here needs privileges; an unprivileged user gets a report about what *they* can do.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from hwprof.perf.syscall import SYSFS_PMUS, has_cpu_pmu, read_sysctl, read_text

OK, NO, WARN, INFO = "ok", "no", "warn", "info"

# Capability bits (include/uapi/linux/capability.h)
CAPABILITIES = {"CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_SYS_PTRACE": 19, "CAP_IPC_LOCK": 14}

PARANOID_MEANING = {
    -1: "no restrictions: raw tracepoint data, kernel profiling and system-wide counting for every user",
    0: "unprivileged users may count system-wide and the kernel (no raw tracepoint data)",
    1: "unprivileged users may profile their own processes including kernel code, not system-wide",
    2: "unprivileged users may profile their own processes in user space only",
}

_SYSCALL_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SOCKET_FILTER = 1


@dataclass(frozen=True)
class Check:
    """One line of the report. `fix` is set whenever status is no or warn: the cause and what to do."""

    key: str
    title: str
    status: str
    value: str
    fix: str = ""
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PreflightReport:
    checks: tuple[Check, ...]

    def get(self, key: str) -> Check | None:
        return next((c for c in self.checks if c.key == key), None)

    def to_json(self) -> dict:
        return {"checks": [asdict(c) for c in self.checks]}


# --- machine ------------------------------------------------------------------------------------------------

def check_kernel() -> Check:
    uname = platform.uname()
    return Check("kernel", "Kernel", INFO, f"Linux {uname.release} ({uname.machine})",
                 data={"release": uname.release, "version": uname.version, "machine": uname.machine})


def cpu_identity(cpuinfo: str | None = None) -> dict:
    """vendor, family, model, stepping, model name and the hypervisor flag of the first CPU in /proc/cpuinfo."""
    from hwprof.system.cpus import first_cpu

    fields = first_cpu(cpuinfo)

    def number(key: str) -> int | None:
        try:
            return int(fields[key], 0)
        except (KeyError, ValueError):
            return None

    return {
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer") or "unknown",
        "family": number("cpu family"),
        "model": number("model"),
        "stepping": number("stepping"),
        "model_name": fields.get("model name", ""),
        "hypervisor": "hypervisor" in fields.get("flags", "").split(),
        "cpus": os.cpu_count() or 0,
    }


def check_cpu(cpuinfo: str | None = None) -> Check:
    ident = cpu_identity(cpuinfo)
    value = f"{ident['vendor']} family {ident['family']} model {ident['model']}"
    if ident["model"] is not None:
        value += f" ({ident['model']:#x})"
    if ident["model_name"]:
        value += f", {ident['model_name']}"
    value += f", {ident['cpus']} CPUs" + (", running under a hypervisor" if ident["hypervisor"] else "")
    return Check("cpu", "CPU", INFO, value, data=ident)


def check_cpu_pmu() -> Check:
    try:
        pmus = sorted(os.listdir(SYSFS_PMUS))
    except OSError:
        pmus = []
    data = {"pmus": pmus}
    if has_cpu_pmu():
        core = [p for p in pmus if p in ("cpu", "cpu_core", "cpu_atom") or p.startswith("armv")]
        return Check("cpu_pmu", "CPU PMU", OK, f"yes ({', '.join(core)}); PMUs: {', '.join(pmus)}", data=data)
    hypervisor = cpu_identity()["hypervisor"]
    fix = ("no hardware counters (cycles, instructions, caches): "
           + ("this is a VM without PMU passthrough; enable it (KVM/QEMU: -cpu host,pmu=on; libvirt: "
              "<pmu state='on'/>; VMware: 'Virtualize CPU performance counters'; clouds: a bare-metal or "
              "PMU-enabled instance type)" if hypervisor else
              "the kernel registered no CPU PMU (check dmesg for 'Performance Events', and CONFIG_PERF_EVENTS / "
              "the CPU's PMU driver)")
           + "; software events, tracepoints and probes still work")
    return Check("cpu_pmu", "CPU PMU", NO, f"none; PMUs: {', '.join(pmus) or 'none'}", fix, data)


def _probe_events(names: tuple[str, ...]) -> tuple[list[str], dict[str, str], list[str]]:
    """Open each event for this process and close it: (opened, {name: why not}, user-space-only)."""
    from hwprof.events import parse_event
    from hwprof.events.opening import try_open

    opened: list[str] = []
    failed: dict[str, str] = {}
    user_only: list[str] = []
    for name in names:
        spec = parse_event(name)
        result = try_open(spec.attr, name)
        if result.ok:
            opened.append(name)
            if result.user_only:
                user_only.append(name)
        else:
            failed[name] = result.reason
    return opened, failed, user_only


def _event_check(key: str, title: str, names: tuple[str, ...], advice: str) -> Check:
    opened, failed, user_only = _probe_events(names)
    data = {"opened": opened, "failed": failed, "user_space_only": user_only}
    parts = []
    if opened:
        parts.append(f"open: {', '.join(opened)}")
    if failed:
        parts.append(f"not here: {', '.join(failed)}")
    value = "; ".join(parts)
    reasons = sorted(set(failed.values()))
    if not opened:
        return Check(key, title, NO, value, (reasons[0] if len(reasons) == 1 else "; ".join(reasons)) + advice, data)
    if failed:
        return Check(key, title, WARN, value, "; ".join(reasons), data)
    if user_only:
        return Check(key, title, WARN, value + " (user space only)",
                     "kernel code is excluded for this user (perf_event_paranoid); see 'perf_event_paranoid'", data)
    return Check(key, title, OK, value, data=data)


def check_hardware_events() -> Check:
    from hwprof.events.generic import HARDWARE_EVENTS

    names = tuple(e.name for e in HARDWARE_EVENTS) + ("L1-dcache-load-misses", "LLC-load-misses", "dTLB-load-misses")
    return _event_check("hardware_events", "Generic hardware events", names,
                        "" if has_cpu_pmu() else " (see 'CPU PMU')")


# Named events that show whether a model's vendor events count here: cycles/instructions equivalents, a cache
# miss event and (Intel) the perf-metrics slots counter; the first of each tuple the model has is probed.
_VENDOR_PROBES = (
    ("INST_RETIRED.ANY", "ex_ret_instr"), ("CPU_CLK_UNHALTED.THREAD", "CPU_CLK_UNHALTED.CORE", "ls_not_halted_cyc"),
    ("MEM_LOAD_RETIRED.L3_MISS", "MEM_LOAD_UOPS_RETIRED.L3_MISS", "LONGEST_LAT_CACHE.MISS", "ls_dc_accesses",
     "ls_any_fills_from_sys.all"),
    ("TOPDOWN.SLOTS",),
)


def check_vendor_events() -> Check:
    """Named vendor events (hwprof.events.vendor) and the vendor metrics: which model, and whether they count."""
    from hwprof.events.cpuid import CpuidError, machine_cpuid
    from hwprof.events.vendor import VendorDataError, current_model

    try:
        model = current_model()
    except (CpuidError, VendorDataError) as exc:
        return Check("vendor_events", "Named CPU events", NO, "unavailable", str(exc))
    here = machine_cpuid()
    if model is None:
        return Check("vendor_events", "Named CPU events", WARN, f"no vendor data for {here.text if here else '?'}",
                     "only generic, raw and sysfs events work on this model; PERF_CPUID=VENDOR-FAMILY-MODEL lists "
                     "and resolves another model's events")
    metrics = model.metrics()
    tma = sorted({m.level for m in metrics if m.level and m.is_tma})
    about = (f"{model.cpuid.text} ({model.name}): {len(model.events())} events, {len(metrics)} metrics"
             + (f", top-down levels {tma[0]}-{tma[-1]}" if tma else ""))
    data = {"cpuid": model.cpuid.text, "model": model.name, "events": len(model.events()), "metrics": len(metrics),
            "topdown_levels": tma}
    if model.cpuid.overridden and (here is None or here.without_stepping != model.cpuid.without_stepping):
        return Check("vendor_events", "Named CPU events", WARN, about + f" via PERF_CPUID (this CPU: "
                     f"{here.text if here else '?'})", "PERF_CPUID names another model: its events are listed and "
                     "encoded (stat -vv prints them) but cannot be counted on this CPU; unset it to count", data)
    names = tuple(next(n for n in group if model.find(n)) for group in _VENDOR_PROBES
                  if any(model.find(n) for n in group))
    if not names:
        return Check("vendor_events", "Named CPU events", WARN, about, "none of the events this check opens "
                     "(retired instructions, cycles, cache misses) is in this model's data, so whether they count "
                     "is untested: 'hwprof list vendor' shows what it has", data)
    check = _event_check("vendor_events", "Named CPU events", names, "" if has_cpu_pmu() else " (see 'CPU PMU')")
    return Check(check.key, check.title, check.status, f"{about}; {check.value}", check.fix, {**data, **check.data})


def check_software_events() -> Check:
    names = ("task-clock", "cpu-clock", "page-faults", "context-switches", "cpu-migrations")
    return _event_check("software_events", "Software events", names, "")


# --- permissions --------------------------------------------------------------------------------------------

def capabilities(status: str | None = None) -> dict[str, bool]:
    """Effective capabilities of this process, from /proc/self/status CapEff."""
    text = status if status is not None else (read_text("/proc/self/status") or "")
    cap_eff = 0
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            cap_eff = int(line.split()[1], 16)
    return {name: bool(cap_eff >> bit & 1) for name, bit in CAPABILITIES.items()}


def check_privileges() -> Check:
    euid = os.geteuid()
    caps = capabilities()
    held = [name for name, has in caps.items() if has]
    value = f"euid {euid}" + (" (root)" if euid == 0 else "") + f"; capabilities: {', '.join(held) or 'none'}"
    data = {"euid": euid, "capabilities": caps}
    if caps["CAP_PERFMON"] or caps["CAP_SYS_ADMIN"]:
        return Check("privileges", "Privileges", OK, value, data=data)
    return Check("privileges", "Privileges", WARN, value,
                 "without CAP_PERFMON (or root) perf_event_paranoid limits what you can measure: run as root, or "
                 "'setcap cap_perfmon,cap_bpf,cap_sys_ptrace+ep' on the Python interpreter of a dedicated venv",
                 data)


def _privileged() -> bool:
    caps = capabilities()
    return os.geteuid() == 0 or caps["CAP_PERFMON"] or caps["CAP_SYS_ADMIN"]


def check_paranoid() -> Check:
    level = read_sysctl("perf_event_paranoid")
    if level is None:
        return Check("perf_event_paranoid", "perf_event_paranoid", NO, "missing",
                     "/proc/sys/kernel/perf_event_paranoid does not exist: the kernel lacks CONFIG_PERF_EVENTS")
    meaning = PARANOID_MEANING.get(max(-1, min(level, 2)), "")
    if level > 2:
        meaning = "perf_event_open is denied to unprivileged users (a distribution patch: levels above 2)"
    value = f"{level}: {meaning}"
    if _privileged():
        return Check("perf_event_paranoid", "perf_event_paranoid", OK, value + " (does not limit this user)",
                     data={"level": level})
    if level >= 2:
        return Check("perf_event_paranoid", "perf_event_paranoid", WARN, value,
                     "you can profile your own processes in user space only; for kernel stacks, tracepoints and "
                     "-a: 'sysctl kernel.perf_event_paranoid=1' (own processes incl. kernel) or 0 / -1, or run as "
                     "root", {"level": level})
    return Check("perf_event_paranoid", "perf_event_paranoid", OK, value, data={"level": level})


def check_kptr_restrict() -> Check:
    level = read_sysctl("kptr_restrict")
    visible = _kallsyms_visible()
    value = f"{level}; kernel symbol addresses {'visible' if visible else 'hidden'} to this user"
    data = {"level": level, "kallsyms_visible": visible}
    if visible:
        return Check("kptr_restrict", "kptr_restrict", OK, value, data=data)
    if level == 0:
        how = ("with kptr_restrict=0 the kernel still hides them unless perf_event_paranoid <= 1: "
               "'sysctl kernel.perf_event_paranoid=1', or run as root / with CAP_SYSLOG")
    elif level == 1:
        how = "kptr_restrict=1 shows them only with CAP_SYSLOG: run as root"
    else:
        how = "kptr_restrict=2 hides them from everyone: 'sysctl kernel.kptr_restrict=0' and run as root"
    fix = "kernel frames will show as [unknown]: " + how
    return Check("kptr_restrict", "kptr_restrict", WARN, value, fix, data)


def _kallsyms_visible() -> bool:
    try:
        with open("/proc/kallsyms") as f:
            for _, line in zip(range(200), f, strict=False):
                if int(line.split()[0], 16) != 0:
                    return True
    except (OSError, ValueError, IndexError):
        return False
    return False


# --- tracing and probes -------------------------------------------------------------------------------------

def check_tracefs() -> Check:
    from hwprof.events.tracefs import find_tracefs, tracefs_status

    find_tracefs(mount=os.geteuid() == 0)
    path, why = tracefs_status()
    if path is None:
        return Check("tracefs", "tracefs", NO, "not usable", why + "; tracepoints and probes need it")
    return Check("tracefs", "tracefs", OK, f"mounted at {path}", data={"path": path})


def _probe_support(kind: str) -> Check:
    """uprobe/kprobe: the perf PMU (probe without tracefs, cleaned up with the fd) and tracefs `<kind>_events`."""
    from hwprof.events.tracefs import TRACEFS_CANDIDATES

    pmu_type = read_text(os.path.join(SYSFS_PMUS, kind, "type"))
    control = next((os.path.join(d, f"{kind}_events") for d in TRACEFS_CANDIDATES
                    if os.path.exists(os.path.join(d, f"{kind}_events"))), None)
    writable = control is not None and os.access(control, os.W_OK)
    access = " (writable)" if writable else " (read-only for this user)"
    parts = [f"perf PMU: {'type ' + pmu_type.strip() if pmu_type else 'absent'}",
             f"tracefs: {control + access if control else 'absent'}"]
    data = {"pmu_type": int(pmu_type) if pmu_type else None, "tracefs_control": control, "writable": writable}
    title = f"{kind}s"
    config = "CONFIG_UPROBE_EVENTS" if kind == "uprobe" else "CONFIG_KPROBES and CONFIG_KPROBE_EVENTS"
    if not pmu_type and not control:
        return Check(kind, title, NO, "; ".join(parts),
                     f"this kernel was built without {config}: boot a distribution kernel that has them"
                     + (" (hwprof's VM tier boots one for its kprobe tests)" if kind == "kprobe" else ""), data)
    if not _privileged():
        return Check(kind, title, WARN, "; ".join(parts),
                     f"creating {kind}s needs root (or CAP_PERFMON plus CAP_SYS_ADMIN for the tracefs interface)",
                     data)
    return Check(kind, title, OK, "; ".join(parts), data=data)


def check_uprobes() -> Check:
    return _probe_support("uprobe")


def check_kprobes() -> Check:
    return _probe_support("kprobe")


def _bpf_load_trivial_program() -> int:
    """BPF_PROG_LOAD of `r0 = 0; exit` as a socket filter: 0 on success, else the errno."""
    number = _SYSCALL_BPF.get(platform.machine())
    if number is None:
        return errno.ENOSYS
    insns = (ctypes.c_uint64 * 2)(0x00000000000000B7, 0x0000000000000095)  # mov64 r0, 0 ; exit
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    header = (ctypes.c_uint32 * 2).from_buffer(attr)
    header[0], header[1] = _BPF_PROG_TYPE_SOCKET_FILTER, 2
    pointers = (ctypes.c_uint64 * 2).from_buffer(attr, 8)
    pointers[0], pointers[1] = ctypes.addressof(insns), ctypes.addressof(license_)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(number, _BPF_PROG_LOAD, ctypes.byref(attr), ctypes.c_uint(128))
    if fd < 0:
        return ctypes.get_errno()
    os.close(fd)
    return 0


def check_bpf() -> Check:
    err = _bpf_load_trivial_program()
    btf = os.path.exists("/sys/kernel/btf/vmlinux")
    unpriv = read_sysctl("unprivileged_bpf_disabled")
    value = (f"bpf(2) {'works' if err == 0 else 'fails: ' + os.strerror(err)}; BTF "
             f"{'present' if btf else 'absent'} (/sys/kernel/btf/vmlinux); unprivileged_bpf_disabled={unpriv}")
    data = {"bpf_syscall": err == 0, "errno": err, "btf": btf, "unprivileged_bpf_disabled": unpriv}
    if err == errno.ENOSYS:
        return Check("bpf", "BPF", NO, value, "the kernel lacks CONFIG_BPF_SYSCALL", data)
    if err in (errno.EPERM, errno.EACCES):
        return Check("bpf", "BPF", NO, value,
                     "BPF needs root or CAP_BPF+CAP_PERFMON (kernel.unprivileged_bpf_disabled is set)", data)
    if err:
        return Check("bpf", "BPF", NO, value, f"loading a trivial program failed ({os.strerror(err)})", data)
    if not btf:
        return Check("bpf", "BPF", WARN, value, "no BTF: CO-RE BPF tools need a kernel with CONFIG_DEBUG_INFO_BTF",
                     data)
    return Check("bpf", "BPF", OK, value, data=data)


# --- limits --------------------------------------------------------------------------------------------------

def check_sample_rate() -> Check:
    rate = read_sysctl("perf_event_max_sample_rate")
    cpu_pct = read_sysctl("perf_cpu_time_max_percent")
    stack = read_sysctl("perf_event_max_stack")
    value = f"{rate} Hz max (perf_cpu_time_max_percent={cpu_pct}, perf_event_max_stack={stack})"
    data = {"max_sample_rate": rate, "cpu_time_max_percent": cpu_pct, "max_stack": stack}
    if rate is not None and rate < 1000:
        return Check("sample_rate", "Max sample rate", WARN, value,
                     "the kernel lowered the rate after slow interrupts; sampling above it fails with EINVAL: "
                     "'sysctl kernel.perf_event_max_sample_rate=100000' (or sample at a lower -F)", data)
    return Check("sample_rate", "Max sample rate", OK, value, data=data)


def check_mlock() -> Check:
    mlock_kb = read_sysctl("perf_event_mlock_kb")
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)

    def fmt(limit: int) -> str:
        return "unlimited" if limit == resource.RLIM_INFINITY else f"{limit // 1024} KiB"

    value = f"perf_event_mlock_kb={mlock_kb} per CPU; RLIMIT_MEMLOCK {fmt(soft)} (hard {fmt(hard)})"
    data = {"perf_event_mlock_kb": mlock_kb, "rlimit_memlock_soft": soft, "rlimit_memlock_hard": hard}
    if _privileged() or capabilities()["CAP_IPC_LOCK"]:
        return Check("mlock", "Ring-buffer memory", OK, value + " (not limiting this user)", data=data)
    if mlock_kb is not None and mlock_kb < 132:
        return Check("mlock", "Ring-buffer memory", WARN, value,
                     "less than 32 data pages per CPU for sampling buffers: 'sysctl kernel.perf_event_mlock_kb=516' "
                     "or raise 'ulimit -l'", data)
    return Check("mlock", "Ring-buffer memory", OK, value, data=data)


def check_sampling() -> Check:
    """Open a sampling cpu-clock on this process and map perf's default ring buffer (512 KiB + 1 page): the
    mlock accounting, the paranoid level and the sample rate all have their say in whether this works."""
    import mmap

    from hwprof.perf import syscall
    from hwprof.perf.abi import PerfType, SampleType, SwEvent
    from hwprof.perf.attr import PerfEventAttr

    attr = PerfEventAttr(type=PerfType.SOFTWARE, config=SwEvent.CPU_CLOCK, sample_freq=99, freq=1, disabled=1,
                         sample_type=SampleType.IP | SampleType.TID | SampleType.TIME | SampleType.CALLCHAIN)
    if not _privileged() and (read_sysctl("perf_event_paranoid") or 0) >= 2:
        attr.exclude_kernel = attr.exclude_hv = 1
    pages = 1 + (512 * 1024) // mmap.PAGESIZE
    try:
        fd = syscall.perf_event_open(attr, 0, -1, name="cpu-clock sampling")
    except syscall.PerfOpenError as exc:
        return Check("sampling", "Sampling", NO, "cannot open a sampling event", str(exc))
    try:
        ring = mmap.mmap(fd, pages * mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        ring.close()
    except OSError as exc:
        return Check("sampling", "Sampling", WARN,
                     f"sampling opens, but a {pages - 1}-page ring buffer cannot be mapped ({exc.strerror})",
                     "the locked-memory budget is used up or too small: raise kernel.perf_event_mlock_kb or "
                     "'ulimit -l', close other profilers, or record with fewer pages (-m)",
                     {"pages": pages - 1, "errno": exc.errno})
    finally:
        os.close(fd)
    scope = "user space only" if attr.exclude_kernel else "user and kernel"
    return Check("sampling", "Sampling", OK, f"cpu-clock sampling with call chains and a {pages - 1}-page ring "
                 f"buffer works ({scope})", data={"pages": pages - 1, "kernel": not attr.exclude_kernel})


def check_fd_limit() -> Check:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    value = f"{soft} (hard {hard}); hwprof raises its own soft limit to the hard one"
    need = 8 * (os.cpu_count() or 1) * 4
    if hard != resource.RLIM_INFINITY and hard < need:
        return Check("fd_limit", "Open files", WARN, value,
                     f"counting many events on every CPU needs about one fd each: raise the hard limit "
                     f"(limits.conf nofile) above {need}", {"soft": soft, "hard": hard})
    return Check("fd_limit", "Open files", OK, value, data={"soft": soft, "hard": hard})


def check_lockdown() -> Check:
    text = read_text("/sys/kernel/security/lockdown")
    if text is None:
        return Check("lockdown", "Kernel lockdown", INFO, "not available (no lockdown LSM)")
    mode = text[text.find("[") + 1: text.find("]")] if "[" in text else text.strip()
    if mode == "confidentiality":
        return Check("lockdown", "Kernel lockdown", WARN, mode,
                     "confidentiality lockdown blocks kernel tracepoint data, kprobes and BPF reading kernel "
                     "memory: boot with lockdown=integrity or none (Secure Boot may set it)", {"mode": mode})
    return Check("lockdown", "Kernel lockdown", OK, mode, data={"mode": mode})


SYSTEM_CHECKS: tuple[Callable[[], Check], ...] = (
    check_kernel, check_cpu, check_cpu_pmu, check_hardware_events, check_vendor_events, check_software_events,
    check_privileges,
    check_paranoid, check_kptr_restrict, check_tracefs, check_uprobes, check_kprobes, check_bpf,
    check_sample_rate, check_mlock, check_sampling, check_fd_limit, check_lockdown,
)


def _guarded(check: Callable[[], Check]) -> Check:
    """A check that breaks reports its failure as a line of the report rather than losing the whole report."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a preflight report must always be printed
        name = check.__name__.removeprefix("check_")
        return Check(name, name, WARN, "check failed", f"{type(exc).__name__}: {exc}")


def run_system_checks(extra: tuple[Callable[[], Check], ...] = ()) -> PreflightReport:
    return PreflightReport(tuple(_guarded(c) for c in (*SYSTEM_CHECKS, *extra)))
