"""Windows kept on local disk while the fleet store is away, sent oldest first when it comes back.

One gzip'd JSON file per window, named by its start time so a directory listing is the send order. The spool has a
size cap: when a new window would exceed it, the oldest windows are dropped to make room, and every dropped
window and its samples are counted (and reported by the agent), never lost silently. A window whose file is
written but whose send was acknowledged just before a crash is sent again after the restart; the store's
idempotent insert keeps it once.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

from hwprof.errors import HwprofError
from hwprof.fleet.window import WindowBatch

SUFFIX = ".window.json.gz"


@dataclass
class SpoolStats:
    spooled: int = 0
    sent: int = 0
    dropped_windows: int = 0
    dropped_samples: int = 0


class Spool:
    def __init__(self, directory: str | os.PathLike, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.stats = SpoolStats()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HwprofError(f"cannot create the spool directory {self.directory}: {exc.strerror}") from None
        if not os.access(self.directory, os.W_OK):
            raise HwprofError(f"the spool directory {self.directory} is not writable")

    def files(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def size(self) -> int:
        total = 0
        for path in self.files():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def put(self, batch: WindowBatch) -> list[str]:
        """Keep a window; returns one message per window dropped to stay under the cap (empty normally)."""
        data = gzip.compress(batch.to_json().encode(), compresslevel=6)
        messages = []
        if len(data) > self.max_bytes:
            self.stats.dropped_windows += 1
            self.stats.dropped_samples += batch.samples
            return [f"spool full: a window of {len(data):,} bytes is larger than the spool cap "
                    f"({self.max_bytes:,} bytes); dropped it ({batch.samples:,} samples)"]
        existing = self.files()
        used = sum(p.stat().st_size for p in existing if p.exists())
        while existing and used + len(data) > self.max_bytes:
            oldest = existing.pop(0)
            size = oldest.stat().st_size
            try:
                samples = WindowBatch.from_json(gzip.decompress(oldest.read_bytes()).decode()).samples
            except (OSError, ValueError, EOFError):
                samples = 0
            oldest.unlink(missing_ok=True)
            used -= size
            self.stats.dropped_windows += 1
            self.stats.dropped_samples += samples
            messages.append(f"spool full ({self.max_bytes:,} bytes cap): dropped the oldest window "
                            f"{oldest.name.removesuffix(SUFFIX)} ({samples:,} samples)")
        path = self.path_of(batch)
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.stats.dropped_windows += 1
            self.stats.dropped_samples += batch.samples
            return [*messages, f"cannot spool a window to {self.directory}: {exc.strerror}; dropped it "
                               f"({batch.samples:,} samples)"]
        self.stats.spooled += 1
        return messages

    def path_of(self, batch: WindowBatch) -> Path:
        """Where a window is kept: named by its start, so the spool's files sort oldest first."""
        return self.directory / f"{batch.start_ns:020d}-{batch.window_id:016x}{SUFFIX}"

    def load(self, path: Path) -> WindowBatch | None:
        try:
            return WindowBatch.from_json(gzip.decompress(path.read_bytes()).decode())
        except (OSError, ValueError, EOFError, KeyError, TypeError):
            return None

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
