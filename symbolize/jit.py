"""JIT code maps in perf's format: /tmp/perf-PID.map, one ``START SIZE name`` per line (hex), or the names of a
jitdump file's code-load records (/tmp/jit-PID.dump: hwprof.symbolize.jitdump).

Runtimes (V8, the JVM with perf-map-agent, CPython 3.12's perf trampoline, LuaJIT...) write these
and often delete them at exit, so captures copy them at the end. Names are arbitrary text -- they
may contain spaces, brackets, quotes, control characters -- and are kept as data, never parsed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwprof.errors import HwprofError


@dataclass(frozen=True)
class PerfMap:
    starts: np.ndarray  # uint64, sorted
    ends: np.ndarray  # uint64, exclusive
    names: tuple[str, ...]
    skipped_lines: int = 0

    @classmethod
    def load(cls, path: str) -> PerfMap:
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except OSError as exc:
            raise HwprofError(f"cannot read JIT map {path}: {exc.strerror or exc}") from exc
        from hwprof.symbolize.jitdump import is_jitdump, parse_jitdump

        if is_jitdump(data):  # jit-PID.dump: the same (start, size, name) triples, from its code-load records
            dump = parse_jitdump(data, path)
            return cls.parse("".join(f"{e.start:x} {e.size:x} {e.name}\n" for e in dump.entries if e.size))
        return cls.parse(data)

    @classmethod
    def parse(cls, data: bytes | str) -> PerfMap:
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        entries: dict[int, tuple[int, str]] = {}
        skipped = 0
        for line in data.split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            parts = line.split(" ", 2)
            try:
                start = int(parts[0], 16)
                size = int(parts[1], 16)
            except (ValueError, IndexError):
                skipped += 1
                continue
            if size <= 0 or start < 0 or start + size >= 2**64:
                skipped += 1
                continue
            # A later line for the same start wins: JITs reuse code memory and append the new owner.
            entries[start] = (size, parts[2] if len(parts) > 2 else "")
        ordered = sorted(entries.items())
        starts = np.array([s for s, _ in ordered], dtype=np.uint64)
        ends = np.array([s + sz for s, (sz, _) in ordered], dtype=np.uint64)
        return cls(starts, ends, tuple(name for _, (_, name) in ordered), skipped)

    def lookup(self, addrs: np.ndarray) -> list[tuple[str | None, int | None]]:
        """(name, offset into the entry) per address, (None, None) outside every entry."""
        addrs = np.asarray(addrs, dtype=np.uint64)
        if len(self.starts) == 0:
            return [(None, None)] * len(addrs)
        idx = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        safe = np.maximum(idx, 0)
        ok = (idx >= 0) & (addrs < self.ends[safe])
        offsets = addrs - self.starts[safe]
        return [
            (self.names[i], off) if good else (None, None)
            for good, i, off in zip(ok.tolist(), safe.tolist(), offsets.tolist(), strict=True)
        ]


def snapshot_perf_map(pid: int, dest_dir: str, source_dir: str = "/tmp") -> str | None:
    """Copy /tmp/perf-PID.map into a capture at capture end (runtimes delete it at exit).

    Returns the copy's path, or None when the process wrote no map. The copy is what
    ``Symbolizer.symbolize_jit(pid, addrs, perf_map_path=...)`` should read later.
    """
    import os
    import shutil

    source = os.path.join(source_dir, f"perf-{pid}.map")
    if not os.path.isfile(source):
        return None
    os.makedirs(dest_dir, exist_ok=True)
    target = os.path.join(dest_dir, f"perf-{pid}.map")
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise HwprofError(f"cannot keep JIT map {source}: {exc.strerror or exc}") from exc
    return target
