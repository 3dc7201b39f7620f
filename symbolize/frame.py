"""The one result type of every symbolizer path, so callers never care where a name came from."""

from __future__ import annotations

from dataclasses import dataclass

from hwprof.units import Address, FileOffset


@dataclass(frozen=True)
class SymbolizedFrame:
    """One frame of an inline chain.

    A chain for one address is a tuple of these, innermost first; the last one is the real
    (non-inlined) function, so ``inlined`` is True for every element but the last.
    """

    function: str | None  # demangled unless demangle=False; None when unknown
    file: str | None
    line: int | None  # 0/None when unknown
    inlined: bool
    module: str  # path or name: "[kernel.kallsyms]", "[jit]", "/usr/lib/.../libc.so.6"
    module_offset: FileOffset | Address  # file offset (user code) or address (kernel, JIT)
    symbol_offset: int | None = None  # offset from the start of the symbol, when known

    def describe(self) -> str:
        """A one-line label as perf prints it: name+0xoff, or module+0xoffset when unknown."""
        if self.function is None:
            return f"{self.module}+{self.module_offset:#x}"
        if self.symbol_offset:
            return f"{self.function}+{self.symbol_offset:#x}"
        return self.function


_new = object.__new__


def make_frame(function, file, line, inlined, module, module_offset, symbol_offset=None) -> SymbolizedFrame:
    """SymbolizedFrame(...) without the frozen dataclass's per-field __setattr__ calls: bulk
    symbolization builds one per frame, and this is about twice as fast. Same object, same fields."""
    frame = _new(SymbolizedFrame)
    frame.__dict__.update(function=function, file=file, line=line, inlined=inlined, module=module,
                          module_offset=module_offset, symbol_offset=symbol_offset)
    return frame


def unknown_frame(module: str, offset: int) -> SymbolizedFrame:
    """The frame a caller prints as module+0xoffset: nothing is known but where it was."""
    return SymbolizedFrame(None, None, None, False, module, offset, None)

