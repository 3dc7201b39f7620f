"""Kernel symbols from /proc/kallsyms, modules included.

Kernel frames are looked up by address (no file offsets). When kptr_restrict (or a missing
CAP_SYSLOG) zeroes every address, ``hidden`` says so and lookups return nothing rather than
naming every address after the first symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwprof.errors import HwprofError

KERNEL_MODULE = "[kernel.kallsyms]"
_TEXT_TYPES = frozenset("tTwW")
# Past the last text symbol of a region an address belongs to nothing we know.
_MAX_SYMBOL_SPAN = 1 << 20


@dataclass(frozen=True)
class KernelSymbols:
    starts: np.ndarray  # uint64, sorted
    names: tuple[str, ...]
    owners: tuple[str | None, ...]  # module name, None for the core kernel
    hidden: bool = False
    modules: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (lowest, highest) address

    @classmethod
    def load(cls, path: str = "/proc/kallsyms") -> KernelSymbols:
        try:
            with open(path, encoding="utf-8", errors="replace") as stream:
                text = stream.read()
        except OSError as exc:
            raise HwprofError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> KernelSymbols:
        rows: list[tuple[int, str, str | None]] = []
        any_symbol = False
        for line in text.splitlines():
            parts = line.split(None, 3)
            if len(parts) < 3:
                continue
            any_symbol = True
            addr_text, kind, name = parts[0], parts[1], parts[2]
            if kind not in _TEXT_TYPES:
                continue
            try:
                addr = int(addr_text, 16)
            except ValueError:
                continue
            owner = parts[3].strip().strip("[]") if len(parts) > 3 else None
            rows.append((addr, name, owner or None))
        hidden = any_symbol and not any(addr for addr, _, _ in rows)
        if hidden:
            return cls(np.zeros(0, np.uint64), (), (), True, {})
        rows.sort(key=lambda r: r[0])
        modules: dict[str, tuple[int, int]] = {}
        for addr, _name, owner in rows:
            if owner:
                low, high = modules.get(owner, (addr, addr))
                modules[owner] = (min(low, addr), max(high, addr))
        starts = np.array([r[0] for r in rows], dtype=np.uint64)
        return cls(starts, tuple(r[1] for r in rows), tuple(r[2] for r in rows), False, modules)

    @property
    def hidden_note(self) -> str:
        return (
            "kernel addresses are hidden (all zero in /proc/kallsyms): kptr_restrict is set or this user "
            "lacks CAP_SYSLOG; run as root or 'sysctl kernel.kptr_restrict=0'"
        )

    def lookup(self, addrs: np.ndarray) -> list[tuple[str | None, int | None, str]]:
        """(symbol name or None, offset into it, module label) per address."""
        addrs = np.asarray(addrs, dtype=np.uint64)
        if len(self.starts) == 0:
            return [(None, None, KERNEL_MODULE)] * len(addrs)
        idx = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        safe = np.maximum(idx, 0)
        offsets = addrs - self.starts[safe]
        ok = (idx >= 0) & (offsets < _MAX_SYMBOL_SPAN)
        out: list[tuple[str | None, int | None, str]] = []
        for good, i, off in zip(ok.tolist(), safe.tolist(), offsets.tolist(), strict=True):
            if not good:
                out.append((None, None, KERNEL_MODULE))
                continue
            owner = self.owners[i]
            out.append((self.names[i], off, f"[{owner}]" if owner else KERNEL_MODULE))
        return out

    def address_of(self, name: str) -> int | None:
        try:
            return int(self.starts[self.names.index(name)])
        except ValueError:
            return None
