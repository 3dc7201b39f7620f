"""perf_event_attr printed as `perf stat -vv` / `perf record -vv` print it (tools/perf/util/perf_event_attr_fprintf.c).

Layout: a dashed rule, `perf_event_attr:`, then one `  %-32s %s` line per non-zero field in the kernel's
field order (union fields under perf's `{ a, b }` names; config, config1-3 and register masks in hex; sample_type,
read_format and branch_sample_type as `|`-joined bit names), a dashed rule, then the syscall line
`sys_perf_event_open: pid P  cpu C  group_fd G  flags 0xF = FD` (or `... failed, error -ERRNO`).
"""

from __future__ import annotations

from hwprof.perf.attr import FLAG_BITS, PerfEventAttr

RULE = "-" * 60

_SAMPLE_BITS = ("IP", "TID", "TIME", "ADDR", "READ", "CALLCHAIN", "ID", "CPU", "PERIOD", "STREAM_ID", "RAW",
                "BRANCH_STACK", "REGS_USER", "STACK_USER", "WEIGHT", "DATA_SRC", "IDENTIFIER", "TRANSACTION",
                "REGS_INTR", "PHYS_ADDR", "AUX", "CGROUP", "DATA_PAGE_SIZE", "CODE_PAGE_SIZE", "WEIGHT_STRUCT")
# perf's print order of the sample bits (it lists them in its own table order, not bit order).
_SAMPLE_ORDER = ("IP", "TID", "TIME", "ADDR", "READ", "CALLCHAIN", "ID", "CPU", "PERIOD", "STREAM_ID", "RAW",
                 "BRANCH_STACK", "REGS_USER", "STACK_USER", "IDENTIFIER", "REGS_INTR", "DATA_SRC", "WEIGHT",
                 "PHYS_ADDR", "AUX", "CGROUP", "DATA_PAGE_SIZE", "CODE_PAGE_SIZE", "WEIGHT_STRUCT")
_READ_BITS = ("TOTAL_TIME_ENABLED", "TOTAL_TIME_RUNNING", "ID", "GROUP", "LOST")
_BRANCH_BITS = ("USER", "KERNEL", "HV", "ANY", "ANY_CALL", "ANY_RETURN", "IND_CALL", "ABORT_TX", "IN_TX", "NO_TX",
                "COND", "CALL_STACK", "IND_JUMP", "CALL", "NO_FLAGS", "NO_CYCLES", "TYPE_SAVE", "HW_INDEX",
                "PRIV_SAVE", "COUNTERS")


def _bits(value: int, names: tuple[str, ...], order: tuple[str, ...] | None = None) -> str:
    bit_of = {name: 1 << i for i, name in enumerate(names)}
    return "|".join(name for name in (order or names) if value & bit_of[name])


def attr_lines(attr: PerfEventAttr) -> list[tuple[str, str]]:
    """(label, value) for every non-zero field, in perf's order and spelling."""
    out: list[tuple[str, str]] = []

    def add(label: str, value: int, text: str | None = None) -> None:
        if value:
            out.append((label, text if text is not None else str(value)))

    add("type", attr.type)
    add("size", attr.size)
    add("config", attr.config, f"{attr.config:#x}")
    add("{ sample_period, sample_freq }", attr.sample_period)
    add("sample_type", attr.sample_type, _bits(attr.sample_type, _SAMPLE_BITS, _SAMPLE_ORDER))
    add("read_format", attr.read_format, _bits(attr.read_format, _READ_BITS))
    for name in FLAG_BITS:
        add(name, getattr(attr, name))
    add("{ wakeup_events, wakeup_watermark }", attr.wakeup_events)
    add("bp_type", attr.bp_type)
    add("{ bp_addr, config1 }", attr.config1, f"{attr.config1:#x}")
    add("{ bp_len, config2 }", attr.config2, f"{attr.config2:#x}")
    add("branch_sample_type", attr.branch_sample_type, _bits(attr.branch_sample_type, _BRANCH_BITS))
    add("sample_regs_user", attr.sample_regs_user, f"{attr.sample_regs_user:#x}")
    add("sample_stack_user", attr.sample_stack_user)
    add("clockid", attr.clockid)
    add("sample_regs_intr", attr.sample_regs_intr, f"{attr.sample_regs_intr:#x}")
    add("aux_watermark", attr.aux_watermark)
    add("sample_max_stack", attr.sample_max_stack)
    add("aux_sample_size", attr.aux_sample_size)
    add("sig_data", attr.sig_data)
    add("config3", attr.config3, f"{attr.config3:#x}")
    return out


def format_attr(attr: PerfEventAttr) -> str:
    """The block perf -vv prints before each perf_event_open()."""
    body = "".join(f"  {label:<32} {value}\n" for label, value in attr_lines(attr))
    return f"{RULE}\nperf_event_attr:\n{body}{RULE}\n"


def format_open(pid: int, cpu: int, group_fd: int, flags: int, result: int | None, errno: int = 0) -> str:
    """perf's syscall line: the fd on success; on failure perf prints the call, then the negative errno."""
    call = f"sys_perf_event_open: pid {pid}  cpu {cpu}  group_fd {group_fd}  flags {flags:#x}"
    if result is not None:
        return f"{call} = {result}\n"
    return f"{call}\nsys_perf_event_open failed, error -{errno}\n"
