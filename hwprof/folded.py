"""The folded-stack format, written down once.

Contract (Brendan Gregg's FlameGraph `stackcollapse` output, which flamegraph.pl, speedscope and inferno read):

    root;child;leaf 42

- one line per unique stack, frames root first, separated by ';'
- a single space, then the weight: an integer count of samples (or, with a weight, a rounded total)
- a frame name never contains ';' or a line break: those characters become '_' (names are data, not syntax)
- lines are sorted by stack text, so output is stable and diffs well; a stack of zero weight is not written
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from hwprof.errors import HwprofError

_UNSAFE = str.maketrans({";": "_", "\n": "_", "\r": "_"})


def clean_frame(name: str) -> str:
    return name.translate(_UNSAFE)


def format_folded(stacks: Iterable[tuple[list[str], float]]) -> Iterator[str]:
    """Lines for (frames root first, weight) pairs; equal stacks are merged."""
    totals: dict[str, float] = {}
    for frames, weight in stacks:
        key = ";".join(clean_frame(f) for f in frames)
        totals[key] = totals.get(key, 0.0) + weight
    for key in sorted(totals):
        weight = round(totals[key])
        if weight > 0 and key:
            yield f"{key} {weight}"


def parse_folded(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    out = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, sep, count = line.rpartition(" ")
        if not sep or not count.isdigit():
            raise HwprofError(f"folded line {number}: expected 'frame;frame;... COUNT', got {line[:80]!r}")
        out.append((stack.split(";"), int(count)))
    return out


def profile_folded(profile, weights: np.ndarray | None = None, mask: np.ndarray | None = None) -> Iterator[str]:
    """Folded lines for a Profile: weight per sample (default 1 each), optionally only the masked samples.

    Paths are gathered with numpy, one tree level at a time for a block of leaves (not one Python step per frame
    of every stack: deep captures have tens of millions of those), then joined once per stack."""
    stacks = profile.sample_stack
    w = np.ones(len(stacks)) if weights is None else weights
    if mask is not None:
        stacks, w = stacks[mask], w[mask]
    valid = stacks >= 0
    per_stack = np.bincount(stacks[valid], weights=w[valid], minlength=len(profile.stack_frame))
    labels = [clean_frame(profile.frame_label(i)) for i in range(len(profile.frame_function))]
    leaves = np.nonzero(per_stack)[0]
    parent = profile.stack_parent.astype(np.int64)
    frame = profile.stack_frame.astype(np.int64)
    totals: dict[str, float] = {}
    for lo in range(0, len(leaves), 20000):  # bounded memory: a (depth, block) matrix at a time
        block = leaves[lo:lo + 20000]
        levels = []
        node = block.astype(np.int64)
        while True:
            alive = node >= 0
            if not alive.any():
                break
            levels.append(np.where(alive, frame[np.maximum(node, 0)], -1))
            node = np.where(alive, parent[np.maximum(node, 0)], -1)
        paths = np.stack(levels[::-1], axis=1).tolist() if levels else [[] for _ in block]
        get = labels.__getitem__
        for path, weight in zip(paths, per_stack[block].tolist(), strict=True):
            key = ";".join([get(f) for f in path if f >= 0])
            totals[key] = totals.get(key, 0.0) + weight
    for key in sorted(totals):
        weight = round(totals[key])
        if weight > 0 and key:
            yield f"{key} {weight}"
