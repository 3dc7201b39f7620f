"""A dwarf sample's user registers and stack copy, for a batch of samples of one attr, as the unwinder needs them.

The pipeline's SampleBatch.user_fields already locates them per sample (after the callchain, RAW and branch stack,
bounds-checked, without a Python loop); this picks ip/sp/bp out of them. The stack bytes are not copied: the unwinder
reads them straight from the batch's buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwprof.callgraph import REG_BP, REG_IP, REG_SP
from hwprof.perf.abi import SampleType
from hwprof.perf.records import SampleLayout
from hwprof.pipeline.samples import UserFields


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
    if layout.regs_user_count <= REG_IP:
        return "the user register mask lacks ip/sp/bp"
    return None


def user_state(fields: UserFields) -> UserState:
    """The unwinder's view of `fields` (SampleBatch.user_fields): a sample whose registers or stack did not fit its
    record has no registers there (abi 0), so it is not walked."""
    has = fields.regs_user_abi != 0
    regs = fields.regs_user
    return UserState(regs[:, REG_IP].copy(), regs[:, REG_SP].copy(), regs[:, REG_BP].copy(), has,
                     fields.stack_start, fields.stack_dyn_size, fields.stack_size)
