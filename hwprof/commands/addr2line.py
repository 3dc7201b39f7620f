"""hwprof addr2line: a drop-in for binutils addr2line, backed by the cached hwprof symbolizer.

Output is byte-for-byte addr2line's format, so users and tests can diff the two directly.
"""

from __future__ import annotations

import argparse
import os
import sys

from hwprof.errors import HwprofError
from hwprof.terminal import printable

EPILOG = """\
examples:
  hwprof addr2line -e ./app -f -i 0x1139 0x1160      # function, file:line and inline callers
  hwprof addr2line -e /usr/lib/x86_64-linux-gnu/libc.so.6 -f -C -p 0x29d90
  nm ./app | awk '{print $1}' | hwprof addr2line -e ./app -f   # addresses from stdin
  hwprof addr2line --pid 1234 -f -i 0x7f3a12345678      # runtime addresses of a live process
  hwprof addr2line -e ./stripped --debug-dir ./dbg -f 0x1139   # debug file by build-id/debuglink
  DEBUGINFOD_URLS=http://127.0.0.1:8002 hwprof addr2line -e ./stripped -f -i 0x1139
"""


def _parse_address(token: str) -> int:
    text = token.strip()
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        value = int(text, 16)
    except ValueError:
        raise HwprofError(f"not a hexadecimal address: {token!r}") from None
    if value < 0 or value >= 2**64:
        raise HwprofError(f"address out of range: {token!r}")
    return value


class Addr2lineCommand:
    name = "addr2line"
    help = "translate addresses to function, file and line (addr2line-compatible, cached)"
    description = (
        "Translate addresses into function names, file names and line numbers, with inline chains,\n"
        "in binutils addr2line's output format. Debug info is found by build-id, .gnu_debuglink,\n"
        "--debug-dir, --symfs and debuginfod; each binary's index is built once and cached."
    )
    epilog = EPILOG

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("addresses", nargs="*", metavar="ADDR",
                            help="hexadecimal addresses (read from stdin when none are given)")
        parser.add_argument("-e", "--exe", default=None, metavar="FILE",
                            help="the binary the addresses belong to (default a.out; not with --pid)")
        parser.add_argument("-f", "--functions", action="store_true", help="show function names")
        parser.add_argument("-i", "--inlines", action="store_true", help="unwind inlined functions")
        parser.add_argument("-C", "--demangle", action="store_true", help="demangle C++ and Rust names")
        parser.add_argument("--no-demangle", dest="no_demangle", action="store_true",
                            help="never demangle (the default, as in addr2line)")
        parser.add_argument("-a", "--addresses", dest="show_addresses", action="store_true",
                            help="print each address before its information")
        parser.add_argument("-p", "--pretty-print", action="store_true", help="one line per address")
        parser.add_argument("-s", "--basenames", action="store_true", help="strip directories from file names")
        parser.add_argument("--pid", type=int, default=None,
                            help="addresses are runtime addresses in this live process")
        parser.add_argument("--debug-dir", action="append", default=[], metavar="DIR",
                            help="extra directory to search for debug files (repeatable)")
        parser.add_argument("--symfs", default=None, metavar="ROOT",
                            help="look up binaries and debug files under ROOT (e.g. a container's root)")
        parser.add_argument("--no-debuginfod", action="store_true", help="never ask debuginfod servers")
        parser.add_argument("--cache-dir", default=None, metavar="DIR",
                            help="index cache directory (default $HWPROF_CACHE_DIR or ~/.cache/hwprof)")

    def run(self, args: argparse.Namespace) -> int:
        import logging

        from hwprof.symbolize import Symbolizer

        if args.pid is not None and args.exe is not None:
            raise HwprofError("give either -e FILE or --pid PID, not both")
        exe = args.exe if args.exe is not None else "a.out"
        if args.pid is None:
            exe_fs = os.path.join(args.symfs, exe.lstrip("/")) if args.symfs else exe
            if not os.path.exists(exe_fs):
                raise HwprofError(f"'{exe}': No such file")
            if os.path.isdir(exe_fs):
                raise HwprofError(f"'{exe}': is a directory")
            if not _is_elf(exe_fs):  # binutils: "addr2line: FILE: file format not recognized", exit 1
                raise HwprofError(f"'{exe}': file format not recognized (not an ELF file)")
        if args.symfs and not os.path.isdir(args.symfs):
            raise HwprofError(f"--symfs {args.symfs}: not a directory")
        logging.basicConfig(format="hwprof addr2line: warning: %(message)s", level=logging.WARNING)
        symbolizer = Symbolizer(
            debug_dirs=args.debug_dir,
            symfs=args.symfs,
            debuginfod=not args.no_debuginfod,
            demangle=args.demangle and not args.no_demangle,
            cache_dir=args.cache_dir,
        )
        formatter = _Formatter(args)
        out = sys.stdout
        if args.addresses:
            addrs = [_parse_address(a) for a in args.addresses]
            out.write(formatter.render(addrs, self._lookup(symbolizer, args, exe, addrs)))
            out.flush()
            return 0
        for batch in _stdin_batches():
            addrs = [_parse_address(tok) for tok in batch]
            out.write(formatter.render(addrs, self._lookup(symbolizer, args, exe, addrs)))
            out.flush()
        return 0

    @staticmethod
    def _lookup(symbolizer, args: argparse.Namespace, exe: str, addrs: list[int]):
        if not addrs:
            return []
        if args.pid is None:
            return symbolizer.text_lines(exe, addrs)
        import numpy as np

        from hwprof.system.procfs import find_mapping, read_maps

        maps = read_maps(args.pid)
        chains = []
        for addr in addrs:
            mapping = find_mapping(maps, addr)
            if mapping is None or not mapping.path:
                chains.append(((None, None, None),))
                continue
            path = mapping.path
            if not path.startswith("["):
                # The process's own view of the file: right even across mount namespaces.
                candidate = f"/proc/{args.pid}/root{path}"
                path = candidate if os.path.exists(candidate) and not args.symfs else path
            frames = symbolizer.symbolize_offsets(path, np.array([mapping.file_offset(addr)], dtype=np.uint64))[0]
            chains.append(tuple((f.function, f.file, f.line) for f in frames))
        return chains


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError as exc:
        raise HwprofError(f"'{path}': {exc.strerror}") from None


def _stdin_batches():
    """Whitespace-separated tokens from stdin, in batches of whatever has arrived.

    Reading raw chunks keeps piped bulk input fast while a coprocess that writes one address and
    waits for the answer (as perf does with addr2line) still gets it at once.
    """
    fd = sys.stdin.fileno()
    pending = b""
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            tokens = pending.split()
            if tokens:
                yield [t.decode("ascii", "replace") for t in tokens]
            return
        pending += chunk
        cut = pending.rfind(b"\n")
        if cut < 0:
            continue
        complete, pending = pending[: cut + 1], pending[cut + 1 :]
        tokens = complete.split()
        if tokens:
            yield [t.decode("ascii", "replace") for t in tokens]


class _Formatter:
    """binutils addr2line's printing rules, including its '??:0' versus '??:?' distinction."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.functions = args.functions
        self.inlines = args.inlines
        self.addresses = args.show_addresses
        self.pretty = args.pretty_print
        self.basenames = args.basenames

    def render(self, addrs: list[int], chains) -> str:
        """Text for each address; a chain is a sequence of (function, file, line, ...) tuples.

        The same chain object (repeated addresses, or addresses sharing one line) renders once.
        """
        parts: list[str] = []
        add = parts.append
        memo: dict[int, str] = {}
        for addr, chain in zip(addrs, chains, strict=True):
            if self.addresses:
                add(f"0x{addr:016x}: " if self.pretty else f"0x{addr:016x}\n")
            text = memo.get(id(chain))
            if text is None:
                text = memo[id(chain)] = self._chain_text(chain)
            add(text)
        return "".join(parts)

    def _chain_text(self, chain) -> str:
        if len(chain) == 1 and chain[0][0] is None and not chain[0][1]:
            return ("?? " if self.pretty else "??\n") + "??:0\n" if self.functions else "??:0\n"
        parts = []
        for n, frame in enumerate(chain if self.inlines else chain[:1]):
            if n and self.pretty:
                parts.append(" (inlined by) ")
            if self.functions:
                name = printable(frame[0]) if frame[0] else "??"
                parts.append(f"{name} at " if self.pretty else f"{name}\n")
            file = frame[1]
            if file and self.basenames:
                file = file.rsplit("/", 1)[-1]
            parts.append(f"{printable(file) if file is not None else '??'}:{frame[2] or '?'}\n")
        return "".join(parts)


COMMAND = Addr2lineCommand()
