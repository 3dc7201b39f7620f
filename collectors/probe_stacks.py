"""Stacks captured at probe hits, turned into a Profile (the model the report, the folded output and the web use).

User addresses become (file, file offset) through the process's mappings: the MMAP2 records the kernel wrote into
the ring (exact for a command started under hwprof) and, for processes that were already running, a /proc/PID/maps
snapshot taken when their first hit was decoded. The symbolizer is a parameter so the collector does not choose
debug-info policy (debuginfod, symfs) for its caller.
"""

from __future__ import annotations

import platform
import socket
from collections import defaultdict
from typing import Protocol

import numpy as np
from hwprof.collectors.probes import SessionResult

from hwprof.perf.abi import CallchainContext
from hwprof.profile import FrameKind, Profile, ProfileBuilder, ProfileMeta, StackEnd
from hwprof.units import Address, Pid

_CONTEXT_MIN = int(CallchainContext.MAX)


class StackSymbolizer(Protocol):
    def symbolize_offsets(self, path: str, file_offsets: np.ndarray, build_id: bytes | None = None) -> list: ...

    def symbolize_kernel(self, addrs: np.ndarray) -> list: ...


class AddressSpaces:
    """Per process: which file is mapped where. Later mappings shadow earlier ones (exec, re-mmap)."""

    def __init__(self) -> None:
        self._maps: dict[Pid, list[tuple[int, int, int, str]]] = defaultdict(list)

    def add(self, pid: Pid, start: Address, end: Address, pgoff: int, path: str) -> None:
        self._maps[pid].append((start, end, pgoff, path))

    def lookup(self, pid: Pid, addr: Address) -> tuple[str, int] | None:
        for start, end, pgoff, path in reversed(self._maps.get(pid, ())):
            if start <= addr < end:
                return path, addr - start + pgoff
        return None


def _split_callchain(chain: tuple[int, ...], default_user: bool) -> list[tuple[bool, int]]:
    """(is_kernel, address) leaf first, context markers removed, callers as call sites."""
    out = []
    kernel = not default_user
    for value in chain:
        if value >= _CONTEXT_MIN:
            if value == CallchainContext.KERNEL:
                kernel = True
            elif value == CallchainContext.USER:
                kernel = False
            continue
        # Every frame but the leaf is a return address: the call is the instruction before it (else an inlined
        # function that follows the call, or the next line, gets the blame), as perf and pprof look it up.
        out.append((kernel, value - 1 if out else value))
    return out


def build_profile(result: SessionResult, symbolizer: StackSymbolizer, max_stack: int = 127) -> Profile:
    spaces = AddressSpaces()
    for m in result.maps:
        spaces.add(m.pid, m.start, m.end, m.pgoff, m.filename)
    for pid, mappings in result.proc_maps.items():
        for start, end, pgoff, path in mappings:
            spaces.add(pid, start, end, pgoff, path)

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
    builder = ProfileBuilder(meta)

    # Gather every address once: user addresses per file, kernel addresses together.
    chains = [_split_callchain(hit.callchain, result.probes[hit.probe].probe.kind.is_user) for hit in result.hits]
    user_offsets: dict[str, set[int]] = defaultdict(set)
    kernel_addrs: set[int] = set()
    located: dict[tuple[Pid, int], tuple[str, int] | None] = {}
    for hit, chain in zip(result.hits, chains, strict=True):
        for is_kernel, addr in chain:
            if is_kernel:
                kernel_addrs.add(addr)
            else:
                key = (hit.pid, addr)
                if key not in located:
                    located[key] = spaces.lookup(hit.pid, addr)
                    if located[key] is not None:
                        user_offsets[located[key][0]].add(located[key][1])

    user_frames: dict[tuple[str, int], list[int]] = {}
    for path, offsets in user_offsets.items():
        ordered = sorted(offsets)
        symbolized = symbolizer.symbolize_offsets(path, np.array(ordered, dtype=np.uint64))
        for offset, chain in zip(ordered, symbolized, strict=True):
            user_frames[(path, offset)] = _frames_root_first(builder, chain, path, offset, FrameKind.USER)
    kernel_frames: dict[int, list[int]] = {}
    if kernel_addrs:
        ordered = sorted(kernel_addrs)
        symbolized = symbolizer.symbolize_kernel(np.array(ordered, dtype=np.uint64))
        for addr, chain in zip(ordered, symbolized, strict=True):
            kernel_frames[addr] = _frames_root_first(builder, chain, "[kernel.kallsyms]", addr, FrameKind.KERNEL)

    probe_roots = [builder.frame(function=label, module=None, address=0, kind=FrameKind.UNKNOWN) for label in labels]
    for hit, chain in zip(result.hits, chains, strict=True):
        builder.threads.setdefault(hit.tid, result.comm(hit.tid))
        frames: list[int] = []
        unknown_root = False
        for is_kernel, addr in reversed(chain):  # root first
            if is_kernel:
                frames.extend(kernel_frames[addr])
                continue
            where = located.get((hit.pid, addr))
            if where is None:
                frames.append(builder.frame(function=None, module=None, address=addr, kind=FrameKind.USER))
                unknown_root = unknown_root or not frames[:-1]
            else:
                frames.extend(user_frames[where])
        if not chain:
            end = StackEnd.NO_STACK
        elif len(hit.callchain) >= max_stack:
            end = StackEnd.TRUNCATED
        elif unknown_root:
            end = StackEnd.UNKNOWN_FRAME
        else:
            end = StackEnd.COMPLETE
        if len(labels) > 1:
            frames.insert(0, probe_roots[hit.probe])
        stack = builder.stack(frames) if frames else -1
        builder.sample(time=hit.time, pid=hit.pid, tid=hit.tid, cpu=hit.cpu, stack=stack, period=1.0, end=end)
    return builder.build()


def _frames_root_first(builder: ProfileBuilder, chain, module: str, address: int, kind: FrameKind) -> list[int]:
    """A symbolizer chain is innermost first; a stack wants the real function first, then what was inlined into it."""
    if not chain:
        return [builder.frame(function=None, module=module, address=address, kind=kind)]
    out = []
    for frame in reversed(chain):
        out.append(builder.frame(function=frame.function, module=frame.module or module, address=address,
                                 kind=kind, file=frame.file, line=frame.line or 0, inlined=frame.inlined))
    return out
