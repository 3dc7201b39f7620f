"""Kernel symbols from /proc/kallsyms, modules included.

Kernel frames are looked up by address (no file offsets). When kptr_restrict (or a missing
CAP_SYSLOG) zeroes every address, ``hidden`` says so and lookups return nothing rather than
naming every address after the first symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from hwprof.symbolize.packed import NO_STRING, IndexedStrings, PackedStrings

from hwprof.errors import HwprofError

KERNEL_MODULE = "[kernel.kallsyms]"
_TEXT_TYPES = frozenset("tTwW")
# Past the last text symbol of a region an address belongs to nothing we know.
_MAX_SYMBOL_SPAN = 1 << 20


_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_TEXT_CODES = np.frombuffer("".join(sorted(_TEXT_TYPES)).encode(), np.uint8)


@dataclass(frozen=True)
class KernelSymbols:
    starts: np.ndarray  # uint64, sorted
    names: Sequence[str]
    owners: Sequence[str | None]  # module name, None for the core kernel
    hidden: bool = False
    modules: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (lowest, highest) address

    @classmethod
    def load(cls, path: str = "/proc/kallsyms") -> KernelSymbols:
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except OSError as exc:
            raise HwprofError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.parse(data)

    @classmethod
    def parse(cls, text: str | bytes) -> KernelSymbols:
        """kallsyms lines ("ADDRESS TYPE NAME[\t[MODULE]]"), text symbols only. The kernel writes every address
        with the same width, so the columns are cut with numpy in one pass (0.05 s instead of 0.45 s for a
        distribution kernel's 120k lines: the agent's worker reloads it at start and after a cache reset)."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        if data and not data.endswith(b"\n"):
            data += b"\n"
        parsed = _parse_columns(data)
        if parsed is None:
            return cls._parse_lines(data.decode("utf-8", "replace"))
        return parsed

    @classmethod
    def _parse_lines(cls, text: str) -> KernelSymbols:
        """Line by line, for text that is not in the kernel's fixed-width form (hand-written or damaged)."""
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


def _parse_columns(data: bytes) -> KernelSymbols | None:
    """The fixed-width parse of kallsyms text; None when some line is not in that form."""
    if not data:
        return KernelSymbols(np.zeros(0, np.uint64), (), (), False, {})
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 0x0A)
    line_starts = np.concatenate(([0], ends[:-1] + 1))
    width = data.find(b" ")
    if not 1 <= width <= 16:
        return None
    keep = ends > line_starts  # empty lines say nothing
    line_starts, ends = line_starts[keep], ends[keep]
    if not len(ends) or np.any(ends - line_starts < width + 4):
        return None
    if np.any(buf[line_starts + width] != 0x20) or np.any(buf[line_starts + width + 2] != 0x20):
        return None
    text = np.isin(buf[line_starts + width + 1], _TEXT_CODES)
    line_starts, ends = line_starts[text], ends[text]
    digits = _HEX[buf[line_starts[:, None] + np.arange(width)]]
    if np.any(digits == 255):
        return None
    addrs = np.zeros(len(line_starts), dtype=np.uint64)
    for column in range(width):
        addrs = (addrs << np.uint64(4)) | digits[:, column].astype(np.uint64)
    if not addrs.any():  # kptr_restrict: every address reads as zero (or no text symbol at all)
        return KernelSymbols(np.zeros(0, np.uint64), (), (), True, {})
    # A module's symbols end with "\t[module]": the first tab of the line (names have none) ends the name.
    name_starts = line_starts + width + 3
    tabs = np.flatnonzero(buf == 0x09)
    if len(tabs):
        tab = tabs[np.minimum(np.searchsorted(tabs, name_starts), len(tabs) - 1)]
        in_module = (tab >= name_starts) & (tab < ends)
    else:
        tab, in_module = ends, np.zeros(len(ends), dtype=bool)
    name_ends = np.where(in_module, tab, ends)
    order = np.argsort(addrs, kind="stable")
    addrs, name_starts, name_ends = addrs[order], name_starts[order], name_ends[order]
    in_module, tab, ends = in_module[order], tab[order], ends[order]
    owner_of: dict[bytes, int] = {}
    owner_index = np.full(len(addrs), NO_STRING, dtype=np.uint32)
    for i in np.flatnonzero(in_module).tolist():
        label = data[int(tab[i]) + 1:int(ends[i])].strip().strip(b"[]")
        if label:
            owner_index[i] = owner_of.setdefault(label, len(owner_of))
    module_names = [m.decode("utf-8", "replace") for m in owner_of]
    modules: dict[str, tuple[int, int]] = {}
    for k, name in enumerate(module_names):
        mine = addrs[owner_index == k]
        modules[name] = (int(mine.min()), int(mine.max()))
    # Names stay bytes until looked up (a lookup needs a few hundred of 100k+).
    return KernelSymbols(addrs, PackedStrings(data, name_starts, name_ends), IndexedStrings(module_names, owner_index),
                         False, modules)
