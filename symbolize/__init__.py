"""hwprof.symbolize: addresses to function, file, line and inline chains (ELF, DWARF, kernel, JIT).

Import cost matters (the CLI builds every command's parser on start), so the heavy parts load lazily.
"""

from hwprof.symbolize.frame import SymbolizedFrame
from hwprof.symbolize.symbolizer import Symbolizer

__all__ = ["SymbolizedFrame", "Symbolizer"]
