"""Processes that joined a cgroup after they mapped their code, filled in from /proc while they still run.

`hwprof agent --cgroup` samples with cgroup events whose side-band (mmap, comm, fork, exit) the kernel writes
only for the cgroup's tasks (SamplingOptions.every_task_sideband=False): a machine's other processes cost the
agent nothing at all. The first window starts with a /proc snapshot of the cgroup's processes, and a process
started inside later brings its own records. One that was moved in while it ran (its exec and mappings happened
outside) has samples but no mappings: when its first samples are decoded, this stage reads its mappings and name
from /proc, as the probe collector does for processes that ran before its capture. The agent decodes each window
seconds after it was sampled, so the process is normally still there; one that already exited stays unresolved
(its frames count as unknown in the stack quality), as with perf when a process's mappings are missing.
"""

from __future__ import annotations

import numpy as np
from hwprof.collectors.procfs import process_mmaps

from hwprof.pipeline.samples import SampleBatch
from hwprof.pipeline.stages import Stage
from hwprof.system.procfs import read_comm


class JoinedProcesses(Stage):
    name = "joined processes"
    early = True  # before unwinding, which reads the mappings too

    def __init__(self) -> None:
        self.filled = 0          # processes whose mappings came from /proc
        self.gone: set[int] = set()  # sampled without any mapping, and no longer in /proc

    def on_batch(self, batch: SampleBatch) -> None:
        spaces = batch.spaces
        pids, first = np.unique(batch.pid, return_index=True)
        for pid, at in zip(pids.tolist(), first.tolist(), strict=True):
            if pid <= 0 or pid in spaces.changes or pid in self.gone:
                continue
            maps = process_mmaps(pid)
            if not maps:
                self.gone.add(pid)
                continue
            spaces.snapshot(pid, maps)
            self.filled += 1
            tid = int(batch.tid[at])
            for task in {pid, tid}:
                if task not in spaces.comms:
                    name = read_comm(pid, task if task != pid else None)
                    if name is not None:
                        spaces.comms[task] = name
                        spaces.pid_of_tid[task] = pid
