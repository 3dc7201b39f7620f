"""perf as the oracle for unwound stacks: per sample, the user frames perf script prints for a file, and the ones
hwprof's decoder built for the same file, both as (binary, address) so that symbol naming cannot blur the match."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import numpy as np
from hwprof.symbolize import Symbolizer

from hwprof.pipeline import decode_file
from hwprof.profile import FrameKind, Profile

_HEADER = re.compile(r"^\s*(\d+)\s+(\d+)\.(\d+):")
_FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)$")
BOTTOMS = ("main", "__libc_start_call_main", "_start", "start_thread", "clone", "clone3", "Py_BytesMain")


@dataclass
class SampleStack:
    frames: list[int]               # user frames, leaf first: addresses as their binary sees them
    names: list[str]                # every frame's function name as shown (inlined frames included)

    def reaches(self, names=BOTTOMS) -> bool:
        return any(n in names for n in self.names)


def perf_stacks(perf: str, path) -> dict[tuple[int, int], SampleStack]:
    """(tid, time ns) -> the sample's stack as perf script unwinds it. perf prints a caller's call site (return
    address - 1), which is what hwprof keeps too (callers are looked up at their call site)."""
    out = subprocess.run([perf, "script", "-i", str(path), "-F", "tid,time,ip,sym,dso", "--ns"],
                         capture_output=True, text=True, check=True).stdout
    stacks: dict[tuple[int, int], SampleStack] = {}
    current: SampleStack | None = None
    user_seen = 0
    last_raw = -1
    for line in out.splitlines():
        head = _HEADER.match(line)
        if head:
            current = SampleStack([], [])
            stacks[(int(head.group(1)), int(head.group(2)) * 10**9 + int(head.group(3)))] = current
            user_seen = 0
            continue
        m = _FRAME.match(line)
        if m is None or current is None:
            continue
        addr, sym, dso = int(m.group(1), 16), m.group(2), m.group(3)
        if addr >= 1 << 63:
            continue  # libdw's end marker past _start (ffffffffffffffff)
        current.names.append(re.sub(r"\+0x[0-9a-f]+$", "", sym))
        if dso.startswith("[kernel"):
            continue
        # an inlined function's line ("(inlined)" where the binary would be) shares its address with the frame
        # that holds it; one entry per address
        if user_seen and last_raw == addr:
            continue
        current.frames.append(addr)
        last_raw = addr
        user_seen += 1
    return stacks


def hwprof_stacks(path) -> dict[tuple[int, int], SampleStack]:
    profile: Profile = decode_file(path, Symbolizer())
    by_stack: dict[int, SampleStack] = {}
    out: dict[tuple[int, int], SampleStack] = {}
    for i in range(profile.n_samples):
        stack = int(profile.sample_stack[i])
        got = by_stack.get(stack)
        if got is None:
            frames: list[int] = []
            names: list[str] = []
            for f in reversed(profile.stack_frames(stack)):  # leaf first
                names.append(profile.frame_label(f))
                if profile.frame_kind[f] != FrameKind.USER:
                    continue
                key = int(profile.frame_address[f])
                if not frames or frames[-1] != key:
                    frames.append(key)
            got = by_stack[stack] = SampleStack(frames, names)
        out[(int(profile.sample_tid[i]), int(profile.sample_time[i]))] = got
    return out


def compare(ours: dict, theirs: dict) -> dict[str, float]:
    common = sorted(set(ours) & set(theirs))
    both = [k for k in common if ours[k].reaches() and theirs[k].reaches()]
    agree = sum(ours[k].frames == theirs[k].frames for k in both)
    # The known gap (an rbx-based CFA in ld.so's lazy-binding resolver, which hwprof does not evaluate): samples
    # where perf reaches main through _dl_runtime_resolve* and hwprof does not.
    resolver = sum(theirs[k].reaches() and not ours[k].reaches()
                   and any(name.startswith("_dl_runtime_resolve") for name in theirs[k].names) for k in common)
    return {
        "known_gap": resolver,
        "samples": len(common),
        "ours_main": float(np.mean([ours[k].reaches() for k in common])) if common else 0.0,
        "perf_main": float(np.mean([theirs[k].reaches() for k in common])) if common else 0.0,
        "both": len(both),
        "agree": agree / len(both) if both else 0.0,
    }
