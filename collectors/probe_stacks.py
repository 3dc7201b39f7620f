"""Stacks captured at probe hits, turned into a Profile (the model the report, the folded output and the web use).

The hits go through the pipeline's one stack path (hwprof.pipeline.assemble, hwprof.pipeline.stacks): user
addresses become (file, file offset) through the process's mappings as they were at the hit, from the MMAP2
records the kernel wrote into the ring (exact for a command started under hwprof) and, for processes that were
already running, a /proc/PID/maps snapshot taken when their first hit was decoded; callers are looked up at their
call site; the stack-quality rules are the sampler's. The symbolizer is a parameter so the collector does not choose
debug-info policy (debuginfod, symfs) for its caller.
"""

from __future__ import annotations

import platform
import socket

import numpy as np
from hwprof.collectors.probes import SessionResult

from hwprof.perf.abi import CallchainContext
from hwprof.perf.records import Mmap
from hwprof.pipeline.assemble import StackedSamples, assemble_profile
from hwprof.pipeline.chains import ChainTable
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.pipeline.stacks import StackResolver, Symbolizer
from hwprof.pipeline.stages import NOT_UNWOUND
from hwprof.profile import Profile, ProfileMeta

_CONTEXT_MIN = int(CallchainContext.MAX)
_KERNEL = int(CallchainContext.KERNEL).to_bytes(8, "little")
_USER = int(CallchainContext.USER).to_bytes(8, "little")


def build_profile(result: SessionResult, symbolizer: Symbolizer, max_stack: int = 127) -> Profile:
    spaces = AddressSpaces()
    for m in result.maps:
        spaces.mmap(m.sample_id.time, m)
    for pid, mappings in result.proc_maps.items():
        spaces.snapshot(pid, [Mmap(pid, pid, start, end - start, pgoff, path) for start, end, pgoff, path in mappings])
    labels = [c.probe.label for c in result.probes]
    meta = ProfileMeta(
        target=result.target.describe(),
        command=list(result.target.command),
        events=labels,
        start_time_ns=0,
        duration_ns=result.duration_ns,
        lost=result.lost,
        hostname=socket.gethostname(),
        os_release=platform.release(),
        source="hwprof probe",
        notes=[f"{result.lost} hits lost (ring buffer full): use a larger -m"] if result.lost else [],
    )
    hits = result.hits
    keys = []
    for hit in hits:
        key = np.array(hit.callchain, dtype="<u8").tobytes()
        if hit.callchain and hit.callchain[0] < _CONTEXT_MIN:
            # entries before any context marker: the probe's own context
            key = (_USER if result.probes[hit.probe].probe.kind.is_user else _KERNEL) + key
        keys.append(key)
    chains = ChainTable()
    chain = chains.ids(keys)
    for hit in hits:
        spaces.comms.setdefault(hit.tid, result.comm(hit.tid))
    n = len(hits)
    times = np.array([h.time for h in hits], dtype=np.uint64)
    samples = StackedSamples(
        time=times, when=times.astype(np.int64), pid=np.array([h.pid for h in hits], dtype=np.int64),
        tid=np.array([h.tid for h in hits], dtype=np.int64), cpu=np.array([h.cpu for h in hits], dtype=np.int64),
        period=np.ones(n, dtype=np.float64), chain=chain, stop=np.full(n, NOT_UNWOUND, dtype=np.uint8),
        counters=np.zeros((n, 0), dtype=np.float64),
        root=np.array([h.probe for h in hits], dtype=np.int64) if len(labels) > 1 else None)
    return assemble_profile(meta, samples, chains, spaces, StackResolver(spaces, symbolizer), max_stack,
                            has_callchain=True, root_labels=labels)
