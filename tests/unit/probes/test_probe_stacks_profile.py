"""Stacks at probe hits become a Profile: mappings, call-site lookup, kernel/user split, stack quality."""

from __future__ import annotations

import numpy as np
from hwprof.collectors.probe_spec import Probe, ProbeKind, parse_spec
from hwprof.collectors.probe_stacks import build_profile
from hwprof.collectors.probes import Hit, Mode, ProbeCounts, SessionResult, Target
from hwprof.symbolize.frame import SymbolizedFrame

from hwprof.definitions import stack_quality
from hwprof.folded import profile_folded
from hwprof.perf.abi import CallchainContext
from hwprof.perf.records import Mmap
from hwprof.profile import StackEnd

BIN = "/opt/app/bin/app"
FUNCS = {0x1100: "leaf", 0x1200: "caller", 0x1300: "main"}  # file offset of each function's first byte


class FakeSymbolizer:
    """Functions are 0x100 bytes long at the offsets above; kernel addresses are named k<hex>."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[int]]] = []

    def symbolize_offsets(self, path, file_offsets, build_id=None):
        self.asked.append((path, [int(o) for o in file_offsets]))
        out = []
        for off in file_offsets.tolist():
            name = FUNCS.get(off & ~0xFF)
            out.append((SymbolizedFrame(name, None, None, False, path, off),) if name else ())
        return out

    def symbolize_kernel(self, addrs):
        return [(SymbolizedFrame(f"k{a:x}", None, None, False, "[kernel.kallsyms]", a),) for a in addrs.tolist()]


def _result(hits, kind=ProbeKind.UPROBE) -> SessionResult:
    spec = parse_spec(kind, f"{BIN}:leaf" if kind == ProbeKind.UPROBE else "ksys_write")
    probe = Probe(spec, kind, f"{kind.value}:leaf", path=BIN, file_offset=0x1100)
    result = SessionResult(Mode.STACKS, Target(command=(BIN,)), [ProbeCounts(probe, "pmu")])
    # the text segment (file offset 0x1000) is mapped at 0x555000001000
    result.maps.append(Mmap(pid=10, tid=10, start=0x555000001000, length=0x1000, pgoff=0x1000, filename=BIN))
    result.comms[10] = "app"
    result.hits.extend(hits)
    return result


def test_user_stack_with_call_sites():
    user = int(CallchainContext.USER)
    # leaf at its first byte; the callers' return addresses point right after their call instructions, which
    # for "caller" is exactly the first byte of the next function: only return-address - 1 finds "caller".
    chain = (user, 0x555000001100, 0x555000001300, 0x555000001380)
    result = _result([Hit(0, 10, 10, 1000, 0, chain), Hit(0, 10, 10, 2000, 1, chain)])
    sym = FakeSymbolizer()
    profile = build_profile(result, sym)
    assert list(profile_folded(profile)) == ["main;caller;leaf 2"]
    assert sym.asked == [(BIN, [0x1100, 0x12FF, 0x137F])]
    assert stack_quality(profile).score == 1.0
    assert profile.threads == {10: "app"}
    assert profile.meta.source == "hwprof probe"


def test_unmapped_and_empty_stacks():
    user = int(CallchainContext.USER)
    result = _result([Hit(0, 10, 10, 1, 0, (user, 0x555000001100, 0x7F0000000000)), Hit(0, 10, 10, 2, 0, ())])
    profile = build_profile(result, FakeSymbolizer())
    assert profile.sample_end.tolist() == [StackEnd.UNKNOWN_FRAME, StackEnd.NO_STACK]
    assert list(profile_folded(profile)) == ["[unknown];leaf 1"]


def test_kernel_then_user():
    kernel, user = int(CallchainContext.KERNEL), int(CallchainContext.USER)
    chain = (kernel, 0xFFFFFFFF81000010, 0xFFFFFFFF81000020, user, 0x555000001380)
    result = _result([Hit(0, 10, 10, 1, 0, chain)], kind=ProbeKind.KPROBE)
    profile = build_profile(result, FakeSymbolizer())
    assert list(profile_folded(profile)) == ["main;kffffffff8100001f;kffffffff81000010 1"]
    assert np.all(profile.sample_stack >= 0)


def test_truncated_stack():
    user = int(CallchainContext.USER)
    chain = (user, *([0x555000001100] * 8))
    profile = build_profile(_result([Hit(0, 10, 10, 1, 0, chain)]), FakeSymbolizer(), max_stack=8)
    assert profile.sample_end.tolist() == [StackEnd.TRUNCATED]
