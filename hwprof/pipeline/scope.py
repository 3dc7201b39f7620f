"""Keeping only the samples of some processes, by name, before anything else is done with them.

The kernel can limit sampling to processes, CPUs or a cgroup, but not to a program name (perf has no such filter
either). `hwprof agent --comm NAME` therefore samples the machine and drops the other processes' samples as soon as
they are decoded into columns: a `CommScope` stage selects each batch (SampleBatch.select), so the dropped samples
never reach unwinding, callchain deduplication, stack resolution or symbolization. The decoder runs filtering
stages (`Stage.early`) before every other stage.

A process is known by the name of its main thread (the comm of tid == pid; perf's `--comm` in perf report and the
fleet store's comm column use the same), as the capture's COMM records (or the /proc snapshot) say when the batch
is decoded; a process whose name the stream has not given yet is known by one of its sampled threads' names.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hwprof.pipeline.samples import SampleBatch
from hwprof.pipeline.stages import Stage

OUTSIDE_COMMS = "samples of processes outside --comm"


class CommScope(Stage):
    """Drops the samples of processes whose name is not in `comms`; counts them in `filtered`."""

    name = "comm scope"
    early = True

    def __init__(self, comms: Iterable[str]) -> None:
        self.comms = frozenset(comms)
        self.filtered = 0

    def on_batch(self, batch: SampleBatch) -> None:
        if not len(batch):
            return
        pids, first = np.unique(batch.pid, return_index=True)
        names = batch.spaces.comms
        kept = [pid for pid, at in zip(pids.tolist(), first.tolist(), strict=True)
                if (names.get(pid) or names.get(int(batch.tid[at]))) in self.comms]
        keep = np.isin(batch.pid, np.asarray(kept, dtype=batch.pid.dtype))
        self.filtered += int(len(keep) - np.count_nonzero(keep))
        batch.select(keep, OUTSIDE_COMMS)
