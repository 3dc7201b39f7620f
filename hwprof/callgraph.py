"""`--call-graph MODE[,SIZE]`: how user stacks are captured, spelled and bounded as perf spells them.

- fp: the kernel walks frame pointers (PERF_SAMPLE_CALLCHAIN). Cheap, wrong for code built without them.
- dwarf: the kernel records the user registers (PERF_SAMPLE_REGS_USER) and SIZE bytes of the user stack from the
  stack pointer up (PERF_SAMPLE_STACK_USER); the user part is unwound afterwards with the binaries' CFI. The kernel
  part still comes from the kernel's callchain (exclude_callchain_user=1).
- lbr: the CPU's last-branch-record call stack (Intel): refused where the CPU has none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hwprof.errors import HwprofError

DEFAULT_STACK_DUMP = 8192  # perf's DEFAULT_STACK_DUMP_SIZE
MAX_STACK_DUMP = 65528     # perf: round_down(USHRT_MAX, 8), a sample must fit a 16-bit record size

# perf's PERF_REGS_MASK for x86_64 (asm/perf_regs.h): AX..SS (bits 0-11) and R8..R15 (16-23); DS, ES, FS, GS are
# not sampled (the kernel refuses them for 64-bit tasks). Samples carry them in ascending bit order.
X86_64_DWARF_REGS_MASK = 0xFF0FFF
# Positions of the registers the unwinder needs inside a sample's REGS_USER block with that mask.
REG_BP, REG_SP, REG_IP = 6, 7, 8

_LBR_CAPS = "/sys/bus/event_source/devices/cpu/caps/branches"


@dataclass(frozen=True)
class CallGraph:
    mode: str                       # "fp", "dwarf" or "lbr"
    stack_size: int = 0             # bytes of user stack per sample (dwarf only)

    @property
    def dwarf(self) -> bool:
        return self.mode == "dwarf"


def parse_call_graph(text: str) -> CallGraph:
    """Parse perf's `--call-graph` argument: fp, dwarf[,SIZE], lbr. SIZE is rounded up to 8 bytes as perf does."""
    mode, _, size_text = text.strip().partition(",")
    mode = mode.strip()
    if mode == "fp":
        if size_text:
            raise HwprofError(f"--call-graph fp takes no size (got {text!r})", exit_code=2)
        return CallGraph("fp")
    if mode == "lbr":
        return CallGraph("lbr")
    if mode != "dwarf":
        raise HwprofError(f"--call-graph {text!r}: expected fp, dwarf[,SIZE] or lbr", exit_code=2)
    if not size_text:
        return CallGraph("dwarf", DEFAULT_STACK_DUMP)
    try:
        size = int(size_text, 0)
    except ValueError:
        raise HwprofError(f"--call-graph dwarf,SIZE: {size_text!r} is not a number of bytes", exit_code=2) from None
    size = (size + 7) // 8 * 8
    if size <= 0 or size > MAX_STACK_DUMP:
        raise HwprofError(f"--call-graph dwarf,SIZE: incorrect stack dump size {size_text} "
                          f"(1 to {MAX_STACK_DUMP} bytes)", exit_code=2)
    return CallGraph("dwarf", size)


def lbr_refusal(caps_path: str = _LBR_CAPS) -> str | None:
    """Why LBR call stacks cannot be used here, or None when the CPU PMU advertises last branch records."""
    try:
        with open(caps_path) as f:
            depth = int(f.read().strip() or 0)
    except (OSError, ValueError):
        depth = 0
    if depth > 0:
        return None
    if not os.path.isdir(os.path.dirname(os.path.dirname(caps_path))):
        return ("--call-graph lbr needs the CPU's last branch records, and this machine has no CPU PMU "
                "(a VM without PMU passthrough): use --call-graph dwarf")
    return "--call-graph lbr needs a CPU with last branch records (Intel, Haswell or later): use --call-graph dwarf"
