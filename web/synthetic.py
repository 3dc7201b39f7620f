"""Deterministic synthetic profiles for the web view's tests and speed benchmark.

Real recordings on this VM are small (no PMU, short runs); the speed goals are stated for 1M samples and 100k unique
frames, so benchmarks/web_speed.py builds that shape here with ProfileBuilder, from a seeded generator, so every run
measures the same work. The small profile carries the names the security tests need (a C++ template name with
'<', '>' and '&', a JIT entry shaped like an HTML tag with an event handler).
"""

from __future__ import annotations

import numpy as np

from hwprof.profile import FrameKind, Profile, ProfileBuilder, ProfileMeta, StackEnd

TEMPLATE_NAME = "std::vector<std::pair<int, float>, std::allocator<std::pair<int, float> > >::operator[] && <T>"
JIT_NAME = "<img src=x onerror=alert(1)>"
SCRIPT_NAME = "</script><script>alert(2)</script>"


def small_profile(*, counters: bool = True, seed: int = 1, scale: int = 1, slow_b: bool = False) -> Profile:
    """A few hundred samples over known stacks: main->work->{compute, std::vector<...>}, a kernel path, a JIT frame.

    Exact expected weights (scale=1): compute 300, the template frame 100, sys_read path 50, the JIT frame 40,
    10 samples without a stack, 20 truncated ones under work. With slow_b, compute gets 600 samples instead.
    """
    rng = np.random.default_rng(seed)
    names = ["cycles", "instructions"] if counters else []
    meta = ProfileMeta(target="./demo --size 3", command=["./demo", "--size", "3"], events=["cpu-clock"],
                       weight_names=names, start_time_ns=1_000_000_000, duration_ns=2_000_000_000,
                       source="synthetic", hostname="testhost")
    b = ProfileBuilder(meta)
    b.threads = {100: "demo", 101: "demo-worker"}
    exe, libc, kern = "/usr/bin/demo", "/usr/lib/x86_64-linux-gnu/libc.so.6", "[kernel.kallsyms]"
    f_start = b.frame(function="_start", module=exe, address=0x1000, kind=FrameKind.USER)
    f_main = b.frame(function="main", module=exe, address=0x1100, kind=FrameKind.USER, file="/src/demo.c", line=40)
    f_work = b.frame(function="work", module=exe, address=0x1200, kind=FrameKind.USER, file="/src/demo.c", line=20)
    f_comp = b.frame(function="compute", module=exe, address=0x1300, kind=FrameKind.USER, file="/src/demo.c", line=8)
    f_comp2 = b.frame(function="compute", module=exe, address=0x1310, kind=FrameKind.USER, file="/src/demo.c", line=9)
    f_tmpl = b.frame(function=TEMPLATE_NAME, module=exe, address=0x1400, kind=FrameKind.USER, file="/src/vec.hpp",
                     line=77)
    f_read = b.frame(function="read", module=libc, address=0x9000, kind=FrameKind.USER)
    f_sys = b.frame(function="entry_SYSCALL_64", module=kern, address=0xffffffff81000000, kind=FrameKind.KERNEL)
    f_ksys = b.frame(function="ksys_read", module=kern, address=0xffffffff81200000, kind=FrameKind.KERNEL)
    f_jit = b.frame(function=JIT_NAME, module="/tmp/perf-100.map", address=0x7f0000001000, kind=FrameKind.JIT)
    f_script = b.frame(function=SCRIPT_NAME, module="/tmp/perf-100.map", address=0x7f0000002000, kind=FrameKind.JIT)
    f_unknown = b.frame(function=None, module=libc, address=0x12345, kind=FrameKind.USER)

    base = [f_start, f_main]
    groups = [
        (base + [f_work, f_comp], (600 if slow_b else 300) * scale // 2, 0.5, StackEnd.COMPLETE),
        (base + [f_work, f_comp2], (600 if slow_b else 300) * scale // 2, 0.5, StackEnd.COMPLETE),
        (base + [f_work, f_tmpl], 100 * scale, 2.0, StackEnd.COMPLETE),
        (base + [f_read, f_sys, f_ksys], 50 * scale, 1.0, StackEnd.COMPLETE),
        (base + [f_jit, f_script], 40 * scale, 1.5, StackEnd.COMPLETE),
        (base + [f_work, f_unknown], 20 * scale, 1.0, StackEnd.TRUNCATED),
        (None, 10 * scale, 1.0, StackEnd.NO_STACK),
    ]
    rows = []
    for frames, count, ipc, end in groups:
        stack = b.stack(frames) if frames else -1
        rows += [(stack, ipc, end)] * count
    order = rng.permutation(len(rows))
    t = meta.start_time_ns
    for i, idx in enumerate(order):
        stack, ipc, end = rows[idx]
        cycles = 1_000_000.0
        b.sample(time=t + i * (meta.duration_ns // len(rows)), pid=100, tid=100 + (i % 2), cpu=i % 2, stack=stack,
                 period=1_000_000.0, end=end, counters=[cycles, cycles * ipc] if counters else None)
    return b.build()


def big_profile(n_samples: int = 1_000_000, n_frames: int = 100_000, n_stacks: int = 120_000,
                zipf: float = 1.1, seed: int = 7) -> Profile:
    """The benchmark shape: n_samples samples over n_stacks distinct stacks that use n_frames distinct frames.

    Stacks are random walks through a fixed call graph (each function has a few usual callees), leaves cover every
    frame, and sample counts per stack follow a Zipf law, like real profiles where a few paths dominate.
    """
    rng = np.random.default_rng(seed)
    libs = ("app", "c", "m", "ssl", "z", "xml2", "stdc++", "gtk")
    modules = [f"/usr/lib/lib{m}.so.{i % 3 + 1}" for i, m in enumerate(libs)]
    meta = ProfileMeta(target="synthetic-1M", command=["synthetic"], events=["cpu-clock"],
                       weight_names=["cycles", "instructions"], start_time_ns=10**12,
                       duration_ns=10 * 10**9, source="synthetic")
    b = ProfileBuilder(meta)
    frames = []
    for i in range(n_frames):
        module = modules[i % len(modules)]
        kind = FrameKind.KERNEL if i % 50 == 0 else FrameKind.USER
        name = f"ns{i % 97}::Class{i % 1009}<T{i % 7}>::method_{i}"
        frames.append(b.frame(function=name, module="[kernel.kallsyms]" if kind == FrameKind.KERNEL else module,
                              address=0x1000 + 16 * i, kind=kind, file=f"/src/mod{i % 300}.cc", line=1 + i % 900))
    # A call graph where each function has a usual callee, a less usual one and a rare one; walks mostly take
    # the usual edge, so stacks share long prefixes as in real programs, and a few random hops spread them out.
    callees = rng.integers(0, n_frames, size=(n_frames, 3))
    edge_p = np.array([0.80, 0.14, 0.04, 0.02])
    depth = rng.integers(4, 28, size=n_stacks)
    stacks = []
    root = frames[0]
    for s in range(n_stacks):
        f = int(rng.integers(1, 16))
        path = [root, frames[f]]
        choices = rng.choice(4, size=int(depth[s]), p=edge_p)
        for c in choices[:-3]:
            f = int(callees[f, c]) if c < 3 else int(rng.integers(0, n_frames))
            path.append(frames[f])
        path.append(frames[s % n_frames])
        stacks.append(b.stack(path))
    weights = 1.0 / np.arange(1, n_stacks + 1) ** zipf
    weights /= weights.sum()
    chosen = rng.choice(n_stacks, size=n_samples, p=weights)
    times = np.sort(rng.integers(0, meta.duration_ns, size=n_samples)) + meta.start_time_ns
    ipc = 0.4 + 2.0 * rng.random(n_stacks)
    cycles = rng.normal(2.5e6, 2e5, size=n_samples)
    for i in range(n_samples):
        c = int(chosen[i])
        b.sample(time=int(times[i]), pid=1, tid=1 + (i & 3), cpu=i & 1, stack=stacks[c], period=1_000_000.0,
                 counters=[float(cycles[i]), float(cycles[i] * ipc[c])])
    return b.build()
