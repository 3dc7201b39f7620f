"""Where a dwarf sample's registers and stack copy are, for a batch of samples of one attr, read with numpy.

A SAMPLE with REGS_USER and STACK_USER has variable-length parts before them (the kernel callchain), so their
positions differ per sample: computed here from each sample's callchain length, without a Python loop. The stack
bytes are not copied: the unwinder reads them straight from the data chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwprof.callgraph import REG_BP, REG_IP, REG_SP
from hwprof.perf.abi import SampleType
from hwprof.perf.records import SampleLayout

# Fields between CALLCHAIN and REGS_USER whose size varies per sample: not supported in a dwarf batch.
_VARIABLE_BEFORE_REGS = SampleType.RAW | SampleType.BRANCH_STACK


@dataclass
class UserState:
    ip: np.ndarray          # uint64
    sp: np.ndarray
    bp: np.ndarray
    has_regs: np.ndarray    # bool
    stack_at: np.ndarray    # int64 byte position of the copy in the chunk
    stack_size: np.ndarray  # int64 valid bytes (dyn_size)
    copy_size: np.ndarray   # int64 bytes the attr asked for (the copy's capacity)


def has_user_stacks(layout: SampleLayout) -> bool:
    return layout.has(SampleType.REGS_USER) and layout.has(SampleType.STACK_USER)


def supported(layout: SampleLayout) -> str | None:
    """None when this layout's user state can be located with numpy, else why not."""
    if not has_user_stacks(layout):
        return "the samples carry no user registers and stack (not recorded with --call-graph dwarf)"
    if layout.sample_type & _VARIABLE_BEFORE_REGS:
        return "raw or branch-stack data precedes the registers"
    if layout.regs_user_count <= REG_IP:
        return "the user register mask lacks ip/sp/bp"
    return None


def user_state(words: np.ndarray, after_callchain: np.ndarray, layout: SampleLayout) -> UserState:
    """`words`: the chunk as little-endian u64; `after_callchain`: word index, per sample, of the first field after
    the callchain (or after READ when there is no callchain)."""
    pos = after_callchain.astype(np.int64)
    abi = words[pos]
    has = abi != 0
    regs = pos + 1
    nregs = layout.regs_user_count
    ip = np.where(has, words[np.where(has, regs + REG_IP, 0)], 0).astype(np.uint64)
    sp = np.where(has, words[np.where(has, regs + REG_SP, 0)], 0).astype(np.uint64)
    bp = np.where(has, words[np.where(has, regs + REG_BP, 0)], 0).astype(np.uint64)
    after_regs = regs + np.where(has, nregs, 0)
    size = words[after_regs].astype(np.int64)
    data = after_regs + 1
    dyn_at = data + size // 8
    dyn = np.where(size > 0, words[np.where(size > 0, dyn_at, 0)], 0).astype(np.int64)
    dyn = np.minimum(dyn, size)
    return UserState(ip, sp, bp, has, data * 8, dyn, size)
