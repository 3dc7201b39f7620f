"""struct perf_event_attr as a ctypes Structure, all fields through ABI version 8 (136 bytes)."""

from __future__ import annotations

import ctypes

from hwprof.perf.abi import ATTR_SIZE_VER8

FLAG_BITS = (
    "disabled", "inherit", "pinned", "exclusive", "exclude_user", "exclude_kernel", "exclude_hv",
    "exclude_idle", "mmap", "comm", "freq", "inherit_stat", "enable_on_exec", "task", "watermark",
    "precise_ip", "mmap_data", "sample_id_all", "exclude_host", "exclude_guest", "exclude_callchain_kernel",
    "exclude_callchain_user", "mmap2", "comm_exec", "use_clockid", "context_switch", "write_backward",
    "namespaces", "ksymbol", "bpf_event", "aux_output", "cgroup", "text_poke", "build_id", "inherit_thread",
    "remove_on_exec", "sigtrap",
)  # fmt: skip


def _flag_fields() -> list[tuple[str, type, int]]:
    fields = []
    for name in FLAG_BITS:
        fields.append((name, ctypes.c_uint64, 2 if name == "precise_ip" else 1))
    used = sum(width for _, _, width in fields)
    fields.append(("__reserved_1", ctypes.c_uint64, 64 - used))
    return fields


class PerfEventAttr(ctypes.Structure):
    """The kernel's perf_event_attr. Unions are exposed by their first member plus alias properties."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # union with sample_freq
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        *_flag_fields(),
        ("wakeup_events", ctypes.c_uint32),  # union with wakeup_watermark
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),  # union: bp_addr, kprobe_func, uprobe_path
        ("config2", ctypes.c_uint64),  # union: bp_len, kprobe_addr, probe_offset
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("__reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("__reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
        ("config3", ctypes.c_uint64),
    ]

    def __init__(self, **fields: int) -> None:
        super().__init__()
        self.size = ctypes.sizeof(self)
        for name, value in fields.items():
            setattr(self, name, value)

    # --- union aliases -------------------------------------------------------------------------------
    sample_freq = property(
        lambda self: self.sample_period, lambda self, v: setattr(self, "sample_period", v)
    )
    wakeup_watermark = property(
        lambda self: self.wakeup_events, lambda self, v: setattr(self, "wakeup_events", v)
    )
    bp_addr = property(lambda self: self.config1, lambda self, v: setattr(self, "config1", v))
    bp_len = property(lambda self: self.config2, lambda self, v: setattr(self, "config2", v))
    probe_offset = property(lambda self: self.config2, lambda self, v: setattr(self, "config2", v))

    # --- conversions ---------------------------------------------------------------------------------
    def to_bytes(self, size: int | None = None) -> bytes:
        """The attr as the kernel (or a perf.data file) sees it, cut to `size` bytes."""
        raw = bytes(self)
        return raw[: size if size is not None else self.size]

    @classmethod
    def from_bytes(cls, raw: bytes) -> PerfEventAttr:
        """Decode an attr of any ABI size: shorter ones are zero-extended, longer ones cut."""
        attr = cls()
        n = min(len(raw), ctypes.sizeof(cls))
        ctypes.memmove(ctypes.addressof(attr), raw, n)
        return attr

    def copy(self) -> PerfEventAttr:
        return PerfEventAttr.from_bytes(bytes(self))

    def nonzero_fields(self) -> dict[str, int]:
        """Every field that is set, by name: how perf -vv prints an attr, and handy in tests and errors."""
        out = {}
        for name, *_ in self._fields_:
            if name.startswith("__"):
                continue
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:#x}" if k.startswith("config") else f"{k}={v}"
                          for k, v in self.nonzero_fields().items())
        return f"PerfEventAttr({inner})"


assert ctypes.sizeof(PerfEventAttr) == ATTR_SIZE_VER8, ctypes.sizeof(PerfEventAttr)
