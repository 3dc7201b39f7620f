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

    Paths are gathered with numpy from the samples' distinct leaves (never anything as long as the stack table:
    deep captures have millions of nodes), one tree level at a time for a block of leaves, then joined once per
    stack."""
    from hwprof.pipeline.arrays import unique_inverse

    stacks = profile.sample_stack
    w = np.ones(len(stacks)) if weights is None else weights
    if mask is not None:
        stacks, w = stacks[mask], w[mask]
    valid = stacks >= 0
    leaves, inverse = unique_inverse(stacks[valid].astype(np.int64))
    per_leaf = np.bincount(inverse.reshape(-1), weights=w[valid], minlength=len(leaves))
    nonzero = per_leaf != 0
    leaves, per_leaf = leaves[nonzero], per_leaf[nonzero]
    # Each frame's label and its separator as UTF-8 bytes, one blob: a block's paths are gathered byte by byte
    # with numpy and split into lines once (no Python step per frame: deep captures have millions of them).
    # (surrogatepass: a name read with surrogateescape round-trips unchanged)
    tokens = [(clean_frame(profile.frame_label(i)) + ";").encode("utf-8", "surrogatepass")
              for i in range(len(profile.frame_function))]
    tokens.append(b"")  # past a short path's root
    padding = len(tokens) - 1
    token_len = np.array([len(t) for t in tokens], dtype=np.int64)
    token_start = np.cumsum(token_len) - token_len
    blob = np.frombuffer(b"".join(tokens), dtype=np.uint8)
    parent, frame = profile.stack_parent, profile.stack_frame
    totals: dict[str, float] = {}
    block_size = 8192  # bounded memory: a (depth, block) matrix at a time
    for lo in range(0, len(leaves), block_size):
        block = leaves[lo:lo + block_size]
        levels = []
        node = block.astype(np.int64)
        while True:
            alive = node >= 0
            if not alive.any():
                break
            at = np.maximum(node, 0)
            levels.append(np.where(alive, frame[at], padding))
            node = np.where(alive, parent[at], -1)
        if not levels:
            continue
        paths = np.stack(levels[::-1], axis=1).reshape(-1)  # root first, row by row
        del levels
        size = token_len[paths]
        total = int(size.sum())
        at = np.repeat(token_start[paths] - (np.cumsum(size) - size), size) + np.arange(total, dtype=np.int64)
        text = blob[at]
        text[np.cumsum(size.reshape(len(block), -1).sum(axis=1)) - 1] = ord("\n")  # each path's last ";"
        keys = text.tobytes().decode("utf-8", "surrogatepass").split("\n")[:-1]
        for key, weight in zip(keys, per_leaf[lo:lo + block_size].tolist(), strict=True):
            totals[key] = totals.get(key, 0.0) + weight
    for key in sorted(totals):
        weight = round(totals[key])
        if weight > 0 and key:
            yield f"{key} {weight}"
