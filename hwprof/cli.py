"""hwprof's command line: builds one sub-parser per command and turns errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from hwprof.commands import COMMAND_MODULES, Command
from hwprof.errors import HwprofError


def load_commands(only: Sequence[str] = COMMAND_MODULES) -> list[Command]:
    commands = []
    for module_name in only:
        try:
            module = importlib.import_module(f"hwprof.commands.{module_name}")
        except ModuleNotFoundError as exc:
            # A command whose module is absent is simply not offered; any other missing import is a bug.
            if exc.name != f"hwprof.commands.{module_name}":
                raise
            continue
        commands.append(module.COMMAND)
    return commands


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwprof",
        description="Hardware counters, stack sampling, probes and flame graphs for Linux.",
        epilog="Run 'hwprof COMMAND -h' for a command's options and examples.",
    )
    from hwprof import __version__

    parser.add_argument("--version", action="version", version=f"hwprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in commands:
        command_parser = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.prepare_parser(command_parser)
        command_parser.set_defaults(_command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; everything it prints goes through hwprof.terminal's escaping (names come from outside)."""
    from hwprof.terminal import PrintableStream

    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(stdout), PrintableStream(stderr)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Start-up time: `hwprof stat ...` imports the stat command only, not every command's module.
    commands = load_commands((argv[0],)) if argv and argv[0] in COMMAND_MODULES else []
    parser = build_parser(commands or load_commands())
    args = parser.parse_args(argv)
    try:
        return int(args._command.run(args) or 0)
    except HwprofError as exc:
        print(f"hwprof {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        import signal  # here, not at the top: its enums cost every start ~1 ms

        return 128 + signal.SIGINT
    except BrokenPipeError:
        # Output piped into head(1) and friends: quiet exit, and keep Python from complaining at shutdown.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
